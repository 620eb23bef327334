#include "ops/attention.h"

#include <cmath>
#include <limits>
#include <map>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"
#include "core/random.h"
#include "kernels/attention.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/elementwise.h"
#include "ops/linalg.h"
#include "ops/math.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "ops/softmax.h"

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
  const auto run = [&](int64_t b, int64_t e) {
    for (int64_t u = b; u < e; ++u) body(u);
  };
  if (n < 2 * std::max<int64_t>(1, min_items_per_thread)) return run(0, n);
  parallel_for(0, n, 1, run);
}

// Per query head, the element offset of the (L, S) slice of `t` (a mask, or its gradient) broadcast
// to q's leading dims + (L, S); row_stride / col_stride get the strides of that slice (0 along
// broadcast dims).
std::vector<int64_t> broadcast_offsets(const Tensor& t, const Shape& q_shape, int64_t S, int64_t& row_stride,
                                       int64_t& col_stride) {
  const int64_t nd = static_cast<int64_t>(q_shape.size()), td = t.dim();
  Shape target(q_shape.begin(), q_shape.end());
  target[nd - 1] = S;
  Shape st(static_cast<size_t>(nd), 0);
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t src = d - (nd - td);
    if (src >= 0 && t.shape()[src] != 1) st[d] = t.strides()[src];
  }
  row_stride = st[nd - 2];
  col_stride = st[nd - 1];
  return lead_offsets(target, st, nd - 2);
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
  // The first of the `group` consecutive query heads that read key/value head kvh.
  int64_t first_head(int64_t kvh) const { return (kvh / (Hq / group)) * Hq + (kvh % (Hq / group)) * group; }
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
    g.m_off = broadcast_offsets(mask, q.shape(), g.S, g.m_rs, g.m_cs);
  }
  return g;
}

// The fields of a head that come from the layout alone (tensor and raw-pointer paths alike).
template <class T>
kernels::AttnHead<T> layout_head(const Layout& g, const T* q, const T* k, const T* v, T scale, bool causal,
                                 kernels::AttnMask mask_kind) {
  kernels::AttnHead<T> h;
  h.q = q;
  h.k = k;
  h.v = v;
  h.q_rs = g.q_rs;
  h.k_rs = g.k_rs;
  h.v_rs = g.v_rs;
  h.L = g.L;
  h.S = g.S;
  h.E = g.E;
  h.Ev = g.Ev;
  h.scale = scale;
  h.causal = causal;
  h.mask_kind = mask_kind;
  return h;
}

template <class T>
kernels::AttnHead<T> head(const Layout& g, int64_t b, const Tensor& q, const Tensor& k, const Tensor& v,
                          const Tensor& mask, T scale, bool causal, double p, PhiloxState rng) {
  const size_t i = static_cast<size_t>(b);
  kernels::AttnHead<T> h = layout_head<T>(g, q.data<T>() + g.q_off[i], k.data<T>() + g.k_off[i],
                                          v.data<T>() + g.v_off[i], scale, causal, g.mask_kind);
  if (mask.defined()) {
    const char* base = static_cast<const char*>(mask.raw_data());
    h.mask = base + g.m_off[i] * static_cast<int64_t>(mask.itemsize());
    h.m_rs = g.m_rs;
    h.m_cs = g.m_cs;
  }
  h.dropout_p = p;
  h.rng_key = rng.key;
  h.rng_counter = rng.counter;
  h.rng_elem0 = static_cast<uint64_t>(b) * static_cast<uint64_t>(g.L) * static_cast<uint64_t>(g.S);
  return h;
}

// Elements of the transposed-keys buffer forward_heads needs (0 with a single row tile per head).
int64_t transposed_keys_floats(const Layout& g, size_t itemsize) {
  const int64_t tiles = (g.L + kernels::kAttnRowTile - 1) / kernels::kAttnRowTile;
  if (tiles <= 1) return 0;
  return g.nb / g.group * g.E * kernels::attn_transposed_stride(g.S, static_cast<int64_t>(itemsize));
}

// The forward of every head: o (nb, L, Ev) and lse (nb, L); head_of(b) describes query head b.
// kt (transposed_keys_floats elements, or null when that is 0) receives each key/value head's
// keys transposed once, rather than by every row tile (that copy cost as much as an eighth of the
// tile products).
template <class T, class HeadOf>
void forward_heads(const Layout& g, const HeadOf& head_of, T* o, T* l, T* kt) {
  const auto& ops = kernels::attention_ops<T>();
  const int64_t tiles = (g.L + kernels::kAttnRowTile - 1) / kernels::kAttnRowTile;
  // Work items of about a tile of rows against all keys; at least 2^16 multiply-adds per thread.
  const int64_t item_work = std::min(g.L, kernels::kAttnRowTile) * std::max<int64_t>(1, g.S * (g.E + g.Ev));
  const int64_t heads_kv = g.nb / g.group, ldt = kernels::attn_transposed_stride(g.S, sizeof(T));
  if (kt) {
    for_each_item(heads_kv, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, g.S * g.E)), [&](int64_t kvh) {
      ops.transpose_keys(head_of(g.first_head(kvh)), kt + kvh * g.E * ldt, ldt);
    });
  }
  for_each_item(g.nb * tiles, std::max<int64_t>(1, (1 << 16) / item_work), [&](int64_t u) {
    const int64_t b = u / tiles, i0 = (u % tiles) * kernels::kAttnRowTile;
    auto h = head_of(b);
    if (kt) {
      h.kt = kt + g.kv_head(b) * g.E * ldt;
      h.kt_ld = ldt;
    }
    ops.forward(h, i0, std::min(g.L, i0 + kernels::kAttnRowTile), o + b * g.L * g.Ev, g.Ev, l + b * g.L);
  });
}

// Mask-gradient buffers when heads of different backward items share a slice of it (the mask
// broadcasts over heads or batch): that many contiguous runs of items, each summing into its own
// buffer, added up in order at the end. Fixed by the shapes, never by the thread count.
constexpr int64_t kMaskGradChunks = 4;

// First-order backward through the fused kernel: no L x S matrix (except the mask gradient when
// an additive mask requires grad: it has the mask's shape, times up to kMaskGradChunks).
TensorList backward_fused(const Layout& g, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                          const Tensor& o, const Tensor& lse, const Tensor& go, double sc, bool causal, double p,
                          PhiloxState rng, bool need_mask_grad) {
  const DType dt = q.dtype();
  Tensor gq = Tensor::empty(q.shape(), dt);
  Tensor gk = zeros(k.shape(), dt), gv = zeros(v.shape(), dt);
  // One item per key/value head, its query heads in ascending order (they add into its gk, gv).
  const int64_t items = g.nb / g.group;
  const auto item_head = [&](int64_t kvh, int64_t j) { return g.first_head(kvh) + j; };
  std::vector<int64_t> gm_off;
  int64_t gm_rs = 0, gm_cs = 0, chunks = items;
  std::vector<Tensor> gm_parts;
  if (need_mask_grad) {
    gm_parts.push_back(zeros(mask.shape(), dt));
    gm_off = broadcast_offsets(gm_parts[0], q.shape(), g.S, gm_rs, gm_cs);
    std::map<int64_t, int64_t> owner;  // slice offset -> the item that first writes it
    bool shared = false;
    for (int64_t kvh = 0; kvh < items && !shared; ++kvh)
      for (int64_t j = 0; j < g.group; ++j) {
        const auto [it, fresh] = owner.emplace(gm_off[static_cast<size_t>(item_head(kvh, j))], kvh);
        shared = shared || (!fresh && it->second != kvh);
      }
    if (shared) {
      chunks = std::min(items, kMaskGradChunks);
      for (int64_t c = 1; c < chunks; ++c) gm_parts.push_back(zeros(mask.shape(), dt));
    }
  }
  const int64_t chunk_work = std::max<int64_t>(1, g.L * g.S * (g.E + g.Ev) * g.nb / chunks);
  dispatch_floating(dt, kOp, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto& ops = kernels::attention_ops<T>();
    for_each_item(chunks, std::max<int64_t>(1, (1 << 16) / chunk_work), [&](int64_t c) {
      T* gm = gm_parts.empty() ? nullptr : gm_parts[gm_parts.size() == 1 ? 0 : static_cast<size_t>(c)].data<T>();
      for (int64_t kvh = c * items / chunks; kvh < (c + 1) * items / chunks; ++kvh) {
        for (int64_t j = 0; j < g.group; ++j) {
          const int64_t b = item_head(kvh, j), ob = b * g.L;
          const auto h = head<T>(g, b, q, k, v, mask, static_cast<T>(sc), causal, p, rng);
          ops.backward(h, o.data<T>() + ob * g.Ev, g.Ev, go.data<T>() + ob * g.Ev, g.Ev, lse.data<T>() + ob,
                       gq.data<T>() + ob * g.E, g.E, gk.data<T>() + kvh * g.S * g.E, g.E,
                       gv.data<T>() + kvh * g.S * g.Ev, g.Ev, gm ? gm + gm_off[static_cast<size_t>(b)] : nullptr,
                       gm_rs, gm_cs);
        }
      }
    });
  });
  Tensor gm;
  for (const Tensor& part : gm_parts) gm = gm.defined() ? add(gm, part) : part;
  return TensorList{gq, gk, gv, gm};
}

// The dropout factors of every head as a (..., Hq, L, S) tensor (the words the kernels draw).
Tensor dropout_factors(const Layout& g, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                       double sc, bool causal, double p, PhiloxState rng) {
  Shape shape(q.shape().begin(), q.shape().end());
  shape.back() = g.S;
  Tensor keep = Tensor::empty(shape, q.dtype());
  dispatch_floating(q.dtype(), kOp, [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (int64_t b = 0; b < g.nb; ++b)
      kernels::attention_ops<T>().dropout_keep(head<T>(g, b, q, k, v, mask, static_cast<T>(sc), causal, p, rng),
                                              keep.data<T>() + b * g.L * g.S, g.S);
  });
  return keep;
}

// (..., Hk, S, E) -> (..., Hk * group, S, E), each key/value head repeated for its query heads.
Tensor repeat_heads(const Tensor& t, int64_t group) {
  if (group == 1) return t;
  const int64_t nd = t.dim();
  Shape wide(t.shape().begin(), t.shape().end());
  wide.insert(wide.begin() + (nd - 2), group);
  Shape flat(t.shape().begin(), t.shape().end());
  flat[static_cast<size_t>(nd - 3)] *= group;
  return reshape(expand(unsqueeze(t, nd - 2), wide), flat);
}

// Sums (..., Hk * group, S, E) over each group of query heads: the inverse of repeat_heads.
Tensor sum_heads(const Tensor& t, int64_t group) {
  if (group == 1) return t;
  const int64_t nd = t.dim();
  Shape wide(t.shape().begin(), t.shape().end());
  wide[static_cast<size_t>(nd - 3)] /= group;
  wide.insert(wide.begin() + (nd - 2), group);
  return sum(reshape(t, wide), {nd - 2}, false);
}

// The attention backward from differentiable ops (create_graph): P = softmax(S) recomputed in
// full, dV = Pd^T dO, dP = (dO V^T) * keep, dS = P (dP - rowsum(dP P)), dQ = dS K scale,
// dK = dS^T Q scale, d(mask) = dS summed to the mask's shape. Rows whose keys are all masked out
// get P = 0, as in the fused kernel.
TensorList backward_graph(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, const Tensor& go,
                          double sc, bool causal, const Tensor& keep, int64_t group, const std::vector<bool>& needs) {
  const int64_t nd = q.dim(), L = q.shape()[nd - 2], S = k.shape()[nd - 2];
  const DType dt = q.dtype();
  const Tensor ninf = scalar_tensor(-std::numeric_limits<double>::infinity(), dt), zero = scalar_tensor(0.0, dt);
  const Tensor kx = repeat_heads(k, group), vx = repeat_heads(v, group);
  Tensor scores = mul(matmul(q, transpose(kx, nd - 2, nd - 1)), scalar_tensor(sc, dt));
  Tensor excluded;  // bool, broadcasts to the scores: key j takes no part for query i
  if (mask.defined() && mask.dtype() == DType::Bool) {
    excluded = logical_not(mask);
  } else if (mask.defined()) {
    excluded = compare(Compare::Eq, mask, ninf);
    scores = add(scores, where(excluded, zero, mask));
  }
  if (causal) {
    Tensor upper = Tensor::empty({L, S}, DType::Bool);
    auto* u = static_cast<uint8_t*>(upper.raw_data());
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < S; ++j) u[i * S + j] = j > i;
    excluded = excluded.defined() ? logical(Logical::Or, excluded, upper) : upper;
  }
  Tensor dead;  // rows with every key excluded: their scores stay finite, their P is set to 0
  if (excluded.defined()) {
    dead = all(excluded, {excluded.dim() - 1}, true);
    scores = where(logical(Logical::And, excluded, logical_not(dead)), ninf, scores);
  }
  Tensor P = softmax(scores, nd - 1);
  if (dead.defined()) P = where(dead, zero, P);
  const Tensor Pd = keep.defined() ? mul(P, keep) : P;
  Tensor dP = matmul(go, transpose(vx, nd - 2, nd - 1));
  if (keep.defined()) dP = mul(dP, keep);
  const Tensor dS = mul(P, sub(dP, sum(mul(dP, P), {nd - 1}, true)));
  const Tensor scale = scalar_tensor(sc, dt);
  TensorList r(4);
  if (needs[0]) r[0] = mul(matmul(dS, kx), scale);
  if (needs[1]) r[1] = sum_heads(mul(matmul(transpose(dS, nd - 2, nd - 1), q), scale), group);
  if (needs[2]) r[2] = sum_heads(matmul(transpose(Pd, nd - 2, nd - 1), go), group);
  if (needs[3]) r[3] = sum_to(dS, mask.shape());
  return r;
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
  dispatch_floating(dt, kOp, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor kt;
    if (transposed_keys_floats(g, sizeof(T)) > 0) kt = Tensor::empty({transposed_keys_floats(g, sizeof(T))}, dt);
    forward_heads<T>(
        g, [&](int64_t b) { return head<T>(g, b, q, k, v, mask, static_cast<T>(sc), is_causal, dropout_p, rng); },
        out.data<T>(), lse.data<T>(), kt.defined() ? kt.data<T>() : nullptr);
  });

  if (needs_history({query, key, value, mask})) {
    SavedTensor sq(q, false), sk(k, false), sv(v, false), sm(mask, false), so(out, true);
    set_history(kOp, {query, key, value, mask}, {out},
                [sq, sk, sv, sm, so, lse, sc, is_causal, dropout_p, rng, enable_gqa](
                    const TensorList& grads, const std::vector<bool>& needs) {
                  const Tensor q = sq.unpack(kOp), k = sk.unpack(kOp), v = sv.unpack(kOp), mask = sm.unpack(kOp);
                  const Layout g = make_layout(q, k, v, mask, enable_gqa);
                  if (GradMode::is_enabled()) {
                    // create_graph: the same gradients from differentiable ops (probabilities
                    // recomputed explicitly), so that they have a graph of their own.
                    const Tensor keep = dropout_p > 0.0 ? dropout_factors(g, q, k, v, mask, sc, is_causal, dropout_p, rng)
                                                        : Tensor();
                    return backward_graph(q, k, v, mask, grads[0], sc, is_causal, keep, g.group, needs);
                  }
                  return backward_fused(g, q, k, v, mask, so.unpack(kOp), lse, contiguous(grads[0]), sc, is_causal,
                                        dropout_p, rng, needs[3]);
                });
  }
  return out;
}

namespace {

Layout infer_layout(const SdpaInfer& a) {
  Layout g;
  g.nb = 1;
  for (int d = 0; d < a.nlead; ++d) g.nb *= a.lead[d];
  g.Hq = a.nlead ? a.lead[a.nlead - 1] : 1;
  g.group = a.group;
  g.L = a.L;
  g.S = a.S;
  g.E = a.E;
  g.Ev = a.Ev;
  g.q_rs = g.k_rs = a.E;
  g.v_rs = a.Ev;
  g.mask_kind = a.mask_kind;
  return g;
}

int64_t padded(int64_t n) { return (n + 15) / 16 * 16; }

}  // namespace

int64_t sdpa_infer_scratch(const SdpaInfer& a) {
  const Layout g = infer_layout(a);
  return padded(g.nb * g.L) + transposed_keys_floats(g, sizeof(float));
}

void sdpa_infer(const SdpaInfer& a, const float* q, const float* k, const float* v, float* out, float* scratch) {
  const Layout g = infer_layout(a);
  if (g.nb == 0 || g.L == 0) return;
  const float sc = static_cast<float>(a.scale > 0 ? a.scale : 1.0 / std::sqrt(static_cast<double>(g.E)));
  float* lse = scratch;
  float* kt = transposed_keys_floats(g, sizeof(float)) > 0 ? scratch + padded(g.nb * g.L) : nullptr;
  const int64_t mask_item = a.mask_kind == kernels::AttnMask::Bool ? 1 : static_cast<int64_t>(sizeof(float));
  const auto head_of = [&](int64_t b) {
    const int64_t kvh = g.kv_head(b);
    kernels::AttnHead<float> h = layout_head<float>(g, q + b * g.L * g.E, k + kvh * g.S * g.E, v + kvh * g.S * g.Ev,
                                                    sc, a.causal, a.mask_kind);
    if (a.mask_kind != kernels::AttnMask::None) {
      int64_t rem = b, off = 0;
      for (int d = a.nlead - 1; d >= 0; --d) {
        off += (rem % a.lead[d]) * a.mask_lead[d];
        rem /= a.lead[d];
      }
      h.mask = static_cast<const char*>(a.mask) + off * mask_item;
      h.m_rs = a.m_rs;
      h.m_cs = a.m_cs;
    }
    return h;
  };
  forward_heads<float>(g, head_of, out, lse, kt);
}

}  // namespace nc
