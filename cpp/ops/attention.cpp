#include "ops/attention.h"

#include <omp.h>

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"
#include "core/random.h"
#include "kernels/attention.h"
#include "ops/copy.h"
#include "ops/creation.h"

namespace nc {

namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

// Element offsets of each flat index over the first `nlead` dims of shape, for `strides`.
std::vector<int64_t> lead_offsets(const Shape& shape, const Shape& strides, int64_t nlead) {
  int64_t n = 1;
  for (int64_t d = 0; d < nlead; ++d) n *= shape[d];
  std::vector<int64_t> off(static_cast<size_t>(n), 0);
  for (int64_t f = 0; f < n; ++f) {
    int64_t rem = f, o = 0;
    for (int64_t d = nlead - 1; d >= 0; --d) {
      o += (rem % shape[d]) * strides[d];
      rem /= shape[d];
    }
    off[static_cast<size_t>(f)] = o;
  }
  return off;
}

// A tensor whose last dim is contiguous (other strides free, so head-split views need no copy).
Tensor rows_contiguous(const Tensor& t) {
  return t.strides().back() == 1 || t.shape().back() <= 1 ? t : contiguous(t);
}

// Runs body(u) for u in [0, n) on the thread pool, handing out items dynamically (a busy core
// does not stall the others); results depend only on u, never on the thread that ran it.
template <class F>
void for_each_item(int64_t n, int64_t min_items_per_thread, const F& body) {
  const int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), n / std::max<int64_t>(1, min_items_per_thread)));
  if (threads <= 1 || omp_in_parallel()) {
    for (int64_t u = 0; u < n; ++u) body(u);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t u = 0; u < n; ++u) body(u);
}

// Everything the kernels need about one call, shared by forward and backward.
struct Layout {
  int64_t nb = 1;     // query heads (product of q's leading dims)
  int64_t group = 1;  // query heads per key/value head
  int64_t Hq = 1;
  int64_t L = 0, S = 0, E = 0, Ev = 0;
  std::vector<int64_t> q_off, k_off, v_off, m_off;  // per query head (k/v: of its key head)
  int64_t q_rs = 0, k_rs = 0, v_rs = 0, m_rs = 0, m_cs = 0;
  kernels::AttnMask mask_kind = kernels::AttnMask::None;

  // Flat index of the key/value head that query head b reads.
  int64_t kv_head(int64_t b) const { return (b / Hq) * (Hq / group) + (b % Hq) / group; }
};

Layout make_layout(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, bool gqa) {
  Layout g;
  const int64_t nd = q.dim(), nlead = nd - 2;
  g.L = q.shape()[nd - 2];
  g.E = q.shape()[nd - 1];
  g.S = k.shape()[nd - 2];
  g.Ev = v.shape()[nd - 1];
  g.q_rs = q.strides()[nd - 2];
  g.k_rs = k.strides()[nd - 2];
  g.v_rs = v.strides()[nd - 2];
  g.q_off = lead_offsets(q.shape(), q.strides(), nlead);
  g.nb = static_cast<int64_t>(g.q_off.size());
  if (nlead >= 1) g.Hq = q.shape()[nlead - 1];
  if (gqa && nlead >= 1) g.group = q.shape()[nlead - 1] / k.shape()[nlead - 1];
  const std::vector<int64_t> ko = lead_offsets(k.shape(), k.strides(), nlead);
  const std::vector<int64_t> vo = lead_offsets(v.shape(), v.strides(), nlead);
  g.k_off.resize(g.q_off.size());
  g.v_off.resize(g.q_off.size());
  for (int64_t b = 0; b < g.nb; ++b) {
    g.k_off[static_cast<size_t>(b)] = ko[static_cast<size_t>(g.kv_head(b))];
    g.v_off[static_cast<size_t>(b)] = vo[static_cast<size_t>(g.kv_head(b))];
  }
  if (mask.defined()) {
    g.mask_kind = mask.dtype() == DType::Bool ? kernels::AttnMask::Bool : kernels::AttnMask::Additive;
    // Strides of the mask broadcast to q's leading dims + (L, S): 0 along broadcast dims.
    Shape target(q.shape().begin(), q.shape().end());
    target[nd - 1] = g.S;
    Shape st(static_cast<size_t>(nd), 0);
    const int64_t md = mask.dim();
    for (int64_t d = 0; d < nd; ++d) {
      const int64_t src = d - (nd - md);
      if (src >= 0 && mask.shape()[src] != 1) st[d] = mask.strides()[src];
    }
    g.m_off = lead_offsets(target, st, nlead);
    g.m_rs = st[nd - 2];
    g.m_cs = st[nd - 1];
  }
  return g;
}

template <class T>
kernels::AttnHead<T> head(const Layout& g, int64_t b, const Tensor& q, const Tensor& k, const Tensor& v,
                          const Tensor& mask, T scale, bool causal, double p, PhiloxState rng) {
  kernels::AttnHead<T> h;
  const size_t i = static_cast<size_t>(b);
  h.q = q.data<T>() + g.q_off[i];
  h.k = k.data<T>() + g.k_off[i];
  h.v = v.data<T>() + g.v_off[i];
  h.q_rs = g.q_rs;
  h.k_rs = g.k_rs;
  h.v_rs = g.v_rs;
  h.L = g.L;
  h.S = g.S;
  h.E = g.E;
  h.Ev = g.Ev;
  h.scale = scale;
  h.mask_kind = g.mask_kind;
  if (mask.defined()) {
    const char* base = static_cast<const char*>(mask.raw_data());
    h.mask = base + g.m_off[i] * static_cast<int64_t>(mask.itemsize());
    h.m_rs = g.m_rs;
    h.m_cs = g.m_cs;
  }
  h.causal = causal;
  h.dropout_p = p;
  h.rng_key = rng.key;
  h.rng_counter = rng.counter;
  h.rng_elem0 = static_cast<uint64_t>(b) * static_cast<uint64_t>(g.L) * static_cast<uint64_t>(g.S);
  return h;
}

void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double p, bool causal,
                  bool gqa) {
  const auto shapes = [&] {
    return cat_str(" (query ", shape_str(q.shape()), ", key ", shape_str(k.shape()), ", value ", shape_str(v.shape()),
                   ")");
  };
  NC_CHECK(is_floating(q.dtype()), TypeError, "[", kOp, "] expected floating-point query, key and value, got ",
           dtype_name(q.dtype()));
  NC_CHECK(k.dtype() == q.dtype() && v.dtype() == q.dtype(), TypeError, "[", kOp,
           "] query, key and value must have the same dtype, got ", dtype_name(q.dtype()), ", ", dtype_name(k.dtype()),
           " and ", dtype_name(v.dtype()));
  NC_CHECK(q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim(), ValueError, "[", kOp,
           "] query, key and value must have the same number of dims (at least 2)", shapes());
  const int64_t nd = q.dim();
  NC_CHECK(k.shape()[nd - 1] == q.shape()[nd - 1], ValueError, "[", kOp,
           "] query and key must have the same embedding size (last dim)", shapes());
  NC_CHECK(v.shape()[nd - 2] == k.shape()[nd - 2], ValueError, "[", kOp,
           "] key and value must have the same sequence length (dim -2)", shapes());
  for (int64_t d = 0; d < nd - 2; ++d) {
    NC_CHECK(k.shape()[d] == v.shape()[d], ValueError, "[", kOp, "] key and value must have the same leading dims",
             shapes());
    if (d == nd - 3 && gqa) {
      NC_CHECK(k.shape()[d] > 0 && q.shape()[d] % k.shape()[d] == 0, ValueError, "[", kOp,
               "] with enable_gqa the number of query heads (dim -3) must be a multiple of the key/value heads",
               shapes());
    } else {
      NC_CHECK(q.shape()[d] == k.shape()[d], ValueError, "[", kOp,
               "] query, key and value must have the same leading dims", d == nd - 3 ?
               " (different numbers of heads need enable_gqa=True)" : "", shapes());
    }
  }
  NC_CHECK(p >= 0.0 && p <= 1.0, ValueError, "[", kOp, "] dropout_p must be in [0, 1], got ", p);
  if (!mask.defined()) return;
  NC_CHECK(!causal, ValueError, "[", kOp, "] attn_mask must be None when is_causal=True");
  NC_CHECK(mask.dtype() == DType::Bool || mask.dtype() == q.dtype(), TypeError, "[", kOp,
           "] attn_mask must be bool or have the query's dtype (", dtype_name(q.dtype()), "), got ",
           dtype_name(mask.dtype()));
  Shape target(q.shape().begin(), q.shape().end());
  target[nd - 1] = k.shape()[nd - 2];
  bool ok = mask.dim() <= nd;
  for (int64_t d = 0; ok && d < mask.dim(); ++d) {
    const int64_t m = mask.shape()[mask.dim() - 1 - d], t = target[nd - 1 - d];
    ok = m == t || m == 1;
  }
  NC_CHECK(ok, ValueError, "[", kOp, "] attn_mask of shape ", shape_str(mask.shape()),
           " does not broadcast to the attention shape ", shape_str(target), shapes());
  NC_CHECK(!mask.requires_grad(), ValueError, "[", kOp,
           "] gradients with respect to attn_mask are not supported (pass attn_mask.detach())");
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& attn_mask, double dropout_p, bool is_causal,
                                    std::optional<double> scale, bool enable_gqa) {
  check_inputs(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa);
  const Tensor q = rows_contiguous(query), k = rows_contiguous(key), v = rows_contiguous(value);
  const Tensor mask = attn_mask;
  const Layout g = make_layout(q, k, v, mask, enable_gqa);
  const double sc = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(g.E));
  const int64_t nd = q.dim();
  Shape out_shape(q.shape().begin(), q.shape().end());
  out_shape[nd - 1] = g.Ev;
  const DType dt = q.dtype();
  Tensor out = Tensor::empty(out_shape, dt);
  Tensor lse = Tensor::empty({g.nb, g.L}, dt);
  PhiloxState rng{0, 0};
  if (dropout_p > 0.0) rng = reserve_random((static_cast<uint64_t>(g.nb) * g.L * g.S + 3) / 4);
  const int64_t tiles = (g.L + kernels::kAttnRowTile - 1) / kernels::kAttnRowTile;
  // Work items of about a tile of rows against all keys; at least 2^16 multiply-adds per thread.
  const int64_t item_work = std::min(g.L, kernels::kAttnRowTile) * std::max<int64_t>(1, g.S * (g.E + g.Ev));
  dispatch_floating(dt, kOp, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto& ops = kernels::attention_ops<T>();
    T* o = out.data<T>();
    T* l = lse.data<T>();
    for_each_item(g.nb * tiles, std::max<int64_t>(1, (1 << 16) / item_work), [&](int64_t u) {
      const int64_t b = u / tiles, i0 = (u % tiles) * kernels::kAttnRowTile;
      const auto h = head<T>(g, b, q, k, v, mask, static_cast<T>(sc), is_causal, dropout_p, rng);
      ops.forward(h, i0, std::min(g.L, i0 + kernels::kAttnRowTile), o + b * g.L * g.Ev, g.Ev, l + b * g.L);
    });
  });

  if (needs_history({query, key, value})) {
    SavedTensor sq(q, false), sk(k, false), sv(v, false), so(out, true);
    set_history(kOp, {query, key, value}, {out},
                [sq, sk, sv, so, mask, lse, sc, is_causal, dropout_p, rng, enable_gqa](
                    const TensorList& grads, const std::vector<bool>&) {
                  NC_CHECK(!GradMode::is_enabled(), RuntimeError, "[", kOp,
                           "] double backward (create_graph=True) is not supported by the fused kernel");
                  const Tensor q = sq.unpack(kOp), k = sk.unpack(kOp), v = sv.unpack(kOp), o = so.unpack(kOp);
                  const Tensor go = contiguous(grads[0]);
                  const Layout g = make_layout(q, k, v, mask, enable_gqa);
                  const DType dt = q.dtype();
                  Tensor gq = Tensor::empty(q.shape(), dt);
                  Tensor gk = zeros(k.shape(), dt), gv = zeros(v.shape(), dt);
                  const int64_t heads_kv = g.nb / g.group;
                  const int64_t head_work = std::max<int64_t>(1, g.L * g.S * (g.E + g.Ev));
                  dispatch_floating(dt, kOp, [&](auto tag) {
                    using T = typename decltype(tag)::type;
                    const auto& ops = kernels::attention_ops<T>();
                    // One item per key/value head: its query heads run in order, so the sums into
                    // gk and gv do not depend on the thread count.
                    for_each_item(heads_kv, std::max<int64_t>(1, (1 << 16) / head_work), [&](int64_t kvh) {
                      for (int64_t j = 0; j < g.group; ++j) {
                        const int64_t b = (kvh / (g.Hq / g.group)) * g.Hq + (kvh % (g.Hq / g.group)) * g.group + j;
                        const auto h = head<T>(g, b, q, k, v, mask, static_cast<T>(sc), is_causal, dropout_p, rng);
                        const int64_t ob = b * g.L;
                        ops.backward(h, o.data<T>() + ob * g.Ev, g.Ev, go.data<T>() + ob * g.Ev, g.Ev,
                                     lse.data<T>() + ob, gq.data<T>() + ob * g.E, g.E,
                                     gk.data<T>() + kvh * g.S * g.E, g.E, gv.data<T>() + kvh * g.S * g.Ev, g.Ev);
                      }
                    });
                  });
                  return TensorList{gq, gk, gv};
                });
  }
  return out;
}

}  // namespace nc
