#include "ops/optim.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "core/parallel.h"
#include "kernels/optim.h"
#include "ops/copy.h"

namespace nc {

namespace {

// Checks that every tensor of a state list matches its parameter.
void check_matching(const char* op, const TensorList& params, const TensorList& others, const char* what,
                    bool may_be_undefined = false) {
  NC_CHECK(others.size() == params.size(), ValueError, "[", op, "] got ", params.size(), " params but ", others.size(),
           " ", what);
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    NC_CHECK(is_floating(p.dtype()), TypeError, "[", op, "] param ", i, " must be floating point, got ", dtype_name(p.dtype()));
    NC_CHECK(p.is_contiguous(), ValueError, "[", op, "] param ", i, " (shape ", shape_str(p.shape()), ") must be contiguous");
    const Tensor& t = others[i];
    if (!t.defined() && may_be_undefined) continue;
    NC_CHECK(t.defined() && t.shape() == p.shape() && t.dtype() == p.dtype(), ValueError, "[", op, "] param ", i,
             " has shape ", shape_str(p.shape()), " ", dtype_name(p.dtype()), " but its ", what, " has shape ",
             t.defined() ? shape_str(t.shape()) : "(none)", " ", t.defined() ? dtype_name(t.dtype()) : "");
  }
}

Tensor contiguous_grad(const Tensor& g) { return g.is_contiguous() ? g : contiguous(g); }

constexpr int64_t kChunk = 8192;  // elements per chunk of the multi-tensor pass

// The update of every parameter as one multi-tensor pass: make_update(i, T()) returns parameter
// i's elementwise update, a callable (s, e) that owns what it reads (captured by value). One
// parallel_for then runs all of them over chunks of kChunk elements, so small parameters do not
// each pay a trip through the pool and the chunks of all of them are shared among the threads.
// Chunk boundaries depend on the sizes alone and every update is elementwise: results do not
// depend on the thread count.
template <class F>
void for_each_param(const TensorList& params, const char* op, F make_update) {
  std::vector<std::function<void(int64_t, int64_t)>> updates(params.size());
  struct Chunk {
    size_t param;
    int64_t begin, end;
  };
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < params.size(); ++i) {
    dispatch_floating(params[i].dtype(), op, [&](auto tag) {
      using T = typename decltype(tag)::type;
      updates[i] = make_update(i, T());
    });
    for (int64_t b = 0; b < params[i].numel(); b += kChunk)
      chunks.push_back({i, b, std::min(params[i].numel(), b + kChunk)});
  }
  parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t s, int64_t e) {
    for (int64_t c = s; c < e; ++c) updates[chunks[c].param](chunks[c].begin, chunks[c].end);
  });
  for (const Tensor& p : params) p.bump_version();
}

}  // namespace

namespace {
template <class T> struct KernelFor;
template <> struct KernelFor<float> {
  static auto adam() { return kernels::optim().f32.adam; }
  static auto sgd() { return kernels::optim().f32.sgd; }
};
template <> struct KernelFor<double> {
  static auto adam() { return kernels::optim().f64.adam; }
  static auto sgd() { return kernels::optim().f64.sgd; }
};
}  // namespace

void sgd_step(const TensorList& params, const TensorList& grads, TensorList& bufs, const SgdOptions& o) {
  check_matching("sgd", params, grads, "grad");
  check_matching("sgd", params, bufs, "momentum_buffer", true);
  for_each_param(params, "sgd", [&](size_t i, auto zero) {
    using T = decltype(zero);
    Tensor g = contiguous_grad(grads[i]);
    const bool first = o.momentum != 0 && !bufs[i].defined();
    if (first) bufs[i] = Tensor::empty(params[i].shape(), params[i].dtype());
    kernels::SgdArgs<T> a{params[i].data<T>(), g.data<T>(), o.momentum != 0 ? bufs[i].data<T>() : nullptr,
                          params[i].numel(), T(-o.lr), T(o.weight_decay), T(o.momentum), T(1 - o.dampening),
                          o.maximize, o.nesterov, first};
    return [a, keep_grad = g, kernel = KernelFor<T>::sgd()](int64_t s, int64_t e) { kernel(a, s, e); };
  });
}

void adam_step(const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
               const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs, const std::vector<int64_t>& steps,
               const AdamOptions& o) {
  const char* op = o.decoupled_weight_decay ? "adamw" : "adam";
  check_matching(op, params, grads, "grad");
  check_matching(op, params, exp_avgs, "exp_avg");
  check_matching(op, params, exp_avg_sqs, "exp_avg_sq");
  if (o.amsgrad) check_matching(op, params, max_exp_avg_sqs, "max_exp_avg_sq");
  NC_CHECK(steps.size() == params.size(), ValueError, "[", op, "] got ", steps.size(), " step counts for ",
           params.size(), " params");
  for_each_param(params, op, [&](size_t i, auto zero) {
    using T = decltype(zero);
    Tensor g = contiguous_grad(grads[i]);
    const double step = static_cast<double>(steps[i]);
    const double bc1 = 1 - std::pow(o.beta1, step), bc2 = 1 - std::pow(o.beta2, step);
    kernels::AdamArgs<T> a{params[i].data<T>(), g.data<T>(), exp_avgs[i].data<T>(), exp_avg_sqs[i].data<T>(),
                           o.amsgrad ? max_exp_avg_sqs[i].data<T>() : nullptr, params[i].numel(),
                           T(o.lr / bc1), T(std::sqrt(bc2)), T(1 - o.beta1), T(o.beta2), T(1 - o.beta2), T(o.eps),
                           T(o.weight_decay), T(1 - o.lr * o.weight_decay), o.maximize, o.decoupled_weight_decay};
    return [a, keep_grad = g, kernel = KernelFor<T>::adam()](int64_t s, int64_t e) { kernel(a, s, e); };
  });
}

void rmsprop_step(const TensorList& params, const TensorList& grads, const TensorList& square_avgs,
                  const TensorList& momentum_buffers, const TensorList& grad_avgs, const RmspropOptions& o) {
  check_matching("rmsprop", params, grads, "grad");
  check_matching("rmsprop", params, square_avgs, "square_avg");
  if (o.momentum > 0) check_matching("rmsprop", params, momentum_buffers, "momentum_buffer");
  if (o.centered) check_matching("rmsprop", params, grad_avgs, "grad_avg");
  for_each_param(params, "rmsprop", [&](size_t i, auto zero) {
    using T = decltype(zero);
    Tensor g = contiguous_grad(grads[i]);
    const T alpha = T(o.alpha), aw = T(1 - o.alpha), eps = T(o.eps), wd = T(o.weight_decay), mom = T(o.momentum);
    const T neg_lr = T(-o.lr);
    T* p = params[i].data<T>();
    const T* gp = g.data<T>();
    T* sq = square_avgs[i].data<T>();
    T* buf = o.momentum > 0 ? momentum_buffers[i].data<T>() : nullptr;
    T* ga = o.centered ? grad_avgs[i].data<T>() : nullptr;
    return [=, keep_grad = g](int64_t s, int64_t e) {
      for (int64_t k = s; k < e; ++k) {
        T d = o.maximize ? -gp[k] : gp[k];
        if (o.weight_decay != 0) d = d + wd * p[k];
        sq[k] = sq[k] * alpha + aw * d * d;
        T avg;
        if (ga) {
          ga[k] = ga[k] + aw * (d - ga[k]);
          avg = std::sqrt(sq[k] + T(-1) * ga[k] * ga[k]);
        } else {
          avg = std::sqrt(sq[k]);
        }
        avg = avg + eps;
        if (buf) {
          buf[k] = buf[k] * mom + d / avg;
          p[k] = p[k] + neg_lr * buf[k];
        } else {
          p[k] = p[k] + neg_lr * d / avg;
        }
      }
    };
  });
}

void adagrad_step(const TensorList& params, const TensorList& grads, const TensorList& state_sums,
                  const std::vector<int64_t>& steps, const AdagradOptions& o) {
  check_matching("adagrad", params, grads, "grad");
  check_matching("adagrad", params, state_sums, "sum");
  for_each_param(params, "adagrad", [&](size_t i, auto zero) {
    using T = decltype(zero);
    Tensor g = contiguous_grad(grads[i]);
    const T neg_clr = T(-(o.lr / (1 + (static_cast<double>(steps[i]) - 1) * o.lr_decay)));
    const T eps = T(o.eps), wd = T(o.weight_decay);
    T* p = params[i].data<T>();
    const T* gp = g.data<T>();
    T* sum = state_sums[i].data<T>();
    return [=, keep_grad = g](int64_t s, int64_t e) {
      for (int64_t k = s; k < e; ++k) {
        T d = o.maximize ? -gp[k] : gp[k];
        if (o.weight_decay != 0) d = d + wd * p[k];
        sum[k] = sum[k] + d * d;
        p[k] = p[k] + neg_clr * d / (std::sqrt(sum[k]) + eps);
      }
    };
  });
}

}  // namespace nc
