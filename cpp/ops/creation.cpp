#include "ops/creation.h"

#include <cmath>
#include <cstring>

#include "core/autograd.h"
#include "core/iter.h"

namespace nc {

static void fill_raw(const Tensor& t, Scalar value) {
  dispatch_storage(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T v = convert_element<T>(value.value);
    strided_loop<1>(t.shape(), {t.strides()}, {sizeof(T)}, {static_cast<char*>(t.raw_data())},
                    [v](const std::array<char*, 1>& p, const std::array<int64_t, 1>& st, int64_t n) {
                      if (st[0] == sizeof(T)) {
                        T* d = reinterpret_cast<T*>(p[0]);
                        for (int64_t i = 0; i < n; ++i) d[i] = v;
                      } else {
                        for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * st[0]) = v;
                      }
                    });
  });
}

Tensor full(const Shape& shape, Scalar value, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  if (value.value == 0.0 && !std::signbit(value.value)) std::memset(t.raw_data(), 0, t.numel() * t.itemsize());
  else fill_raw(t, value);
  return t;
}

Tensor zeros(const Shape& shape, DType dtype) { return full(shape, Scalar(0.0), dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, Scalar(1.0), dtype); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor full_like(const Tensor& t, Scalar value) { return full(t.shape(), value, t.dtype()); }
Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), t.dtype()); }

void fill_(const Tensor& t, Scalar value) {
  prepare_inplace(t, "fill_");
  fill_raw(t, value);
  t.bump_version();
  if (needs_history({t}))
    set_history("fill_", {t}, {t}, [](const TensorList& g, const std::vector<bool>&) {
      return TensorList{zeros_like(g[0])};
    });
}

}  // namespace nc
