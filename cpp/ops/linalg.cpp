#include "ops/linalg.h"

#include "core/autograd.h"
#include "kernels/gemm.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace nc {
namespace {

// A 2-D operand as GEMM sees it: base pointer, transposed flag and row stride.
struct GemmOperand {
  Tensor keep;  // owns a contiguous copy when the layout needed one
  bool trans = false;
  int64_t ld = 0;
};

GemmOperand gemm_operand(const Tensor& m) {
  const int64_t rows = m.shape()[0], cols = m.shape()[1];
  const int64_t s0 = m.strides()[0], s1 = m.strides()[1];
  if ((s1 == 1 || cols == 1) && s0 >= std::max<int64_t>(cols, 1)) return {m, false, std::max<int64_t>(s0, 1)};
  if ((s0 == 1 || rows == 1) && s1 >= std::max<int64_t>(rows, 1)) return {m, true, std::max<int64_t>(s1, 1)};
  Tensor c = clone(m);
  return {c, false, std::max<int64_t>(cols, 1)};
}

// c (m x n, contiguous) = a @ b + beta * c (+ bias per column) for 2-D a, b of one float dtype.
void gemm_into(const Tensor& a, const Tensor& b, const Tensor& c, double beta, const Tensor& bias = Tensor()) {
  GemmOperand A = gemm_operand(a), B = gemm_operand(b);
  const int64_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
  if (m == 0 || n == 0) return;
  const auto& g = kernels::gemm();
  if (a.dtype() == DType::Float32)
    g.sgemm_bias_act(A.trans, B.trans, m, n, k, 1.0f, A.keep.data<float>(), A.ld, B.keep.data<float>(), B.ld,
                     static_cast<float>(beta), c.data<float>(), std::max<int64_t>(n, 1),
                     bias.defined() ? bias.data<float>() : nullptr, 0);
  else
    g.dgemm(A.trans, B.trans, m, n, k, 1.0, A.keep.data<double>(), A.ld, B.keep.data<double>(), B.ld,
            beta, c.data<double>(), std::max<int64_t>(n, 1));
}

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
  Tensor o3 = out.as_strided_alias({nb, m, n}, {m * n, n, 1}, 0);
  if (k == 0) {
    copy_raw(o3, zeros({}, a.dtype()));
    return out;
  }
  // Each batch's matrices are addressed through the (possibly broadcast, stride-0) batch strides
  // of a and b, so no operand is copied: GEMM reads them in place, transposed or not.
  const int64_t nbd = static_cast<int64_t>(batch.size());
  std::vector<int64_t> idx(nbd, 0);
  for (int64_t i = 0; i < nb; ++i) {
    int64_t oa = a.offset(), ob = b.offset();
    for (int64_t d = 0; d < nbd; ++d) {
      oa += idx[d] * a.strides()[d];
      ob += idx[d] * b.strides()[d];
    }
    Tensor ai = a.as_strided_alias({m, k}, {a.strides()[nbd], a.strides()[nbd + 1]}, oa);
    Tensor bi = b.as_strided_alias({k, n}, {b.strides()[nbd], b.strides()[nbd + 1]}, ob);
    gemm_into(ai, bi, o3.as_strided_alias({m, n}, {n, 1}, i * m * n), 0.0);
    for (int64_t d = nbd - 1; d >= 0 && ++idx[d] == batch[d]; --d) idx[d] = 0;
  }
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  check_float_pair(a_in, b_in, "matmul");
  NC_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, ValueError,
           "[matmul] both arguments need at least 1 dimension, got shapes ", shape_str(a_in.shape()), " and ",
           shape_str(b_in.shape()));
  // Promote vectors to matrices as numpy does, and drop the added dims at the end.
  Tensor a = a_in.dim() == 1 ? unsqueeze(a_in, 0) : a_in;
  Tensor b = b_in.dim() == 1 ? unsqueeze(b_in, 1) : b_in;
  const int64_t k = a.shape()[a.dim() - 1];
  NC_CHECK(k == b.shape()[b.dim() - 2], ValueError, "[matmul] shapes ", shape_str(a_in.shape()), " and ",
           shape_str(b_in.shape()), " cannot be multiplied (", k, " != ", b.shape()[b.dim() - 2], ")");
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
  Tensor out;
  {
    NoGradGuard no_grad;
    out = bmm_raw(expand(a, ae), expand(b, be));
    Shape final_shape = out.shape();
    if (b_in.dim() == 1) final_shape.erase(final_shape.end() - 1);
    if (a_in.dim() == 1) final_shape.erase(final_shape.end() - (b_in.dim() == 1 ? 1 : 2));
    out = out.as_strided_alias(final_shape, contiguous_strides(final_shape), 0);
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
  const int64_t rows = x.numel() / std::max<int64_t>(in, 1);
  Tensor out = Tensor::empty(out_shape, x.dtype());
  {
    NoGradGuard no_grad;
    Tensor x2 = reshape(x, {rows, in});
    Tensor o2 = out.as_strided_alias({rows, out_f}, {out_f, 1}, 0);
    // float32 adds the bias in the GEMM's store; float64 pre-fills C with it (beta = 1).
    const bool fused_bias = bias.defined() && x.dtype() == DType::Float32 && in > 0;
    double beta = 0.0;
    if (bias.defined() && !fused_bias) {
      copy_raw(o2, bias);
      beta = 1.0;
    }
    if (in == 0) {
      if (!bias.defined()) copy_raw(o2, zeros({}, x.dtype()));
    } else {
      gemm_into(x2, transpose(weight, 0, 1), o2, beta, fused_bias ? contiguous(bias) : Tensor());
    }
  }
  if (needs_history({x, weight, bias})) {
    SavedTensor sx(x, false), sw(weight, false);
    set_history("linear", {x, weight, bias}, {out},
                [sx, sw, rows, in, out_f](const TensorList& g, const std::vector<bool>& needs) {
                  Tensor x = sx.unpack("linear"), w = sw.unpack("linear");
                  Tensor g2 = reshape(g[0], {rows, out_f});
                  TensorList r(3);
                  if (needs[0]) r[0] = reshape(matmul(g2, w), x.shape());
                  if (needs[1]) r[1] = matmul(transpose(g2, 0, 1), reshape(x, {rows, in}));
                  if (needs[2]) r[2] = sum(g2, {0}, false);
                  return r;
                });
  }
  return out;
}

}  // namespace nc
