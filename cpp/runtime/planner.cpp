// Shape inference and memory planning. Shape inference checks every condition a kernel relies on
// (feature counts against weights, window sizes, broadcast rules), so no file and no input shape
// can make a kernel read or write out of bounds. The arena layout gives each computed value an
// offset: values whose lifetimes (definition to last use) overlap never share memory; reshape
// outputs share their input's memory.
#include <algorithm>
#include <numeric>

#include "model.h"

namespace neurocore::detail {
namespace {

constexpr int64_t kMaxArenaFloats = int64_t(1) << 38;  // 1 TiB: beyond it a shape is surely wrong

[[noreturn]] void shape_error(const Node& n, const std::string& msg) {
  std::string where = op_name(n.op);
  if (!n.module.empty()) where += " in module '" + n.module + "'";
  throw Error("[" + where + "] " + msg);
}

int64_t pool_out(int64_t in, int64_t k, int64_t pad, int64_t s, int64_t d, bool ceil_mode) {
  const int64_t num = in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (o - 1) * s >= in + pad) --o;
  return o;
}

// Broadcast shape of two shapes (NumPy rules).
std::vector<int64_t> broadcast(const Node& n, const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  const size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      shape_error(n, "shapes " + shape_str(a) + " and " + shape_str(b) + " can't be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// The batch of a packed-sequence grid (steps * batch, features): the size of its lengths input.
int64_t grid_batch(const Node& n, const std::vector<int64_t>& grid, const std::vector<int64_t>& lengths) {
  if (lengths.size() != 1 || lengths[0] <= 0 || grid.size() != 2 || grid[0] % lengths[0] != 0)
    shape_error(n, "lengths of shape " + shape_str(lengths) + " don't match the packed data of shape " +
                       shape_str(grid) + " (steps * batch rows)");
  return lengths[0];
}

// rnn: checks x (steps * batch, I) against the weights; returns output (N, P), and h_n (B, P) and,
// for LSTM, c_n (B, H) in `extra`.
std::vector<int64_t> infer_rnn(const Node& n, const std::vector<const std::vector<int64_t>*>& in,
                               std::vector<std::vector<int64_t>>& extra) {
  const Attrs& a = n.attrs;
  const std::vector<int64_t>& x = *in[0];
  size_t i = 1;
  const int64_t packed_batch = a.packed ? grid_batch(n, x, *in[i++]) : 0;
  const std::vector<int64_t>* h0 = a.has_h0 ? in[i++] : nullptr;
  const std::vector<int64_t>* c0 = a.has_c0 ? in[i++] : nullptr;
  const auto& w_ih = *in[i++];
  const auto& w_hh = *in[i++];
  const std::vector<int64_t>* b_ih = a.has_bias ? in[i++] : nullptr;
  const std::vector<int64_t>* b_hh = a.has_bias ? in[i++] : nullptr;
  const std::vector<int64_t>* w_hr = a.has_proj ? in[i++] : nullptr;
  const int64_t gates = a.mode == 2 ? 4 : a.mode == 3 ? 3 : 1;
  if (w_ih.size() != 2 || w_hh.size() != 2 || w_ih[0] % gates != 0 || w_ih[0] != w_hh[0] || w_ih[0] == 0)
    shape_error(n, "weight shapes " + shape_str(w_ih) + " and " + shape_str(w_hh) + " don't make a recurrent layer");
  const int64_t H = w_ih[0] / gates;
  const int64_t P = w_hr ? (*w_hr)[0] : H;
  if (w_hh[1] != P || (w_hr && (w_hr->size() != 2 || (*w_hr)[1] != H)))
    shape_error(n, "weight_hh " + shape_str(w_hh) + " doesn't match hidden size " + std::to_string(H) +
                       (w_hr ? " and projection " + shape_str(*w_hr) : std::string()));
  for (const auto* b : {b_ih, b_hh})
    if (b && (b->size() != 1 || (*b)[0] != w_ih[0])) shape_error(n, "bias shape " + shape_str(*b) + " doesn't match");
  if (x.size() != 2 || x[1] != w_ih[1])
    shape_error(n, "input has " + std::to_string(x.empty() ? 0 : x.back()) + " features, expected " +
                       std::to_string(w_ih[1]) + " (input shape " + shape_str(x) + " as (steps * batch, features))");
  if (!a.packed && x[0] % a.steps != 0)
    shape_error(n, "input of shape " + shape_str(x) + " doesn't hold " + std::to_string(a.steps) + " time steps");
  const int64_t B = a.packed ? packed_batch : x[0] / a.steps;
  if (h0 && *h0 != std::vector<int64_t>{B, P})
    shape_error(n, "h0 has shape " + shape_str(*h0) + ", expected " + shape_str({B, P}));
  if (c0 && *c0 != std::vector<int64_t>{B, H})
    shape_error(n, "c0 has shape " + shape_str(*c0) + ", expected " + shape_str({B, H}));
  extra.push_back({B, P});
  if (a.mode == 2) extra.push_back({B, H});
  return {x[0], P};
}

// scaled_dot_product_attention: q (..., Hq, L, E), k (..., Hk, S, E), v (..., Hk, S, Ev), an
// additive mask broadcasting to (..., Hq, L, S); the output is (..., Hq, L, Ev).
std::vector<int64_t> infer_attention(const Node& n, const std::vector<const std::vector<int64_t>*>& in) {
  const auto &q = *in[0], &k = *in[1], &v = *in[2];
  const size_t nd = q.size();
  const std::string shapes = "(query " + shape_str(q) + ", key " + shape_str(k) + ", value " + shape_str(v) + ")";
  if (nd < 2 || nd > 16 || k.size() != nd || v.size() != nd)
    shape_error(n, "query, key and value must have the same rank, at least 2 " + shapes);
  if (k[nd - 1] != q[nd - 1] || v[nd - 2] != k[nd - 2])
    shape_error(n, "key must have the query's features and value the key's length " + shapes);
  for (size_t d = 0; d + 2 < nd; ++d) {
    if (k[d] != v[d]) shape_error(n, "key and value must have the same leading dims " + shapes);
    const bool heads = d + 3 == nd && n.attrs.gqa;
    if (heads ? (k[d] == 0 || q[d] % k[d] != 0) : q[d] != k[d])
      shape_error(n, "query, key and value must have the same leading dims" +
                         std::string(n.attrs.gqa ? " (query heads a multiple of key heads)" : "") + " " + shapes);
  }
  if (n.attrs.has_mask) {
    const auto& m = *in[3];
    std::vector<int64_t> target(q.begin(), q.end());
    target[nd - 1] = k[nd - 2];
    bool ok = m.size() <= nd;
    for (size_t d = 0; ok && d < m.size(); ++d) {
      const int64_t want = target[nd - m.size() + d];
      ok = m[d] == 1 || m[d] == want;
    }
    if (!ok) shape_error(n, "attn_mask of shape " + shape_str(m) + " doesn't broadcast to " + shape_str(target));
  }
  std::vector<int64_t> out(q.begin(), q.end());
  out[nd - 1] = v[nd - 1];
  return out;
}

// slice: basic indexing (ints, slices with a positive step, new axes).
std::vector<int64_t> infer_slice(const Node& n, const std::vector<int64_t>& x) {
  const Attrs& a = n.attrs;
  if (a.starts.size() != x.size())
    shape_error(n, "the index has " + std::to_string(a.starts.size()) + " dims, the input " + shape_str(x) + " " +
                       std::to_string(x.size()));
  std::vector<int64_t> out;
  for (size_t d = 0; d < x.size(); ++d) {
    const int64_t start = a.starts[d] < 0 ? a.starts[d] + x[d] : a.starts[d];
    const int64_t len = a.lengths[d] < 0 ? x[d] : a.lengths[d];
    if (start < 0 || (len > 0 && (start >= x[d] || start + (len - 1) * a.slice_steps[d] >= x[d])) ||
        (!a.keep[d] && len != 1))
      shape_error(n, "index out of range for dim " + std::to_string(d) + " of the input " + shape_str(x));
    if (a.keep[d]) out.push_back(len);
  }
  for (int64_t ax : a.new_axes) {
    if (ax < 0 || ax > static_cast<int64_t>(out.size())) shape_error(n, "invalid new axis position");
    out.insert(out.begin() + ax, 1);
  }
  return out;
}

// reshape targets and full shapes: dim i = c[i] + k[i] * batch.
std::vector<int64_t> batch_shape(const Node& n, int64_t batch) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < n.attrs.shape_c.size(); ++i) {
    const int64_t d = n.attrs.shape_c[i] + n.attrs.shape_k[i] * batch;
    if (d < 0) shape_error(n, "target dim " + std::to_string(i) + " is negative for batch " + std::to_string(batch));
    out.push_back(d);
  }
  return out;
}

std::vector<int64_t> infer(const Node& n, const std::vector<const std::vector<int64_t>*>& in, int64_t batch,
                           std::vector<std::vector<int64_t>>& extra) {
  if (n.op == Op::Full) return batch_shape(n, batch);
  const std::vector<int64_t>& x = *in[0];
  const Attrs& a = n.attrs;
  auto need_rank = [&](size_t lo, size_t hi) {
    if (x.size() < lo || x.size() > hi)
      shape_error(n, "input of shape " + shape_str(x) + " has an unsupported rank");
  };
  switch (n.op) {
    case Op::Linear: {
      const auto& w = *in[1];
      need_rank(1, 16);
      if (w.size() != 2 || x.back() != w[1])
        shape_error(n, "input has " + std::to_string(x.back()) + " features, weight expects " +
                           (w.size() == 2 ? std::to_string(w[1]) : "?") + " (input shape " + shape_str(x) +
                           ", weight shape " + shape_str(w) + ")");
      if (in.size() == 3 && (in[2]->size() != 1 || (*in[2])[0] != w[0])) shape_error(n, "bias shape doesn't match");
      auto out = x;
      out.back() = w[0];
      return out;
    }
    case Op::Matmul: {
      const auto& b = *in[1];
      if (x.size() < 2 || b.size() < 2 || x.size() > 16 || b.size() > 16 || x.back() != b[b.size() - 2])
        shape_error(n, "can't multiply shapes " + shape_str(x) + " and " + shape_str(b));
      std::vector<int64_t> xa(x.begin(), x.end() - 2), ba(b.begin(), b.end() - 2);
      auto out = broadcast(n, xa, ba);
      out.push_back(x[x.size() - 2]);
      out.push_back(b.back());
      return out;
    }
    case Op::Conv2d:
    case Op::ConvTranspose2d: {
      const auto& w = *in[1];
      need_rank(4, 4);
      if (w.size() != 4) shape_error(n, "weight must be 4-D, got " + shape_str(w));
      const int64_t g = a.groups;
      const bool tr = n.op == Op::ConvTranspose2d;
      const int64_t cin = x[1];
      if (cin % g != 0 || (tr ? w[0] != cin : w[1] * g != cin) || (!tr && w[0] % g != 0))
        shape_error(n, "input of shape " + shape_str(x) + " doesn't match weight " + shape_str(w) + " with groups " +
                           std::to_string(g));
      const int64_t cout = tr ? w[1] * g : w[0];
      if (in.size() == 3 && (in[2]->size() != 1 || (*in[2])[0] != cout)) shape_error(n, "bias shape doesn't match");
      int64_t oh, ow;
      if (!tr) {
        oh = (x[2] + a.padding[0] + a.padding[1] - a.dilation[0] * (w[2] - 1) - 1) / a.stride[0] + 1;
        ow = (x[3] + a.padding[2] + a.padding[3] - a.dilation[1] * (w[3] - 1) - 1) / a.stride[1] + 1;
        if (x[2] + a.padding[0] + a.padding[1] < a.dilation[0] * (w[2] - 1) + 1 ||
            x[3] + a.padding[2] + a.padding[3] < a.dilation[1] * (w[3] - 1) + 1)
          shape_error(n, "input of shape " + shape_str(x) + " is smaller than the kernel");
      } else {
        if (a.output_padding[0] >= std::max(a.stride[0], a.dilation[0]) ||
            a.output_padding[1] >= std::max(a.stride[1], a.dilation[1]))
          shape_error(n, "output_padding must be smaller than stride or dilation");
        oh = (x[2] - 1) * a.stride[0] - 2 * a.padding[0] + a.dilation[0] * (w[2] - 1) + a.output_padding[0] + 1;
        ow = (x[3] - 1) * a.stride[1] - 2 * a.padding[2] + a.dilation[1] * (w[3] - 1) + a.output_padding[1] + 1;
      }
      if (oh <= 0 || ow <= 0 || x[2] <= 0 || x[3] <= 0) shape_error(n, "output size is empty for input " + shape_str(x));
      return {x[0], cout, oh, ow};
    }
    case Op::MaxPool2d:
    case Op::AvgPool2d: {
      need_rank(3, 4);
      const int64_t h = x[x.size() - 2], w = x.back();
      if (h <= 0 || w <= 0) shape_error(n, "input has an empty spatial dim, shape " + shape_str(x));
      if (2 * a.padding[0] > a.kernel[0] || 2 * a.padding[2] > a.kernel[1] || a.kernel[0] * a.kernel[1] > (1 << 20))
        shape_error(n, "pad should be at most half of the kernel size");
      const int64_t d0 = n.op == Op::MaxPool2d ? a.dilation[0] : 1, d1 = n.op == Op::MaxPool2d ? a.dilation[1] : 1;
      const int64_t oh = pool_out(h, a.kernel[0], a.padding[0], a.stride[0], d0, a.ceil_mode);
      const int64_t ow = pool_out(w, a.kernel[1], a.padding[2], a.stride[1], d1, a.ceil_mode);
      if (oh <= 0 || ow <= 0) shape_error(n, "output size is too small for input shape " + shape_str(x));
      auto out = x;
      out[out.size() - 2] = oh;
      out.back() = ow;
      return out;
    }
    case Op::AdaptiveAvgPool2d: {
      need_rank(3, 4);
      if (x[x.size() - 2] <= 0 || x.back() <= 0) shape_error(n, "input has an empty spatial dim");
      auto out = x;
      out[out.size() - 2] = a.output_size[0];
      out.back() = a.output_size[1];
      return out;
    }
    case Op::BatchNorm: {
      need_rank(2, 16);
      for (size_t i = 1; i < in.size(); ++i)
        if (in[i]->size() != 1 || (*in[i])[0] != x[1])
          shape_error(n, "parameter shape " + shape_str(*in[i]) + " doesn't match " + std::to_string(x[1]) + " channels");
      return x;
    }
    case Op::LayerNorm: {
      const auto& ns = a.normalized_shape;
      if (x.size() < ns.size() || !std::equal(ns.begin(), ns.end(), x.end() - static_cast<long>(ns.size())))
        shape_error(n, "input shape " + shape_str(x) + " doesn't end with normalized_shape " + shape_str(ns));
      for (size_t i = 1; i < in.size(); ++i)
        if (*in[i] != ns) shape_error(n, "parameter shape " + shape_str(*in[i]) + " must be " + shape_str(ns));
      return x;
    }
    case Op::Softmax:
    case Op::LogSoftmax:
      need_rank(1, 16);
      if (a.dim >= static_cast<int64_t>(x.size())) shape_error(n, "dim out of range for shape " + shape_str(x));
      return x;
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Div:
      if (x.size() > 16 || (in.size() == 2 && in[1]->size() > 16)) shape_error(n, "rank too large");
      return in.size() == 2 ? broadcast(n, x, *in[1]) : x;
    case Op::Reshape: {
      const std::vector<int64_t> out = batch_shape(n, batch);
      if (out.size() > 16 || numel_of(out) != numel_of(x))
        shape_error(n, "can't reshape " + shape_str(x) + " into " + shape_str(out));
      return out;
    }
    case Op::Permute: {
      if (a.dims.size() != x.size()) shape_error(n, "permutation doesn't match rank of " + shape_str(x));
      std::vector<bool> seen(x.size(), false);
      std::vector<int64_t> out;
      for (int64_t d : a.dims) {
        if (d < 0 || d >= static_cast<int64_t>(x.size()) || seen[static_cast<size_t>(d)])
          shape_error(n, "invalid permutation");
        seen[static_cast<size_t>(d)] = true;
        out.push_back(x[static_cast<size_t>(d)]);
      }
      return out;
    }
    case Op::Cat: {
      if (a.dim >= static_cast<int64_t>(x.size())) shape_error(n, "dim out of range for shape " + shape_str(x));
      auto out = x;
      for (size_t i = 1; i < in.size(); ++i) {
        const auto& y = *in[i];
        bool ok = y.size() == x.size();
        for (size_t d = 0; ok && d < x.size(); ++d) ok = static_cast<int64_t>(d) == a.dim || y[d] == x[d];
        if (!ok) shape_error(n, "can't concatenate " + shape_str(x) + " and " + shape_str(y));
        out[static_cast<size_t>(a.dim)] += y[static_cast<size_t>(a.dim)];
      }
      return out;
    }
    case Op::Expand: {
      const std::vector<int64_t> out = batch_shape(n, batch);
      bool ok = x.size() <= out.size() && out.size() <= 16;
      for (size_t d = 0; ok && d < x.size(); ++d) {
        const int64_t o = out[out.size() - x.size() + d];
        ok = x[d] == o || x[d] == 1;
      }
      if (!ok) shape_error(n, "can't expand " + shape_str(x) + " to " + shape_str(out));
      return out;
    }
    case Op::Where:
      if (x.size() > 16 || in[1]->size() > 16 || in[2]->size() > 16) shape_error(n, "rank too large");
      return broadcast(n, broadcast(n, x, *in[1]), *in[2]);
    case Op::Rnn: return infer_rnn(n, in, extra);
    case Op::Pack: {  // (T, B, F) or (B, T, F) -> (T * B, F)
      const auto& len = *in[1];
      if (x.size() != 3 || len.size() != 1 || len[0] != x[a.batch_first ? 0 : 1])
        shape_error(n, "input of shape " + shape_str(x) + " and lengths of shape " + shape_str(len) +
                           " are not a padded batch of " + (a.batch_first ? "(batch, steps, features)" :
                                                            "(steps, batch, features)") + " and its lengths");
      return {x[0] * x[1], x[2]};
    }
    case Op::Unpack: {  // (T * B, F) -> (T', B, F) or (B, T', F)
      const int64_t B = grid_batch(n, x, *in[1]);
      const int64_t T = a.total_length > 0 ? a.total_length : x[0] / B;
      if (a.batch_first) return {B, T, x[1]};
      return {T, B, x[1]};
    }
    case Op::Attention: return infer_attention(n, in);
    case Op::Slice: return infer_slice(n, x);
    case Op::Embedding: {
      const auto& idx = *in[1];
      if (x.size() != 2 || idx.size() > 15) shape_error(n, "weight must be 2-D, got " + shape_str(x));
      auto out = idx;
      out.push_back(x[1]);
      return out;
    }
    case Op::RmsNorm: {
      const auto& ns = a.normalized_shape;
      if (x.size() < ns.size() || x.size() > 16 || !std::equal(ns.begin(), ns.end(), x.end() - static_cast<long>(ns.size())))
        shape_error(n, "input shape " + shape_str(x) + " doesn't end with normalized_shape " + shape_str(ns));
      if (in.size() == 2 && *in[1] != ns) shape_error(n, "weight shape " + shape_str(*in[1]) + " must be " + shape_str(ns));
      return x;
    }
    case Op::Mean:
    case Op::Sum: {
      if (x.size() > 16) shape_error(n, "rank too large");
      std::vector<bool> reduced(x.size(), false);
      for (int64_t d : a.dims) {
        if (d < 0 || d >= static_cast<int64_t>(x.size()) || reduced[static_cast<size_t>(d)])
          shape_error(n, "invalid reduction dims for shape " + shape_str(x));
        reduced[static_cast<size_t>(d)] = true;
      }
      std::vector<int64_t> out;
      for (size_t d = 0; d < x.size(); ++d) {
        if (!reduced[d]) out.push_back(x[d]);
        else if (a.keepdim) out.push_back(1);
      }
      return out;
    }
    default:  // unary elementwise
      if (x.size() > 16) shape_error(n, "rank too large");
      return x;
  }
}

}  // namespace

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("[runtime] negative dimension in shape " + shape_str(shape));
    if (d != 0 && n > kMaxArenaFloats / d) throw Error("[runtime] shape " + shape_str(shape) + " is too large");
    n *= d;
  }
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::shared_ptr<const Plan> make_plan(const Model& m, const std::vector<std::vector<int64_t>>& input_shapes) {
  if (input_shapes.size() != m.input_values.size())
    throw Error("[run] the model takes " + std::to_string(m.input_values.size()) + " inputs, got " +
                std::to_string(input_shapes.size()));
  auto plan = std::make_shared<Plan>();
  const size_t nv = m.values.size();
  plan->shapes.resize(nv);
  plan->offset.assign(nv, -1);
  plan->root.resize(nv);
  std::iota(plan->root.begin(), plan->root.end(), 0);
  int64_t batch = -1;
  for (size_t i = 0; i < input_shapes.size(); ++i) {
    const auto& s = input_shapes[i];
    const auto& decl = m.input_shapes[i];
    bool ok = s.size() == decl.size() && !s.empty() == !decl.empty();
    for (size_t d = 0; ok && d < s.size(); ++d) {
      ok = decl[d] == -1 ? s[d] >= 0 : s[d] == decl[d];
      if (ok && decl[d] == -1) {  // the dynamic batch dim
        if (batch >= 0 && s[d] != batch) ok = false;
        batch = s[d];
      }
    }
    if (!ok)
      throw Error("[run] input '" + m.input_names[i] + "' has shape " + shape_str(s) + ", the model expects " +
                  shape_str(decl) + (m.dynamic_batch ? " (-1: any batch size, the same for every input)" : ""));
    numel_of(s);
    plan->shapes[static_cast<size_t>(m.input_values[i])] = s;
  }
  if (batch < 0 && !input_shapes.empty() && !input_shapes[0].empty()) batch = input_shapes[0][0];
  for (size_t v = 0; v < nv; ++v)
    if (m.values[v].kind == ValueKind::Constant) plan->shapes[v] = m.values[v].shape;
  for (size_t v = 0; v < nv; ++v)
    if (plan->shapes[v].size() > kMaxRank)
      throw Error("[run] a tensor of shape " + shape_str(plan->shapes[v]) + " has more than 16 dims");

  // Shapes, and the last node index using each root.
  const int64_t never = -1;
  std::vector<int64_t> def(nv, never), last(nv, never);
  int64_t workspace = 0;
  std::vector<std::vector<int64_t>> extra;
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const Node& n = m.nodes[i];
    std::vector<const std::vector<int64_t>*> in;
    for (int v : n.inputs) in.push_back(&plan->shapes[static_cast<size_t>(v)]);
    extra.clear();
    plan->shapes[static_cast<size_t>(n.output)] = infer(n, in, batch, extra);
    if (plan->shapes[static_cast<size_t>(n.output)].size() > kMaxRank) shape_error(n, "the result has more than 16 dims");
    numel_of(plan->shapes[static_cast<size_t>(n.output)]);
    workspace = std::max(workspace, workspace_floats(n, plan->shapes));
    if (n.op == Op::Reshape) plan->root[static_cast<size_t>(n.output)] = plan->root[static_cast<size_t>(n.inputs[0])];
    def[static_cast<size_t>(n.output)] = static_cast<int64_t>(i);
    for (size_t o = 0; o < n.extra_outputs.size(); ++o) {
      const size_t v = static_cast<size_t>(n.extra_outputs[o]);
      plan->shapes[v] = extra.at(o);
      numel_of(plan->shapes[v]);
      def[v] = static_cast<int64_t>(i);
    }
    for (int v : n.inputs) last[static_cast<size_t>(plan->root[static_cast<size_t>(v)])] = static_cast<int64_t>(i);
  }
  const int64_t end = static_cast<int64_t>(m.nodes.size());
  for (int v : m.output_values) last[static_cast<size_t>(plan->root[static_cast<size_t>(v)])] = end;
  for (size_t v = 0; v < nv; ++v)  // a reshape keeps its root alive as long as itself
    if (plan->root[v] != static_cast<int>(v) && def[v] != never)
      last[static_cast<size_t>(plan->root[v])] = std::max(last[static_cast<size_t>(plan->root[v])], last[v]);

  // Arena: computed roots, largest first, each at the lowest offset free during its lifetime.
  struct Block { int64_t begin, end, off, size; };
  std::vector<int> order;
  for (size_t v = 0; v < nv; ++v)
    if (m.values[v].kind == ValueKind::Computed && plan->root[v] == static_cast<int>(v) && def[v] != never)
      order.push_back(static_cast<int>(v));
  auto floats = [&](int v) { return (numel_of(plan->shapes[static_cast<size_t>(v)]) + 15) / 16 * 16; };
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return floats(x) > floats(y); });
  std::vector<Block> placed;
  int64_t top = 0;
  for (int v : order) {
    const int64_t b = def[static_cast<size_t>(v)], e = std::max(last[static_cast<size_t>(v)], b), size = floats(v);
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (const Block& p : placed)
      if (p.begin <= e && b <= p.end) busy.emplace_back(p.off, p.off + p.size);
    std::sort(busy.begin(), busy.end());
    int64_t off = 0;
    for (const auto& [s, t] : busy) {
      if (off + size <= s) break;
      off = std::max(off, t);
    }
    placed.push_back({b, e, off, size});
    plan->offset[static_cast<size_t>(v)] = off;
    top = std::max(top, off + size);
    if (top > kMaxArenaFloats) throw Error("[run] the model needs more than 1 TiB of memory for these input shapes");
  }
  plan->workspace_offset = top;
  plan->arena_floats = top + (workspace + 15) / 16 * 16;
  if (plan->arena_floats > kMaxArenaFloats) throw Error("[run] the model needs too much scratch memory");
  return plan;
}

std::shared_ptr<const Plan> get_plan(const Model& m, const std::vector<std::vector<int64_t>>& input_shapes) {
  thread_local std::vector<int64_t> key;  // reused: a repeated call allocates nothing
  key.clear();
  for (const auto& s : input_shapes) {
    key.push_back(static_cast<int64_t>(s.size()));
    key.insert(key.end(), s.begin(), s.end());
  }
  {
    std::lock_guard<std::mutex> lock(m.plans_mutex);
    auto it = m.plans.find(key);
    if (it != m.plans.end()) return it->second;
  }
  auto plan = make_plan(m, input_shapes);
  std::lock_guard<std::mutex> lock(m.plans_mutex);
  if (m.plans.size() > 256) m.plans.clear();  // bounded cache; live plans stay alive through shared_ptr
  return m.plans.emplace(key, plan).first->second;
}

}  // namespace neurocore::detail
