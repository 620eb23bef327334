#include "ops/linalg.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/derived_copy.h"
#include "core/parallel.h"
#include "kernels/gemm.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace nc {
namespace {

// A 2-D operand as GEMM reads it: base pointer, transposed flag and row stride. Built from the
// storage, offset and strides directly (no alias tensors: batch-1 layers are dominated by such
// fixed costs); only a matrix with no unit stride is copied.
struct GemmOperand {
  Tensor keep;  // owns a contiguous copy when the layout needed one
  const char* data = nullptr;
  bool trans = false;
  int64_t ld = 0;
};

// The matrix of `rows` x `cols` at element `offset` of t's storage with strides s0, s1.
GemmOperand gemm_operand(const Tensor& t, int64_t offset, int64_t rows, int64_t cols, int64_t s0, int64_t s1) {
  const char* base = static_cast<const char*>(t.impl()->storage->data) + offset * int64_t(t.itemsize());
  if ((s1 == 1 || cols == 1) && s0 >= std::max<int64_t>(cols, 1)) return {Tensor(), base, false, std::max<int64_t>(s0, 1)};
  if ((s0 == 1 || rows == 1) && s1 >= std::max<int64_t>(rows, 1)) return {Tensor(), base, true, std::max<int64_t>(s1, 1)};
  Tensor c = Tensor::empty({rows, cols}, t.dtype());
  copy_raw(c, t.as_strided_alias({rows, cols}, {s0, s1}, offset));
  return {c, static_cast<const char*>(c.raw_data()), false, std::max<int64_t>(cols, 1)};
}

// c (m x n, row stride ldc) = a @ b + beta * c (+ bias per column, float32 only) for a float dtype.
void gemm_into(DType dt, const GemmOperand& A, const GemmOperand& B, int64_t m, int64_t n, int64_t k, void* c,
               int64_t ldc, double beta, const float* bias = nullptr) {
  if (m == 0 || n == 0) return;
  const auto& g = kernels::gemm();
  if (dt == DType::Float32)
    g.f32.gemm_bias_act(A.trans, B.trans, m, n, k, 1.0f, reinterpret_cast<const float*>(A.data), A.ld,
                     reinterpret_cast<const float*>(B.data), B.ld, static_cast<float>(beta), static_cast<float*>(c),
                     ldc, bias, 0);
  else
    g.f64.gemm(A.trans, B.trans, m, n, k, 1.0, reinterpret_cast<const double*>(A.data), A.ld,
            reinterpret_cast<const double*>(B.data), B.ld, beta, static_cast<double*>(c), ldc);
}

// bmm_raw: products up to kWholeProductMacs multiply-adds (256^3, about the smallest that two
// threads still split well) may run whole, one per thread, those up to kSmallProductMacs (64^3,
// which GEMM does not split) always do; in chunks of at least kMinBatchChunkMacs.
constexpr double kWholeProductMacs = double(1 << 24);
constexpr double kSmallProductMacs = double(1 << 18);
constexpr double kMinBatchChunkMacs = double(1 << 16);

void check_float_pair(const Tensor& a, const Tensor& b, const char* op) {
  NC_CHECK(is_floating(a.dtype()) && a.dtype() == b.dtype(), TypeError, "[", op,
           "] expected both operands to be float32 or both float64, got ", dtype_name(a.dtype()), " and ",
           dtype_name(b.dtype()));
}

// Batched product of a (..., m, k) and b (..., k, n) whose batch dims are already broadcast.
Tensor bmm_raw(const Tensor& a, const Tensor& b) {
  Shape batch(a.shape().begin(), a.shape().end() - 2);
  const int64_t m = a.shape()[a.dim() - 2], k = a.shape()[a.dim() - 1], n = b.shape()[b.dim() - 1];
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = Tensor::empty(out_shape, a.dtype());
  const int64_t nb = shape_numel(batch);
  if (k == 0) {
    copy_raw(out, zeros({}, a.dtype()));
    return out;
  }
  // Each batch's matrices are addressed through the (possibly broadcast, stride-0) batch strides
  // of a and b, so no operand is copied: GEMM reads them in place, transposed or not.
  const int64_t nbd = static_cast<int64_t>(batch.size());
  const auto product = [&](int64_t i) {
    int64_t oa = a.offset(), ob = b.offset();
    for (int64_t d = nbd - 1, rest = i; d >= 0; --d) {
      oa += rest % batch[d] * a.strides()[d];
      ob += rest % batch[d] * b.strides()[d];
      rest /= batch[d];
    }
    GemmOperand A = gemm_operand(a, oa, m, k, a.strides()[nbd], a.strides()[nbd + 1]);
    GemmOperand B = gemm_operand(b, ob, k, n, b.strides()[nbd], b.strides()[nbd + 1]);
    gemm_into(a.dtype(), A, B, m, n, k, static_cast<char*>(out.raw_data()) + i * m * n * int64_t(out.itemsize()), n, 0.0);
  };
  // Many small products (attention's per-head scores, 128 x 32 x 128) are shared out whole, each
  // on one thread: split inside, each paid a synchronisation for a few microseconds of work (the
  // seed's attention ran its two batched products at a quarter of the machine's peak). Large ones,
  // and medium ones too few to keep every thread busy, keep their own threads. A GEMM's result
  // does not depend on its thread count either way.
  const double macs = double(m) * double(n) * double(k);
  const bool whole = macs <= kSmallProductMacs || (macs <= kWholeProductMacs && nb >= 2 * get_num_threads());
  if (nb > 1 && whole) {
    const auto grain = static_cast<int64_t>(std::max(1.0, kMinBatchChunkMacs / std::max(macs, 1.0)));
    parallel_for(0, nb, grain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) product(i);
    });
  } else {
    for (int64_t i = 0; i < nb; ++i) product(i);
  }
  return out;
}

// a_in @ b_in where a and b are a_in and b_in promoted to >= 2-D: broadcasts the batch dims and
// drops the dims the promotion added.
Tensor matmul_batched(const Tensor& a_in, const Tensor& b_in, const Tensor& a, const Tensor& b) {
  Shape ab(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch;
  {
    size_t nd = std::max(ab.size(), bb.size());
    batch.resize(nd);
    for (size_t i = 0; i < nd; ++i) {
      int64_t da = i < nd - ab.size() ? 1 : ab[i - (nd - ab.size())];
      int64_t db = i < nd - bb.size() ? 1 : bb[i - (nd - bb.size())];
      NC_CHECK(da == db || da == 1 || db == 1, ValueError, "[matmul] batch dimensions of ", shape_str(a_in.shape()),
               " and ", shape_str(b_in.shape()), " cannot be broadcast");
      batch[i] = std::max(da, db);
    }
  }
  Shape ae = batch, be = batch;
  ae.insert(ae.end(), a.shape().end() - 2, a.shape().end());
  be.insert(be.end(), b.shape().end() - 2, b.shape().end());
  NoGradGuard no_grad;
  Tensor out = bmm_raw(expand(a, ae), expand(b, be));
  Shape final_shape = out.shape();
  if (b_in.dim() == 1) final_shape.erase(final_shape.end() - 1);
  if (a_in.dim() == 1) final_shape.erase(final_shape.end() - (b_in.dim() == 1 ? 1 : 2));
  return out.as_strided_alias(final_shape, contiguous_strides(final_shape), 0);
}

template <class T>
const kernels::GemmFns<T>& fns_of(const kernels::GemmKernels& g) {
  if constexpr (sizeof(T) == 4) return g.f32;
  else return g.f64;
}

// W packed for y = x W^T (op(B) = W^T, k = in, n = out): the cached copy, else packed now.
template <class T>
std::shared_ptr<const DerivedCopy> packed_weight(const Tensor& w) {
  const auto& f = fns_of<T>(kernels::gemm());
  const int64_t out_f = w.shape()[0], in = w.shape()[1];
  return derived_copy(w, &kernels::gemm(), static_cast<size_t>(f.packed_b_elems(in, out_f)) * sizeof(T),
                      [&](void* data) {
                        const GemmOperand B = gemm_operand(w, w.offset(), in, out_f, w.strides()[1], w.strides()[0]);
                        f.pack_b(B.trans, in, out_f, reinterpret_cast<const T*>(B.data), B.ld, static_cast<T*>(data));
                        return true;
                      });
}

}  // namespace

bool has_packed_weight(const Tensor& weight) {
  return weight.defined() && find_derived(weight, &kernels::gemm(), weight.version()) != nullptr;
}

bool linear_prepacked(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t rows, void* y, int act,
                      bool weight_history) {
  const DType dt = weight.dtype();
  if (rows < kernels::kPrepackedMinRows || weight.dim() != 2 || !is_floating(dt) ||
      x.dtype() != dt || (bias.defined() && bias.dtype() != dt))
    return false;
  if (weight_history) return false;  // a weight being trained: a new version every step, no reuse
  if (!may_derive(weight)) return false;
  const int64_t out_f = weight.shape()[0], in = weight.shape()[1];
  if (out_f == 0 || in == 0) return false;
  const auto run = [&](auto tag) {
    using T = decltype(tag);
    const auto pw = packed_weight<T>(weight);
    if (!pw) return false;
    const T* b = bias.defined() ? static_cast<const T*>(bias.raw_data()) : nullptr;
    T* out = static_cast<T*>(y);
    // float64 starts C from the bias (beta = 1), as linear's unpacked path does: the same sums.
    const bool prefill = b && sizeof(T) == 8;
    if (prefill)
      for (int64_t r = 0; r < rows; ++r) std::copy(b, b + out_f, out + r * out_f);
    fns_of<T>(kernels::gemm()).gemm_prepacked(false, rows, out_f, in, T(1), static_cast<const T*>(x.raw_data()), in,
                                              static_cast<const T*>(pw->data), prefill ? T(1) : T(0), out, out_f,
                                              prefill ? nullptr : b, act);
    return true;
  };
  return dt == DType::Float32 ? run(float()) : run(double());
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  if (a_in.dtype() == b_in.dtype() && is_storage_dtype(a_in.dtype()) && is_float_type(a_in.dtype()))  // float16, bfloat16
    return to_dtype(matmul(to_dtype(a_in, DType::Float32), to_dtype(b_in, DType::Float32)), a_in.dtype());
  check_float_pair(a_in, b_in, "matmul");
  NC_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, ValueError,
           "[matmul] both arguments need at least 1 dimension, got shapes ", shape_str(a_in.shape()), " and ",
           shape_str(b_in.shape()));
  const int64_t k = a_in.shape().back(), kb = b_in.shape()[b_in.dim() == 1 ? 0 : b_in.dim() - 2];
  NC_CHECK(k == kb, ValueError, "[matmul] shapes ", shape_str(a_in.shape()), " and ", shape_str(b_in.shape()),
           " cannot be multiplied (", k, " != ", kb, ")");
  Tensor out;
  if (a_in.dim() == 2 && b_in.dim() == 2) {
    out = bmm_raw(a_in, b_in);  // the common case, without the views that batching needs
  } else {
    NoGradGuard no_grad;
    // Promote vectors to matrices as numpy does; matmul_batched drops the added dims at the end.
    out = matmul_batched(a_in, b_in, a_in.dim() == 1 ? unsqueeze(a_in, 0) : a_in,
                         b_in.dim() == 1 ? unsqueeze(b_in, 1) : b_in);
  }
  if (needs_history({a_in, b_in})) {
    SavedTensor sa(a_in, false), sb(b_in, false);
    Shape a_shape = a_in.shape(), b_shape = b_in.shape(), out_shape = out.shape();
    set_history("matmul", {a_in, b_in}, {out},
                [sa, sb, a_shape, b_shape](const TensorList& g, const std::vector<bool>& needs) {
                  Tensor a = sa.unpack("matmul"), b = sb.unpack("matmul");
                  // Work in the promoted (>= 2-D) forms, then reduce to the inputs' shapes.
                  Tensor a2 = a.dim() == 1 ? unsqueeze(a, 0) : a;
                  Tensor b2 = b.dim() == 1 ? unsqueeze(b, 1) : b;
                  Tensor go = g[0];
                  if (a.dim() == 1) go = unsqueeze(go, go.dim() - (b.dim() == 1 ? 0 : 1));
                  if (b.dim() == 1) go = unsqueeze(go, go.dim());
                  TensorList r(2);
                  if (needs[0]) r[0] = reshape(sum_to(matmul(go, transpose(b2, -1, -2)),
                                                      a.dim() == 1 ? Shape{1, a_shape[0]} : a_shape), a_shape);
                  if (needs[1]) r[1] = reshape(sum_to(matmul(transpose(a2, -1, -2), go),
                                                      b.dim() == 1 ? Shape{b_shape[0], 1} : b_shape), b_shape);
                  return r;
                });
  }
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_float_pair(x, weight, "linear");
  NC_CHECK(weight.dim() == 2, ValueError, "[linear] weight must be 2-D (out_features, in_features), got shape ",
           shape_str(weight.shape()));
  NC_CHECK(x.dim() >= 1, ValueError, "[linear] input must have at least 1 dimension, got a 0-dim tensor");
  const int64_t in = weight.shape()[1], out_f = weight.shape()[0];
  NC_CHECK(x.shape().back() == in, ValueError, "[linear] input has ", x.shape().back(), " features, weight expects ",
           in, " (input shape ", shape_str(x.shape()), ", weight shape ", shape_str(weight.shape()), ")");
  if (bias.defined()) {
    check_float_pair(x, bias, "linear");
    NC_CHECK(bias.dim() == 1 && bias.shape()[0] == out_f, ValueError, "[linear] bias shape ",
             shape_str(bias.shape()), " doesn't match out_features ", out_f);
  }
  Shape out_shape = x.shape();
  out_shape.back() = out_f;
  const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));  // also right when in == 0
  Tensor out = Tensor::empty(out_shape, x.dtype());
  if (rows > 0 && out_f > 0) {
    const bool weight_history = needs_history({weight});  // (read before the guard turns it off)
    NoGradGuard no_grad;
    const Tensor xc = in > 0 ? contiguous(x) : x;  // rows x in
    const Tensor bc = bias.defined() ? contiguous(bias) : bias;
    if (in == 0) {
      if (bias.defined()) copy_raw(out, bias);
      else copy_raw(out, zeros({}, x.dtype()));
    } else if (!linear_prepacked(xc, weight, bc, rows, out.raw_data(), 0, weight_history)) {
      // float32 adds the bias in the GEMM's store; float64 pre-fills C with it (beta = 1).
      const bool fused_bias = bias.defined() && x.dtype() == DType::Float32;
      if (bias.defined() && !fused_bias) copy_raw(out, bias);
      const GemmOperand X{Tensor(), static_cast<const char*>(xc.raw_data()), false, in};
      // op(B) = W^T (in x out): W's strides swapped.
      const GemmOperand W = gemm_operand(weight, weight.offset(), in, out_f, weight.strides()[1], weight.strides()[0]);
      gemm_into(x.dtype(), X, W, rows, out_f, in, out.raw_data(), out_f, bias.defined() && !fused_bias ? 1.0 : 0.0,
                fused_bias ? bc.data<float>() : nullptr);
    }
  }
  if (needs_history({x, weight, bias})) {
    SavedTensor sx(x, false), sw(weight, false);
    set_history("linear", {x, weight, bias}, {out}, [sx, sw](const TensorList& g, const std::vector<bool>& needs) {
      return linear_backward(g[0], sx.unpack("linear"), sw.unpack("linear"), needs);
    });
  }
  return out;
}

TensorList linear_backward(const Tensor& grad_out, const Tensor& x, const Tensor& weight,
                           const std::vector<bool>& needs) {
  const int64_t in = weight.shape()[1], out_f = weight.shape()[0];
  const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));  // also right when in == 0
  const Tensor g2 = reshape(grad_out, {rows, out_f});
  TensorList r(3);
  if (needs[0]) r[0] = reshape(matmul(g2, weight), x.shape());
  if (needs[1]) {
    const Tensor x2 = reshape(x, {rows, in});
    // A weight that is the transpose of a contiguous (in, out) tensor (Keras's Dense kernel)
    // gets its gradient computed in that layout, x^T g, and handed back as its transpose: the
    // transpose's backward then returns it as is instead of copying it through strides.
    const bool transposed = weight.dim() == 2 && out_f > 1 && in > 1 && weight.strides()[0] == 1 &&
                            weight.strides()[1] == out_f;
    r[1] = transposed ? transpose(matmul(transpose(x2, 0, 1), g2), 0, 1) : matmul(transpose(g2, 0, 1), x2);
  }
  if (needs[2]) r[2] = sum(g2, {0}, false);
  return r;
}

}  // namespace nc
