#include "kernels/elementwise.h"

#include "kernels/isa.h"

namespace nc::kernels::NC_ISA {
namespace {

// Plain loops: the compiler vectorises them for the ISA of this build. The op and the operand
// pattern are template parameters so each combination is one branch-free loop.
template <class T, BinaryOp Op>
inline T apply(T x, T y) {
  if constexpr (Op == BinaryOp::Add) return x + y;
  else if constexpr (Op == BinaryOp::Sub) return x - y;
  else if constexpr (Op == BinaryOp::Mul) return x * y;
  else return x / y;
}

template <class T, BinaryOp Op>
void binary_loop(const T* a, int64_t sa, const T* b, int64_t sb, T* out, int64_t n) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = apply<T, Op>(a[i], b[i]);
  } else if (sa == 1) {
    const T y = *b;
    for (int64_t i = 0; i < n; ++i) out[i] = apply<T, Op>(a[i], y);
  } else if (sb == 1) {
    const T x = *a;
    for (int64_t i = 0; i < n; ++i) out[i] = apply<T, Op>(x, b[i]);
  } else {
    const T v = apply<T, Op>(*a, *b);
    for (int64_t i = 0; i < n; ++i) out[i] = v;
  }
}

template <class T>
void binary(BinaryOp op, const T* a, int64_t sa, const T* b, int64_t sb, T* out, int64_t n) {
  switch (op) {
    case BinaryOp::Add: return binary_loop<T, BinaryOp::Add>(a, sa, b, sb, out, n);
    case BinaryOp::Sub: return binary_loop<T, BinaryOp::Sub>(a, sa, b, sb, out, n);
    case BinaryOp::Mul: return binary_loop<T, BinaryOp::Mul>(a, sa, b, sb, out, n);
    default: return binary_loop<T, BinaryOp::Div>(a, sa, b, sb, out, n);
  }
}

template <class T, BinaryOp Op>
void rows_loop(const T* a, const T* v, int64_t vlen, int64_t r0, bool per_row, bool v_left, T* out, int64_t rows,
               int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* vr = per_row ? v + (r0 + r) % vlen : v;
    const int64_t sv = per_row ? 0 : 1;
    if (v_left) binary_loop<T, Op>(vr, sv, a + r * cols, 1, out + r * cols, cols);
    else binary_loop<T, Op>(a + r * cols, 1, vr, sv, out + r * cols, cols);
  }
}

template <class T>
void binary_rows(BinaryOp op, const T* a, const T* v, int64_t vlen, int64_t r0, bool per_row, bool v_left, T* out,
                 int64_t rows, int64_t cols) {
  switch (op) {
    case BinaryOp::Add: return rows_loop<T, BinaryOp::Add>(a, v, vlen, r0, per_row, v_left, out, rows, cols);
    case BinaryOp::Sub: return rows_loop<T, BinaryOp::Sub>(a, v, vlen, r0, per_row, v_left, out, rows, cols);
    case BinaryOp::Mul: return rows_loop<T, BinaryOp::Mul>(a, v, vlen, r0, per_row, v_left, out, rows, cols);
    default: return rows_loop<T, BinaryOp::Div>(a, v, vlen, r0, per_row, v_left, out, rows, cols);
  }
}

template <class T>
void relu(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    y[i] = (v > 0 || v != v) ? v : T(0);
  }
}

template <class T>
void relu_backward(const T* g, const T* y, T* gx, int64_t n) {
  // PyTorch's threshold_backward: exactly 0 where y <= 0 (whatever g), g elsewhere (y NaN too).
  for (int64_t i = 0; i < n; ++i) gx[i] = y[i] <= 0 ? T(0) : g[i];
}

template <class T>
void sigmoid_backward(const T* g, const T* y, T* gx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gx[i] = g[i] * (y[i] * (1 - y[i]));
}

template <class T>
void tanh_backward(const T* g, const T* y, T* gx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gx[i] = g[i] * (1 - y[i] * y[i]);
}

template <class T>
constexpr ElementwiseFns<T> fns() {
  return {binary<T>, binary_rows<T>, relu<T>, relu_backward<T>, sigmoid_backward<T>, tanh_backward<T>};
}

}  // namespace

const ElementwiseKernels elementwise_table = {fns<float>(), fns<double>()};

}  // namespace nc::kernels::NC_ISA
