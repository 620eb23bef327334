#pragma once
// Hot elementwise loops on raw contiguous buffers, compiled per ISA so that they vectorise with
// AVX2. Each computes exactly the scalar formula of the op it serves (the file is compiled with
// -ffp-contract=off: no fused multiply-add changes a result), so the fast and the general
// strided paths agree bit for bit (the backward kernels serve the strided case too, see
// ops/pointwise.h). Callers split ranges between threads; every element is
// computed the same way wherever a range starts.
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

enum class BinaryOp : int { Add = 0, Sub = 1, Mul = 2, Div = 3 };

template <class T>
struct ElementwiseFns {
  // out[i] = a[i * sa] op b[i * sb], with sa, sb in {0, 1} (0: a broadcast scalar).
  void (*binary)(BinaryOp op, const T* a, int64_t sa, const T* b, int64_t sb, T* out, int64_t n);
  // A dense operand a against a broadcast vector v, over `rows` rows of `cols` elements:
  // out[r, j] = a[r, j] op v[j] (per_row false: v is a row repeated down, as (N, C) + (C,)), or
  // a[r, j] op v[(r0 + r) % vlen] (per_row true: one value per row, as (N, C, H, W) + (C, 1, 1)
  // with rows of H * W); v_left computes v op a instead. out may be a.
  void (*binary_rows)(BinaryOp op, const T* a, const T* v, int64_t vlen, int64_t r0, bool per_row, bool v_left,
                      T* out, int64_t rows, int64_t cols);
  // y = x > 0 ? x : 0, NaN passing through.
  void (*relu)(const T* x, T* y, int64_t n);
  // Fused backward from the output y: gx = g * f'(y).
  void (*relu_backward)(const T* g, const T* y, T* gx, int64_t n);     // y <= 0 ? 0 : g
  void (*sigmoid_backward)(const T* g, const T* y, T* gx, int64_t n);  // g * (y * (1 - y))
  void (*tanh_backward)(const T* g, const T* y, T* gx, int64_t n);     // g * (1 - y * y)
};

struct ElementwiseKernels {
  ElementwiseFns<float> f32;
  ElementwiseFns<double> f64;
};

NC_KERNEL_FAMILY(ElementwiseKernels, elementwise)

}  // namespace nc::kernels
