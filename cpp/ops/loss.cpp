// Losses, composed from differentiable ops (so double backward works) around fused
// log_softmax / gather kernels; validation names the loss and the shapes.
#include "ops/loss.h"

#include <cmath>

#include "core/autograd.h"
#include "ops/activation.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/elementwise.h"
#include "ops/elementwise_impl.h"
#include "ops/gather.h"
#include "ops/math.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "ops/softmax.h"

namespace nc {

Reduction parse_reduction(const std::string& r, const char* op) {
  if (r == "mean") return Reduction::Mean;
  if (r == "sum") return Reduction::Sum;
  if (r == "none") return Reduction::None;
  throw ValueError(cat_str("[", op, "] reduction must be 'mean', 'sum' or 'none', got '", r, "'"));
}

namespace {

Tensor scalar(double v, DType d) { return full({}, Scalar(v), d); }

// total / weight_sum with PyTorch's conventions for an all-ignored batch: the loss is NaN (0/0)
// but the gradient is zero, not NaN. weight_sum does not depend on the input.
Tensor weighted_mean(const Tensor& total, const Tensor& weight_sum) {
  Tensor w = detach(weight_sum);
  Tensor zero = zeros({}, w.dtype());
  Tensor empty = compare(Compare::Eq, w, zero);
  Tensor scale = where(empty, zero, reciprocal(where(empty, scalar(1.0, w.dtype()), w)));
  return add(mul(total, scale), where(empty, scalar(NAN, w.dtype()), zero));
}

Tensor reduce(const Tensor& loss, Reduction r) {
  if (r == Reduction::Sum) return sum(loss, {}, false);
  if (r == Reduction::Mean) return mean(loss, {}, false);
  return loss;
}

void check_float(const Tensor& t, const char* op, const char* what) {
  NC_CHECK(is_floating(t.dtype()), TypeError, "[", op, "] ", what, " must be a floating-point tensor, got ",
           dtype_name(t.dtype()), " (shape ", shape_str(t.shape()), ")");
}

void check_same_shape(const Tensor& input, const Tensor& target, const char* op) {
  NC_CHECK(input.shape() == target.shape(), ValueError, "[", op, "] input shape ", shape_str(input.shape()),
           " and target shape ", shape_str(target.shape()), " must match");
}

// Moves the class dim (1, or 0 for an unbatched (C,) input) last and flattens to (M, C).
Tensor classes_last(const Tensor& x) {
  if (x.dim() == 1) return reshape(x, {1, x.shape()[0]});
  if (x.dim() == 2) return x;
  Shape perm{0};
  for (int64_t d = 2; d < x.dim(); ++d) perm.push_back(d);
  perm.push_back(1);
  return reshape(permute(x, perm), {-1, x.shape()[1]});
}

// Checks class-index targets against an input of `c` classes; returns the expected target shape.
void check_class_targets(const Tensor& input, const Tensor& target, int64_t ignore_index, const char* op) {
  NC_CHECK(target.dtype() == DType::Int64, TypeError, "[", op, "] class-index target must be int64, got ",
           dtype_name(target.dtype()), " (use a float target of the input's shape for class probabilities)");
  NC_CHECK(input.dim() >= 1, ValueError, "[", op, "] input must have at least 1 dimension, got a 0-dim tensor");
  Shape expected;
  if (input.dim() >= 2) {
    expected.push_back(input.shape()[0]);
    expected.insert(expected.end(), input.shape().begin() + 2, input.shape().end());
  }
  NC_CHECK(target.shape() == expected, ValueError, "[", op, "] input shape ", shape_str(input.shape()),
           " expects a target of shape ", shape_str(expected), ", got ", shape_str(target.shape()));
  const int64_t c = input.dim() == 1 ? input.shape()[0] : input.shape()[1];
  Tensor t = contiguous(target);
  const int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (p[i] != ignore_index && (p[i] < 0 || p[i] >= c))
      throw IndexError(cat_str("[", op, "] target ", p[i], " is out of bounds for ", c, " classes"));
}

}  // namespace

Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                Reduction reduction) {
  check_float(input, "nll_loss", "input");
  check_class_targets(input, target, ignore_index, "nll_loss");
  const int64_t c = input.dim() == 1 ? input.shape()[0] : input.shape()[1];
  if (weight.defined())
    NC_CHECK(weight.dim() == 1 && weight.shape()[0] == c, ValueError, "[nll_loss] weight must have shape (", c,
             ",), got ", shape_str(weight.shape()));
  Tensor lp = classes_last(input);                      // (M, C)
  Tensor t = reshape(target, {-1});                      // (M,)
  Tensor valid = compare(Compare::Ne, t, full({}, Scalar::integer(ignore_index), DType::Int64));
  Tensor safe = where(valid, t, zeros({}, DType::Int64));
  Tensor picked = reshape(gather(lp, 1, unsqueeze(safe, 1)), {-1});
  Tensor w = to_dtype(valid, input.dtype());
  if (weight.defined()) w = mul(w, gather(detach(to_dtype(weight, input.dtype())), 0, safe));
  Tensor losses = neg(mul(picked, w));
  if (reduction == Reduction::None) return reshape(losses, target.shape());
  Tensor total = sum(losses, {}, false);
  if (reduction == Reduction::Sum) return total;
  return weighted_mean(total, sum(w, {}, false));
}

namespace {

// cross_entropy of (N, C) logits against class indices, without class weights or label smoothing,
// reduced by mean or sum (the training loop's loss): one node instead of the ~25 ops of the
// general formula. The forward sums the picked log-probabilities in double; the backward is
// (softmax(x) - onehot(target)) * g * row_weight (row_weight: 1/count, or 1 for sum, and 0 on
// ignored rows), written with differentiable ops so that create_graph gives higher derivatives.
Tensor cross_entropy_indices(const Tensor& input, const Tensor& target, int64_t ignore_index, Reduction reduction) {
  check_class_targets(input, target, ignore_index, "nll_loss");
  const int64_t n = input.shape()[0], c = input.shape()[1];
  const DType dt = input.dtype();
  Tensor lp;
  {
    NoGradGuard no_grad;
    lp = contiguous(log_softmax(input, 1));
  }
  const Tensor t = contiguous(target);
  const int64_t* tp = t.data<int64_t>();
  Tensor onehot = zeros({n, c}, dt), row_weight = Tensor::empty({n, 1}, dt);
  double total = 0;
  int64_t count = 0;
  dispatch_floating(dt, "cross_entropy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* l = lp.data<T>();
    T* oh = onehot.data<T>();
    T* rw = row_weight.data<T>();
    for (int64_t i = 0; i < n; ++i) {
      const bool valid = tp[i] != ignore_index;
      rw[i] = T(valid);
      if (!valid) continue;
      total += static_cast<double>(l[i * c + tp[i]]);
      oh[i * c + tp[i]] = T(1);
      ++count;
    }
    if (reduction == Reduction::Mean && count > 0)
      for (int64_t i = 0; i < n; ++i) rw[i] = rw[i] / static_cast<T>(count);
  });
  // An all-ignored batch: the mean is NaN (0/0) and the gradient zero, as PyTorch gives.
  const double value = reduction == Reduction::Sum ? -total : (count > 0 ? -total / count : NAN);
  Tensor out = scalar(value, dt);
  if (needs_history({input})) {
    SavedTensor sx(input, false);
    set_history("cross_entropy", {input}, {out},
                [sx, lp, onehot, row_weight](const TensorList& g, const std::vector<bool>&) {
      const Tensor x = sx.unpack("cross_entropy");
      if (GradMode::is_enabled())  // create_graph: the same formula with its own graph
        return TensorList{mul(sub(softmax(x, 1), onehot), mul(row_weight, g[0]))};
      // Otherwise one pass over the saved log-probabilities: (exp(lp) - onehot) * row_weight * g.
      Tensor gx = Tensor::empty(lp.shape(), lp.dtype());
      const Tensor go = contiguous(g[0]);
      dispatch_floating(lp.dtype(), "cross_entropy", [&](auto tag) {
        using T = typename decltype(tag)::type;
        const int64_t rows = lp.shape()[0], cols = lp.shape()[1];
        const T* l = lp.data<T>();
        const T* oh = onehot.data<T>();
        const T* rw = row_weight.data<T>();
        T* out = gx.data<T>();
        const T gv = go.data<T>()[0];
        for (int64_t i = 0; i < rows; ++i) {
          const T scale = rw[i] * gv;
          for (int64_t j = 0; j < cols; ++j) out[i * cols + j] = (std::exp(l[i * cols + j]) - oh[i * cols + j]) * scale;
        }
      });
      return TensorList{gx};
    });
  }
  return out;
}

}  // namespace

Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                     Reduction reduction, double label_smoothing) {
  check_float(input, "cross_entropy", "input");
  if (input.dim() == 2 && target.dtype() == DType::Int64 && !weight.defined() && label_smoothing == 0 &&
      reduction != Reduction::None && (input.dtype() == DType::Float32 || input.dtype() == DType::Float64))
    return cross_entropy_indices(input, target, ignore_index, reduction);
  NC_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, ValueError,
           "[cross_entropy] label_smoothing must be in [0, 1], got ", label_smoothing);
  NC_CHECK(input.dim() >= 1, ValueError, "[cross_entropy] input must have at least 1 dimension (classes)");
  const int64_t class_dim = input.dim() == 1 ? 0 : 1;
  const int64_t c = input.shape()[class_dim];
  if (weight.defined())
    NC_CHECK(weight.dim() == 1 && weight.shape()[0] == c, ValueError, "[cross_entropy] weight must have shape (",
             c, ",), got ", shape_str(weight.shape()));
  Tensor lp = log_softmax(input, class_dim);
  Shape wshape(input.dim(), 1);
  wshape[class_dim] = c;
  Tensor wb = weight.defined() ? reshape(detach(to_dtype(weight, input.dtype())), wshape) : Tensor();

  if (is_floating(target.dtype())) {  // class probabilities
    check_same_shape(input, target, "cross_entropy");
    Tensor tgt = target;
    if (label_smoothing > 0)
      tgt = add(mul(target, scalar(1 - label_smoothing, input.dtype())), scalar(label_smoothing / c, input.dtype()));
    Tensor prod = mul(lp, tgt);
    if (wb.defined()) prod = mul(prod, wb);
    Tensor per = neg(sum(prod, {class_dim}, false));
    if (reduction == Reduction::None) return per;
    Tensor total = sum(per, {}, false);
    if (reduction == Reduction::Sum) return total;
    const double count = static_cast<double>(input.numel() / std::max<int64_t>(c, 1));
    return div(total, scalar(count, input.dtype()));  // 0/0 = NaN for an empty batch
  }

  Tensor nll = nll_loss(lp, target, weight, ignore_index, reduction);
  if (label_smoothing == 0) return nll;
  // PyTorch: (1 - eps) * nll + eps / C * smooth, smooth = -sum_c w_c log p_c over non-ignored targets,
  // normalised like nll's weighted mean.
  Tensor valid = compare(Compare::Ne, target, full({}, Scalar::integer(ignore_index), DType::Int64));
  Tensor smooth = neg(sum(wb.defined() ? mul(lp, wb) : lp, {class_dim}, false));
  smooth = mul(smooth, to_dtype(valid, input.dtype()));
  Tensor ret;
  if (reduction == Reduction::None) {
    ret = smooth;
  } else {
    ret = sum(smooth, {}, false);
    if (reduction == Reduction::Mean) {
      Tensor denom;
      if (weight.defined()) {
        Tensor safe = where(valid, target, zeros({}, DType::Int64));
        denom = sum(mul(gather(detach(to_dtype(weight, input.dtype())), 0, reshape(safe, {-1})),
                        reshape(to_dtype(valid, input.dtype()), {-1})), {}, false);
      } else {
        denom = sum(to_dtype(valid, input.dtype()), {}, false);
      }
      ret = weighted_mean(ret, denom);
    }
  }
  return add(mul(nll, scalar(1 - label_smoothing, input.dtype())), mul(ret, scalar(label_smoothing / c, input.dtype())));
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_float(input, "mse_loss", "input");
  check_same_shape(input, target, "mse_loss");
  Tensor d = sub(input, target);
  return reduce(mul(d, d), reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_float(input, "l1_loss", "input");
  check_same_shape(input, target, "l1_loss");
  return reduce(abs(sub(input, target)), reduction);
}

Tensor huber_loss(const Tensor& input, const Tensor& target, Reduction reduction, double delta) {
  check_float(input, "huber_loss", "input");
  check_same_shape(input, target, "huber_loss");
  NC_CHECK(delta > 0, ValueError, "[huber_loss] delta must be positive, got ", delta);
  Tensor d = sub(input, target), ad = abs(d);
  DType dt = input.dtype();
  // The quadratic branch sees d clamped to its own range: where() sends it a zero gradient
  // elsewhere, and 0 * (d at inf) would make the gradient NaN.
  Tensor dq = clamp(d, scalar(-delta, dt), scalar(delta, dt));
  Tensor quad = mul(scalar(0.5, dt), mul(dq, dq));
  Tensor lin = mul(scalar(delta, dt), sub(ad, scalar(0.5 * delta, dt)));
  return reduce(where(compare(Compare::Lt, ad, scalar(delta, dt)), quad, lin), reduction);
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, double beta) {
  check_float(input, "smooth_l1_loss", "input");
  check_same_shape(input, target, "smooth_l1_loss");
  NC_CHECK(beta >= 0, ValueError, "[smooth_l1_loss] beta must be non-negative, got ", beta);
  if (beta == 0) return l1_loss(input, target, reduction);
  Tensor d = sub(input, target), ad = abs(d);
  DType dt = input.dtype();
  Tensor dq = clamp(d, scalar(-beta, dt), scalar(beta, dt));  // as in huber_loss: no 0 * inf gradient
  Tensor quad = div(mul(scalar(0.5, dt), mul(dq, dq)), scalar(beta, dt));
  Tensor lin = sub(ad, scalar(0.5 * beta, dt));
  return reduce(where(compare(Compare::Lt, ad, scalar(beta, dt)), quad, lin), reduction);
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight, Reduction reduction) {
  check_float(input, "binary_cross_entropy", "input");
  check_same_shape(input, target, "binary_cross_entropy");
  // Probabilities and targets outside [0, 1] (or NaN) give a meaningless loss: refused, as PyTorch does.
  for (const auto& [t, what] : {std::pair<const Tensor&, const char*>{input, "input"}, {target, "target"}}) {
    Tensor x = contiguous(to_dtype(detach(t), DType::Float64));
    const double* p = x.data<double>();
    for (int64_t i = 0; i < x.numel(); ++i)
      NC_CHECK(p[i] >= 0 && p[i] <= 1, ValueError, "[binary_cross_entropy] all ", what,
               " values must be in [0, 1], got ", p[i]);
  }
  // PyTorch clamps the logs at -100 so that p = 0 or 1 gives a finite loss, and its gradient
  // divides by max(p (1 - p), 1e-12) so that it stays finite there too.
  DType dt = input.dtype();
  Tensor log_p, log_1mp, loss;
  {
    NoGradGuard no_grad;
    Tensor lo = scalar(-100.0, dt);
    log_p = clamp(log(input), lo, Tensor());
    log_1mp = clamp(log(sub(scalar(1.0, dt), input)), lo, Tensor());
    loss = neg(add(mul(target, log_p), mul(sub(scalar(1.0, dt), target), log_1mp)));
  }
  if (needs_history({input, target})) {
    SavedTensor sp(input, false), st(target, false);
    set_history("binary_cross_entropy", {input, target}, {loss},
                [sp, st, dt](const TensorList& g, const std::vector<bool>& needs) {
                  Tensor p = sp.unpack("binary_cross_entropy"), y = st.unpack("binary_cross_entropy");
                  TensorList r(2);
                  if (needs[0]) {
                    // PyTorch's EPSILON is the float 1e-12 (9.99999996e-13 as a double).
                    Tensor denom = clamp(mul(sub(scalar(1.0, dt), p), p), scalar(static_cast<double>(1e-12f), dt), Tensor());
                    r[0] = reduce_grad(div(mul(g[0], sub(p, y)), denom), p.shape(), p.dtype());
                  }
                  // d/dy = log(1 - p) - log(p), unclamped as in PyTorch (infinite at p = 0 or 1).
                  if (needs[1]) r[1] = reduce_grad(mul(g[0], sub(log(sub(scalar(1.0, dt), p)), log(p))), y.shape(), y.dtype());
                  return r;
                });
  }
  if (weight.defined()) loss = mul(loss, weight);
  return reduce(loss, reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight,
                                        const Tensor& pos_weight, Reduction reduction) {
  check_float(input, "binary_cross_entropy_with_logits", "input");
  check_same_shape(input, target, "binary_cross_entropy_with_logits");
  DType dt = input.dtype();
  // (1 - t) x + lw * softplus(-x), lw = 1 + (pos_weight - 1) t: stable for any |x|.
  Tensor sp = softplus(neg(input), 1.0, INFINITY);
  Tensor lw = pos_weight.defined() ? add(scalar(1.0, dt), mul(sub(pos_weight, scalar(1.0, dt)), target)) : Tensor();
  Tensor loss = add(mul(sub(scalar(1.0, dt), target), input), lw.defined() ? mul(lw, sp) : sp);
  if (weight.defined()) loss = mul(loss, weight);
  return reduce(loss, reduction);
}

}  // namespace nc
