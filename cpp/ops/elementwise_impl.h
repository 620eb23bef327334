#pragma once
// Building blocks for elementwise ops (used by the ops/*.cpp files, not by users):
// map1/map2/map3 apply a scalar function over broadcast operands, converting inputs to the
// compute type T, with contiguous and scalar-broadcast fast paths the compiler vectorises.
#include "core/autograd.h"
#include "core/iter.h"
#include "ops/copy.h"
#include "ops/reduce.h"

namespace nc {

// Input of an op as a tensor of dtype T without history (a converted copy only if needed).
inline Tensor as_compute(const Tensor& t, DType d) {
  if (t.dtype() == d) return t;
  Tensor out = Tensor::empty(t.shape(), d);
  copy_raw(out, t);
  return out;
}

// Gradient of an input that was broadcast and converted: reduce to its shape and dtype.
inline Tensor reduce_grad(const Tensor& g, const Shape& shape, DType dtype) {
  return to_dtype(sum_to(g, shape), dtype);
}

template <class T, class R, class F>
Tensor map1(const Tensor& a, DType out_dtype, F f) {
  Tensor x = as_compute(a, dtype_of<T>());
  Tensor out = Tensor::empty(x.shape(), out_dtype);
  strided_loop<2>(x.shape(), {out.strides(), x.strides()}, {sizeof(R), sizeof(T)},
                  {static_cast<char*>(out.raw_data()), static_cast<char*>(x.raw_data())},
                  [&f](const std::array<char*, 2>& p, const std::array<int64_t, 2>& st, int64_t n) {
                    R* o = reinterpret_cast<R*>(p[0]);
                    if (st[1] == sizeof(T)) {
                      const T* xa = reinterpret_cast<const T*>(p[1]);
                      for (int64_t i = 0; i < n; ++i) o[i] = f(xa[i]);
                    } else {
                      for (int64_t i = 0; i < n; ++i) o[i] = f(*reinterpret_cast<const T*>(p[1] + i * st[1]));
                    }
                  });
  return out;
}

template <class T, class R, class F>
Tensor map2(const Tensor& a, const Tensor& b, DType out_dtype, const char* op, F f) {
  Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor x = as_compute(a, dtype_of<T>()), y = as_compute(b, dtype_of<T>());
  Tensor out = Tensor::empty(shape, out_dtype);
  Shape xs = broadcast_strides(x, shape, op), ys = broadcast_strides(y, shape, op);
  strided_loop<3>(shape, {out.strides(), xs, ys}, {sizeof(R), sizeof(T), sizeof(T)},
                  {static_cast<char*>(out.raw_data()), static_cast<char*>(x.raw_data()),
                   static_cast<char*>(y.raw_data())},
                  [&f](const std::array<char*, 3>& p, const std::array<int64_t, 3>& st, int64_t n) {
                    R* o = reinterpret_cast<R*>(p[0]);
                    const T* xa = reinterpret_cast<const T*>(p[1]);
                    const T* ya = reinterpret_cast<const T*>(p[2]);
                    if (st[1] == sizeof(T) && st[2] == sizeof(T)) {
                      for (int64_t i = 0; i < n; ++i) o[i] = f(xa[i], ya[i]);
                    } else if (st[1] == sizeof(T) && st[2] == 0) {
                      const T yv = *ya;
                      for (int64_t i = 0; i < n; ++i) o[i] = f(xa[i], yv);
                    } else if (st[1] == 0 && st[2] == sizeof(T)) {
                      const T xv = *xa;
                      for (int64_t i = 0; i < n; ++i) o[i] = f(xv, ya[i]);
                    } else {
                      for (int64_t i = 0; i < n; ++i)
                        o[i] = f(*reinterpret_cast<const T*>(p[1] + i * st[1]),
                                 *reinterpret_cast<const T*>(p[2] + i * st[2]));
                    }
                  });
  return out;
}

template <class T, class R, class F>
Tensor map3(const Tensor& a, const Tensor& b, const Tensor& c, DType out_dtype, const char* op, F f) {
  Shape shape = broadcast_shapes(broadcast_shapes(a.shape(), b.shape(), op), c.shape(), op);
  Tensor x = as_compute(a, dtype_of<T>()), y = as_compute(b, dtype_of<T>()), z = as_compute(c, dtype_of<T>());
  Tensor out = Tensor::empty(shape, out_dtype);
  Shape xs = broadcast_strides(x, shape, op), ys = broadcast_strides(y, shape, op),
        zs = broadcast_strides(z, shape, op);
  strided_loop<4>(shape, {out.strides(), xs, ys, zs}, {sizeof(R), sizeof(T), sizeof(T), sizeof(T)},
                  {static_cast<char*>(out.raw_data()), static_cast<char*>(x.raw_data()),
                   static_cast<char*>(y.raw_data()), static_cast<char*>(z.raw_data())},
                  [&f](const std::array<char*, 4>& p, const std::array<int64_t, 4>& st, int64_t n) {
                    R* o = reinterpret_cast<R*>(p[0]);
                    for (int64_t i = 0; i < n; ++i)
                      o[i] = f(*reinterpret_cast<const T*>(p[1] + i * st[1]),
                               *reinterpret_cast<const T*>(p[2] + i * st[2]),
                               *reinterpret_cast<const T*>(p[3] + i * st[3]));
                  });
  return out;
}

}  // namespace nc
