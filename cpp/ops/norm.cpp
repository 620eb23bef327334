#include "ops/norm.h"

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"
#include "kernels/norm.h"
#include "ops/copy.h"
#include "ops/elementwise.h"
#include "ops/math.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace nc {

namespace {

// Statistics are summed in chunks of this many elements whose boundaries depend only on the
// shape; chunk partials are combined in chunk order, so any thread count gives the same bits.
constexpr int64_t kChunk = 8192;

// Contiguous (N, C, *) seen as (N, C, S).
struct NCS {
  int64_t N = 1, C = 1, S = 1;
  int64_t M() const { return N * S; }  // values per channel
};

// Per-channel sums of K quantities: body(c, offset, len, acc) adds over the contiguous run
// x[offset, offset + len) of channel c into acc[0..K). Returns C*K doubles. (N, C) input gives
// runs of length 1, so bodies handle len == 1 inline rather than through a kernel call.
template <int K, class F>
std::vector<double> channel_sums(const NCS& g, const F& body) {
  const int64_t M = g.M();
  if (g.S == 1) {
    // (N, C): runs of one value would cost a call per element and stride through memory, so
    // sum blocks of rows for all channels at once instead (same fixed-block scheme).
    const int64_t rows = std::max<int64_t>(1, kChunk / std::max<int64_t>(1, g.C));
    const int64_t blocks = (g.N + rows - 1) / rows;
    std::vector<double> part(static_cast<size_t>(blocks * g.C * K), 0.0);
    parallel_for(0, blocks, 1, [&](int64_t b, int64_t e) {
      for (int64_t blk = b; blk < e; ++blk) {
        double* acc = part.data() + blk * g.C * K;
        for (int64_t n = blk * rows; n < std::min(g.N, (blk + 1) * rows); ++n)
          for (int64_t c = 0; c < g.C; ++c) body(c, n * g.C + c, 1, acc + c * K);
      }
    });
    std::vector<double> out(static_cast<size_t>(g.C * K), 0.0);
    for (int64_t blk = 0; blk < blocks; ++blk)
      for (int64_t i = 0; i < g.C * K; ++i) out[i] += part[static_cast<size_t>(blk * g.C * K + i)];
    return out;
  }
  const int64_t chunks = std::max<int64_t>(1, (M + kChunk - 1) / kChunk);
  std::vector<double> part(static_cast<size_t>(g.C * chunks * K), 0.0);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, std::min(M, kChunk)));
  parallel_for(0, g.C * chunks, grain, [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; ++w) {
      const int64_t c = w / chunks, k = w % chunks;
      const int64_t i1 = std::min(M, (k + 1) * kChunk);
      double acc[K] = {};
      for (int64_t i = k * kChunk; i < i1;) {
        const int64_t n = i / g.S, s = i % g.S;
        const int64_t len = std::min(i1 - i, g.S - s);
        body(c, (n * g.C + c) * g.S + s, len, acc);
        i += len;
      }
      for (int j = 0; j < K; ++j) part[static_cast<size_t>(w * K + j)] = acc[j];
    }
  });
  std::vector<double> out(static_cast<size_t>(g.C * K), 0.0);
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t k = 0; k < chunks; ++k)
      for (int j = 0; j < K; ++j) out[c * K + j] += part[static_cast<size_t>((c * chunks + k) * K + j)];
  return out;
}

// y[n, c, s] = x[n, c, s] * scale[c] + shift[c] over (N, C, S); the same per-row form serves both
// the forward (scale = w * invstd) and parts of the backward.
template <class T>
void channel_affine(const T* x, T* y, const NCS& g, const std::vector<double>& scale, const std::vector<double>& shift) {
  if (g.S == 1) {  // (N, C): one value per (n, c), so loop over channels inside each row
    const std::vector<T> a(scale.begin(), scale.end()), b(shift.begin(), shift.end());
    parallel_for(0, g.N, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, g.C)), [&](int64_t nb, int64_t ne) {
      for (int64_t n = nb; n < ne; ++n)
        for (int64_t c = 0; c < g.C; ++c) y[n * g.C + c] = x[n * g.C + c] * a[c] + b[c];
    });
    return;
  }
  parallel_for(0, g.N * g.C, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, g.S)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t c = r % g.C;
      kernels::norm_ops<T>().axpb(x + r * g.S, y + r * g.S, g.S, static_cast<T>(scale[c]), static_cast<T>(shift[c]));
    }
  });
}

std::vector<double> to_vec(const Tensor& t, int64_t n, double fill) {
  std::vector<double> v(static_cast<size_t>(n), fill);
  if (!t.defined()) return v;
  Tensor c = contiguous(t);
  dispatch_floating(c.dtype(), "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (int64_t i = 0; i < n; ++i) v[i] = c.data<T>()[i];
  });
  return v;
}

Tensor from_vec(const std::vector<double>& v, DType d) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, d);
  dispatch_floating(d, "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (size_t i = 0; i < v.size(); ++i) t.data<T>()[i] = static_cast<T>(v[i]);
  });
  return t;
}

void check_param(const Tensor& t, int64_t C, DType d, const char* op, const char* what, const Shape& in) {
  if (!t.defined()) return;
  NC_CHECK(t.dim() == 1 && t.shape()[0] == C, RuntimeError, "[", op, "] ", what, " should have ", C,
           " elements (one per channel), got shape ", shape_str(t.shape()), " (input shape ", shape_str(in), ")");
  NC_CHECK(t.dtype() == d, TypeError, "[", op, "] ", what, " has dtype ", dtype_name(t.dtype()),
           " but input has dtype ", dtype_name(d));
}

// Running statistics are written in place: r = (1 - m) * r + m * stat.
void update_running(const Tensor& r, const std::vector<double>& stat, double m) {
  if (!r.defined()) return;
  NC_CHECK(r.is_contiguous(), RuntimeError, "[batch_norm] running statistics must be contiguous");
  dispatch_floating(r.dtype(), "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = r.data<T>();
    for (size_t c = 0; c < stat.size(); ++c) p[c] = static_cast<T>((1 - m) * p[c] + m * stat[c]);
  });
  r.bump_version();
}

// Shape (1, C, 1, ...) for broadcasting a per-channel vector against x.
Shape channel_shape(const Tensor& x) {
  Shape s(static_cast<size_t>(x.dim()), 1);
  s[1] = x.shape()[1];
  return s;
}

Shape reduce_dims(int64_t ndim, int64_t keep) {
  Shape d;
  for (int64_t i = 0; i < ndim; ++i)
    if (i != keep) d.push_back(i);
  return d;
}

// create_graph backward of batch_norm from differentiable ops. In training the statistics are
// recomputed from x so that they are part of the graph; in eval they are constants.
TensorList batch_norm_backward_graph(const Tensor& x, const Tensor& w, const Tensor& gy, const Tensor& mean_c,
                                     const Tensor& invstd_c, bool training, double eps, const std::vector<bool>& needs) {
  const Shape dims = reduce_dims(x.dim(), 1), cs = channel_shape(x);
  const int64_t C = x.shape()[1];
  Tensor mu, invstd;
  if (training) {
    mu = mean(x, dims, true);
    Tensor var = mean(square(sub(x, mu)), dims, true);
    invstd = rsqrt(add(var, scalar_tensor(eps, x.dtype())));
  } else {
    mu = reshape(mean_c, cs);
    invstd = reshape(invstd_c, cs);
  }
  Tensor xhat = mul(sub(x, mu), invstd);
  Tensor sdy = sum(gy, dims, true), sdyx = sum(mul(gy, xhat), dims, true);
  TensorList r(3);
  if (needs[0]) {
    Tensor a = w.defined() ? mul(reshape(w, cs), invstd) : invstd;
    if (training) {
      const double M = static_cast<double>(x.numel() / C);
      Tensor inner = sub(sub(gy, div(sdy, scalar_tensor(M, x.dtype()))), mul(xhat, div(sdyx, scalar_tensor(M, x.dtype()))));
      r[0] = mul(a, inner);
    } else {
      r[0] = mul(gy, a);
    }
  }
  if (needs[1]) r[1] = reshape(sdyx, {C});
  if (needs[2]) r[2] = reshape(sdy, {C});
  return r;
}

}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  NC_CHECK(input.dim() >= 2, ValueError, "[batch_norm] expected input with at least 2 dims (N, C, *), got shape ",
           shape_str(input.shape()));
  NC_CHECK(is_floating(input.dtype()), TypeError, "[batch_norm] expected a floating-point input, got ",
           dtype_name(input.dtype()));
  NC_CHECK(running_mean.defined() == running_var.defined(), ValueError,
           "[batch_norm] running_mean and running_var must both be given or both be None");
  NC_CHECK(training || running_mean.defined(), ValueError,
           "[batch_norm] running_mean and running_var must be defined in evaluation mode");
  // A negative eps can make var + eps negative, and its square root NaN.
  NC_CHECK(training ? eps > 0 : eps >= 0, ValueError, "[batch_norm] eps must be ",
           training ? "positive during training" : "non-negative", ", but got ", eps);
  const DType d = input.dtype();
  NCS g;
  g.N = input.shape()[0];
  g.C = input.shape()[1];
  for (int64_t i = 2; i < input.dim(); ++i) g.S *= input.shape()[i];
  for (auto [t, what] : {std::pair{running_mean, "running_mean"}, {running_var, "running_var"}, {weight, "weight"}, {bias, "bias"}})
    check_param(t, g.C, d, "batch_norm", what, input.shape());

  Tensor xc = contiguous(input);
  std::vector<double> mean_v, invstd_v;
  dispatch_floating(d, "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = xc.data<T>();
    const auto& ops = kernels::norm_ops<T>();
    const double M = static_cast<double>(g.M());
    if (training) {
      // Two passes (mean, then squared deviations) for accuracy when |mean| >> std.
      mean_v = channel_sums<1>(g, [&](int64_t, int64_t o, int64_t len, double* acc) {
        acc[0] += len == 1 ? static_cast<double>(x[o]) : ops.sum(x + o, len);
      });
      // An empty batch (as in PyTorch) gives an empty output and leaves the running stats alone.
      for (auto& m : mean_v) m = M > 0 ? m / M : 0.0;
      std::vector<double> var = channel_sums<1>(g, [&](int64_t c, int64_t o, int64_t len, double* acc) {
        const double m = mean_v[c];
        acc[0] += len == 1 ? (x[o] - m) * (x[o] - m) : ops.sqdev(x + o, len, m);
      });
      invstd_v.resize(var.size());
      std::vector<double> unbiased(var.size());
      for (size_t c = 0; c < var.size(); ++c) {
        invstd_v[c] = 1.0 / std::sqrt((M > 0 ? var[c] / M : 0.0) + eps);
        unbiased[c] = var[c] / (M - 1);
      }
      if (M > 0) {
        update_running(running_mean, mean_v, momentum);
        update_running(running_var, unbiased, momentum);
      }
    } else {
      mean_v = to_vec(running_mean, g.C, 0.0);
      invstd_v = to_vec(running_var, g.C, 0.0);
      for (auto& v : invstd_v) v = 1.0 / std::sqrt(v + eps);
    }
  });
  const std::vector<double> w = to_vec(weight, g.C, 1.0), b = to_vec(bias, g.C, 0.0);
  std::vector<double> scale(g.C), shift(g.C);
  for (int64_t c = 0; c < g.C; ++c) {
    scale[c] = w[c] * invstd_v[c];
    shift[c] = b[c] - mean_v[c] * scale[c];
  }
  Tensor y = Tensor::empty(input.shape(), d);
  dispatch_floating(d, "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    channel_affine<T>(xc.data<T>(), y.data<T>(), g, scale, shift);
  });

  if (needs_history({input, weight, bias})) {
    SavedTensor sx(input, false), sw(weight, false);
    Tensor mean_t = from_vec(mean_v, d), invstd_t = from_vec(invstd_v, d);
    set_history("batch_norm", {input, weight, bias}, {y},
                [sx, sw, mean_t, invstd_t, g, training, eps](const TensorList& grads, const std::vector<bool>& needs) {
                  Tensor x = sx.unpack("batch_norm"), wt = sw.unpack("batch_norm");
                  if (GradMode::is_enabled())
                    return batch_norm_backward_graph(x, wt, grads[0], mean_t, invstd_t, training, eps, needs);
                  const DType dt = x.dtype();
                  Tensor xc = contiguous(x), gyc = contiguous(grads[0]);
                  const std::vector<double> mu = to_vec(mean_t, g.C, 0), is = to_vec(invstd_t, g.C, 0);
                  const std::vector<double> w = to_vec(wt, g.C, 1.0);
                  TensorList r(3);
                  dispatch_floating(dt, "batch_norm", [&](auto tag) {
                    using T = typename decltype(tag)::type;
                    const T* xp = xc.data<T>();
                    const T* gp = gyc.data<T>();
                    const auto& ops = kernels::norm_ops<T>();
                    // sums[c] = (sum gy, sum gy * (x - mean))
                    std::vector<double> sums = channel_sums<2>(g, [&](int64_t c, int64_t o, int64_t len, double* acc) {
                      const double m = mu[c];
                      acc[0] += len == 1 ? static_cast<double>(gp[o]) : ops.sum(gp + o, len);
                      acc[1] += len == 1 ? gp[o] * (xp[o] - m) : ops.dotdev(gp + o, xp + o, len, m);
                    });
                    if (needs[0]) {
                      // training: gx = w*invstd * (gy - sum_gy/M - xhat * sum(gy*xhat)/M), which is
                      // gy * a + x * k + (-(a*sum_gy/M) - mean*k) with k = -a*invstd^2*sum(gy*xmu)/M.
                      const double M = static_cast<double>(g.M());
                      std::vector<double> a(g.C), k(g.C), c0(g.C);
                      for (int64_t c = 0; c < g.C; ++c) {
                        a[c] = w[c] * is[c];
                        k[c] = training ? -a[c] * is[c] * is[c] * sums[2 * c + 1] / M : 0.0;
                        c0[c] = training ? -a[c] * sums[2 * c] / M - mu[c] * k[c] : 0.0;
                      }
                      Tensor gx = Tensor::empty(x.shape(), dt);
                      T* out = gx.data<T>();
                      if (g.S == 1) {  // (N, C): loop over channels inside each row
                        const std::vector<T> at(a.begin(), a.end()), kt(k.begin(), k.end()), ct(c0.begin(), c0.end());
                        parallel_for(0, g.N, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, g.C)), [&](int64_t nb, int64_t ne) {
                          for (int64_t j = nb * g.C; j < ne * g.C; ++j) {
                            const int64_t c = j % g.C;
                            out[j] = gp[j] * at[c] + xp[j] * kt[c] + ct[c];
                          }
                        });
                      } else {
                        parallel_for(0, g.N * g.C, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, g.S)), [&](int64_t b, int64_t e) {
                          for (int64_t row = b; row < e; ++row) {
                            const int64_t c = row % g.C, o = row * g.S;
                            ops.bn_grad(gp + o, xp + o, out + o, g.S, static_cast<T>(a[c]), static_cast<T>(k[c]),
                                        static_cast<T>(c0[c]));
                          }
                        });
                      }
                      r[0] = gx;
                    }
                    if (needs[1]) {
                      std::vector<double> gw(g.C);
                      for (int64_t c = 0; c < g.C; ++c) gw[c] = sums[2 * c + 1] * is[c];
                      r[1] = from_vec(gw, dt);
                    }
                    if (needs[2]) {
                      std::vector<double> gb(g.C);
                      for (int64_t c = 0; c < g.C; ++c) gb[c] = sums[2 * c];
                      r[2] = from_vec(gb, dt);
                    }
                  });
                  return r;
                });
  }
  return y;
}

// ---- layer_norm: rows of D = prod(normalized_shape) values, normalised independently. ----

namespace {

constexpr int64_t kRowBlock = 64;  // rows per partial when summing weight/bias gradients

TensorList layer_norm_backward_graph(const Tensor& x, const Tensor& w, const Tensor& gy, int64_t k, double eps,
                                     const std::vector<bool>& needs) {
  Shape norm_dims, lead_dims;
  for (int64_t i = 0; i < x.dim(); ++i) (i >= x.dim() - k ? norm_dims : lead_dims).push_back(i);
  Tensor mu = mean(x, norm_dims, true);
  Tensor invstd = rsqrt(add(mean(square(sub(x, mu)), norm_dims, true), scalar_tensor(eps, x.dtype())));
  Tensor xhat = mul(sub(x, mu), invstd);
  TensorList r(3);
  if (needs[0]) {
    Tensor gh = w.defined() ? mul(gy, w) : gy;
    r[0] = mul(invstd, sub(sub(gh, mean(gh, norm_dims, true)), mul(xhat, mean(mul(gh, xhat), norm_dims, true))));
  }
  if (needs[1]) r[1] = lead_dims.empty() ? mul(gy, xhat) : sum(mul(gy, xhat), lead_dims, false);
  if (needs[2]) r[2] = lead_dims.empty() ? gy : sum(gy, lead_dims, false);
  return r;
}

// Shared argument checks of layer_norm and rms_norm (op names the caller in messages).
void check_trailing_norm(const char* op, const Tensor& input, const Shape& normalized_shape, const Tensor& weight,
                         const Tensor& bias) {
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  NC_CHECK(k >= 1, RuntimeError, "[", op, "] normalized_shape must have at least one dimension");
  NC_CHECK(is_floating(input.dtype()), TypeError, "[", op, "] expected a floating-point input, got ",
           dtype_name(input.dtype()));
  bool ok = input.dim() >= k;
  for (int64_t i = 0; ok && i < k; ++i) ok = input.shape()[input.dim() - k + i] == normalized_shape[i];
  NC_CHECK(ok, RuntimeError, "[", op, "] Given normalized_shape=", shape_str(normalized_shape),
           ", expected input with shape (*", [&] {
             std::string s;
             for (auto v : normalized_shape) s += ", " + std::to_string(v);
             return s;
           }(), "), but got input of size ", shape_str(input.shape()));
  for (auto [t, what] : {std::pair{weight, "weight"}, {bias, "bias"}}) {
    if (!t.defined()) continue;
    NC_CHECK(t.shape() == normalized_shape, RuntimeError, "[", op, "] expected ", what, " of shape ",
             shape_str(normalized_shape), ", got ", shape_str(t.shape()));
    NC_CHECK(t.dtype() == input.dtype(), TypeError, "[", op, "] ", what, " has dtype ", dtype_name(t.dtype()),
             " but input has dtype ", dtype_name(input.dtype()));
  }
}

}  // namespace

Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias, double eps) {
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  check_trailing_norm("layer_norm", input, normalized_shape, weight, bias);
  const DType d = input.dtype();
  const int64_t D = shape_numel(normalized_shape), R = D ? input.numel() / D : 0;
  Tensor xc = contiguous(input), wc = weight.defined() ? contiguous(weight) : weight,
         bc = bias.defined() ? contiguous(bias) : bias;
  Tensor y = Tensor::empty(input.shape(), d);
  Tensor mean_t = Tensor::empty({R}, d), invstd_t = Tensor::empty({R}, d);
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, D));
  dispatch_floating(d, "layer_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = xc.data<T>();
    const T* w = wc.defined() ? wc.data<T>() : nullptr;
    const T* b = bc.defined() ? bc.data<T>() : nullptr;
    T* out = y.data<T>();
    T* mp = mean_t.data<T>();
    T* ip = invstd_t.data<T>();
    const auto& ops = kernels::norm_ops<T>();
    // Each row is summed serially by one thread, so the result does not depend on the thread count.
    parallel_for(0, R, grain, [&](int64_t rb, int64_t re) {
      for (int64_t r = rb; r < re; ++r) {
        const T* xr = x + r * D;
        const double m = ops.sum(xr, D) / D;
        const double v = ops.sqdev(xr, D, m);
        const double is = 1.0 / std::sqrt(v / D + eps);
        mp[r] = static_cast<T>(m);
        ip[r] = static_cast<T>(is);
        ops.ln_forward(xr, w, b, out + r * D, D, static_cast<T>(m), static_cast<T>(is));
      }
    });
  });
  if (needs_history({input, weight, bias})) {
    SavedTensor sx(input, false), sw(weight, false);
    set_history("layer_norm", {input, weight, bias}, {y},
                [sx, sw, mean_t, invstd_t, normalized_shape, k, D, R, eps, grain](const TensorList& grads, const std::vector<bool>& needs) {
                  Tensor x = sx.unpack("layer_norm"), wt = sw.unpack("layer_norm");
                  if (GradMode::is_enabled()) return layer_norm_backward_graph(x, wt, grads[0], k, eps, needs);
                  Tensor xc = contiguous(x), gyc = contiguous(grads[0]), wc = wt.defined() ? contiguous(wt) : wt;
                  TensorList r(3);
                  dispatch_floating(x.dtype(), "layer_norm", [&](auto tag) {
                    using T = typename decltype(tag)::type;
                    const T* xp = xc.data<T>();
                    const T* gp = gyc.data<T>();
                    const T* w = wc.defined() ? wc.data<T>() : nullptr;
                    const T* mp = mean_t.data<T>();
                    const T* ip = invstd_t.data<T>();
                    const auto& ops = kernels::norm_ops<T>();
                    if (needs[0]) {
                      Tensor gx = Tensor::empty(x.shape(), x.dtype());
                      T* out = gx.data<T>();
                      // gx = invstd * (g - mean(g) - xhat * mean(g * xhat)), g = gy * w.
                      parallel_for(0, R, grain, [&](int64_t rb, int64_t re) {
                        for (int64_t row = rb; row < re; ++row) {
                          const T* xr = xp + row * D;
                          const T* gr = gp + row * D;
                          const double m = mp[row], is = ip[row];
                          const double a = ops.wsum(gr, w, D) / D, c = ops.wdotdev(gr, w, xr, D, m) * is / D;
                          ops.ln_grad(gr, w, xr, out + row * D, D, m, is, a, c);
                        }
                      });
                      r[0] = gx;
                    }
                    if (needs[1] || needs[2]) {
                      // Per block of kRowBlock rows partial sums (in parallel), then blocks in order.
                      const int64_t blocks = (R + kRowBlock - 1) / kRowBlock;
                      std::vector<double> pw(static_cast<size_t>(blocks * D), 0.0), pb(pw.size(), 0.0);
                      parallel_for(0, blocks, std::max<int64_t>(1, 256 / std::max<int64_t>(1, D)), [&](int64_t bb, int64_t be) {
                        for (int64_t blk = bb; blk < be; ++blk) {
                          double* aw = pw.data() + blk * D;
                          double* ab = pb.data() + blk * D;
                          for (int64_t row = blk * kRowBlock; row < std::min(R, (blk + 1) * kRowBlock); ++row)
                            ops.ln_param_grad(gp + row * D, xp + row * D, aw, ab, D, mp[row], ip[row]);
                        }
                      });
                      Tensor gw = Tensor::empty(normalized_shape, x.dtype());
                      Tensor gb = Tensor::empty(normalized_shape, x.dtype());
                      for (int64_t i = 0; i < D; ++i) {
                        double sw = 0, sb = 0;
                        for (int64_t blk = 0; blk < blocks; ++blk) {
                          sw += pw[blk * D + i];
                          sb += pb[blk * D + i];
                        }
                        gw.data<T>()[i] = static_cast<T>(sw);
                        gb.data<T>()[i] = static_cast<T>(sb);
                      }
                      if (needs[1]) r[1] = gw;
                      if (needs[2]) r[2] = gb;
                    }
                  });
                  return r;
                });
  }
  return y;
}

// ---- rms_norm: rows of D values scaled by 1 / sqrt(mean(x^2) + eps); the layer_norm kernels with
// the mean fixed at 0 and no bias do every pass. ----

namespace {

TensorList rms_norm_backward_graph(const Tensor& x, const Tensor& w, const Tensor& gy, int64_t k, double eps,
                                   const std::vector<bool>& needs) {
  Shape norm_dims, lead_dims;
  for (int64_t i = 0; i < x.dim(); ++i) (i >= x.dim() - k ? norm_dims : lead_dims).push_back(i);
  Tensor invrms = rsqrt(add(mean(square(x), norm_dims, true), scalar_tensor(eps, x.dtype())));
  Tensor xhat = mul(x, invrms);
  TensorList r(2);
  if (needs[0]) {
    Tensor gh = w.defined() ? mul(gy, w) : gy;
    r[0] = mul(invrms, sub(gh, mul(xhat, mean(mul(gh, xhat), norm_dims, true))));
  }
  if (needs[1]) r[1] = lead_dims.empty() ? mul(gy, xhat) : sum(mul(gy, xhat), lead_dims, false);
  return r;
}

}  // namespace

Tensor rms_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight, double eps) {
  check_trailing_norm("rms_norm", input, normalized_shape, weight, Tensor());
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  const DType d = input.dtype();
  const int64_t D = shape_numel(normalized_shape), R = D ? input.numel() / D : 0;
  Tensor xc = contiguous(input), wc = weight.defined() ? contiguous(weight) : weight;
  Tensor y = Tensor::empty(input.shape(), d);
  Tensor invrms_t = Tensor::empty({R}, d);
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, D));
  dispatch_floating(d, "rms_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = xc.data<T>();
    const T* w = wc.defined() ? wc.data<T>() : nullptr;
    T* out = y.data<T>();
    T* ip = invrms_t.data<T>();
    const auto& ops = kernels::norm_ops<T>();
    parallel_for(0, R, grain, [&](int64_t rb, int64_t re) {
      for (int64_t r = rb; r < re; ++r) {
        const T* xr = x + r * D;
        const double is = 1.0 / std::sqrt(ops.sqdev(xr, D, 0.0) / D + eps);
        ip[r] = static_cast<T>(is);
        ops.ln_forward(xr, w, nullptr, out + r * D, D, T(0), static_cast<T>(is));
      }
    });
  });
  if (needs_history({input, weight})) {
    SavedTensor sx(input, false), sw(weight, false);
    set_history("rms_norm", {input, weight}, {y},
                [sx, sw, invrms_t, normalized_shape, k, D, R, eps, grain](const TensorList& grads, const std::vector<bool>& needs) {
                  Tensor x = sx.unpack("rms_norm"), wt = sw.unpack("rms_norm");
                  if (GradMode::is_enabled()) return rms_norm_backward_graph(x, wt, grads[0], k, eps, needs);
                  Tensor xc = contiguous(x), gyc = contiguous(grads[0]), wc = wt.defined() ? contiguous(wt) : wt;
                  TensorList r(2);
                  dispatch_floating(x.dtype(), "rms_norm", [&](auto tag) {
                    using T = typename decltype(tag)::type;
                    const T* xp = xc.data<T>();
                    const T* gp = gyc.data<T>();
                    const T* w = wc.defined() ? wc.data<T>() : nullptr;
                    const T* ip = invrms_t.data<T>();
                    const auto& ops = kernels::norm_ops<T>();
                    if (needs[0]) {
                      Tensor gx = Tensor::empty(x.shape(), x.dtype());
                      T* out = gx.data<T>();
                      // gx = r * (g - xhat * mean(g * xhat)), g = gy * w, xhat = x * r.
                      parallel_for(0, R, grain, [&](int64_t rb, int64_t re) {
                        for (int64_t row = rb; row < re; ++row) {
                          const T* xr = xp + row * D;
                          const T* gr = gp + row * D;
                          const double is = ip[row], c = ops.wdotdev(gr, w, xr, D, 0.0) * is / D;
                          ops.ln_grad(gr, w, xr, out + row * D, D, 0.0, is, 0.0, c);
                        }
                      });
                      r[0] = gx;
                    }
                    if (needs[1]) {
                      // Per block of kRowBlock rows partial sums (in parallel), then blocks in order.
                      const int64_t blocks = (R + kRowBlock - 1) / kRowBlock;
                      std::vector<double> pw(static_cast<size_t>(blocks * D), 0.0), pb(pw.size(), 0.0);
                      parallel_for(0, blocks, std::max<int64_t>(1, 256 / std::max<int64_t>(1, D)), [&](int64_t bb, int64_t be) {
                        for (int64_t blk = bb; blk < be; ++blk)
                          for (int64_t row = blk * kRowBlock; row < std::min(R, (blk + 1) * kRowBlock); ++row)
                            ops.ln_param_grad(gp + row * D, xp + row * D, pw.data() + blk * D, pb.data() + blk * D, D,
                                              0.0, ip[row]);
                      });
                      Tensor gw = Tensor::empty(normalized_shape, x.dtype());
                      for (int64_t i = 0; i < D; ++i) {
                        double sw = 0;
                        for (int64_t blk = 0; blk < blocks; ++blk) sw += pw[blk * D + i];
                        gw.data<T>()[i] = static_cast<T>(sw);
                      }
                      r[1] = gw;
                    }
                  });
                  return r;
                });
  }
  return y;
}

}  // namespace nc
