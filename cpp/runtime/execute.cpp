// One node on raw float32 buffers, calling the kernels of cpp/kernels/ through their dispatch
// tables (no tensors, no autograd). Shapes were validated by the planner.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "core/parallel.h"
#include "kernels/activation.h"
#include "kernels/conv.h"
#include "kernels/conv_winograd.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/norm.h"
#include "kernels/pool.h"
#include "kernels/softmax.h"
#include "kernels/vecmath.h"
#include "model.h"
#include "ops/attention.h"
#include "ops/rnn.h"

namespace neurocore::detail {
namespace kn = nc::kernels;
namespace {

constexpr int64_t kGrain = 32768;  // elements below which an elementwise loop stays on one thread

using Shape = std::vector<int64_t>;

int64_t prod(const Shape& s, size_t b, size_t e) {
  int64_t n = 1;
  for (size_t i = b; i < e; ++i) n *= s[i];
  return n;
}

// Per-dim values of a shape (the planner bounds ranks by kMaxRank): fixed storage, so that a run
// allocates nothing.
using Dims = std::array<int64_t, kMaxRank>;

Dims strides_of(const Shape& s) {
  Dims st{};
  if (!s.empty()) st[s.size() - 1] = 1;
  for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

template <class F>
void elementwise(int64_t n, const F& f) {
  nc::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) { f(b, e - b); });
}

void linear(const Node& n, const Shape& xs, const Shape& ws, const float* x, const float* w, const float* bias,
            float* y) {
  const int64_t in = ws[1], out = ws[0], rows = prod(xs, 0, xs.size() - 1);
  if (rows == 0 || out == 0) return;
  if (in == 0) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < out; ++j) {
        const float v = bias ? bias[j] : 0.f;
        y[r * out + j] = n.attrs.act == Act::Relu && v < 0 ? 0.f : v;
      }
    return;
  }
  const int act = static_cast<int>(n.attrs.act);
  if (n.packed_weight && rows >= kn::kPrepackedMinRows)
    kn::gemm().f32.gemm_prepacked(false, rows, out, in, 1.f, x, in, n.packed_weight, 0.f, y, out, bias, act);
  else
    kn::gemm().f32.gemm_bias_act(false, true, rows, out, in, 1.f, x, in, w, in, 0.f, y, out, bias, act);
}

void matmul(const Shape& as, const Shape& bs, const Shape& os, const float* a, const float* b, float* c) {
  const int64_t m = as[as.size() - 2], k = as.back(), nn = bs.back();
  const size_t rank = os.size() - 2;
  const int64_t batches = prod(os, 0, rank);
  // Batch strides of a and b, 0 where broadcast.
  Dims sa{}, sb{};
  int64_t stride_a = m * k, stride_b = k * nn;
  for (size_t i = rank; i-- > 0;) {
    const size_t ia = i + (as.size() - 2) - rank, ib = i + (bs.size() - 2) - rank;
    const bool has_a = i >= rank - (as.size() - 2), has_b = i >= rank - (bs.size() - 2);
    if (has_a) { sa[i] = as[ia] == 1 ? 0 : stride_a; stride_a *= as[ia]; }
    if (has_b) { sb[i] = bs[ib] == 1 ? 0 : stride_b; stride_b *= bs[ib]; }
  }
  for (int64_t t = 0; t < batches; ++t) {
    int64_t rem = t, oa = 0, ob = 0;
    for (size_t i = rank; i-- > 0;) {
      const int64_t idx = rem % os[i];
      rem /= os[i];
      oa += idx * sa[i];
      ob += idx * sb[i];
    }
    float* ct = c + t * m * nn;
    if (k == 0) {
      std::fill(ct, ct + m * nn, 0.f);
    } else if (m > 0 && nn > 0) {
      kn::gemm().f32.gemm(false, false, m, nn, k, 1.f, a + oa, k, b + ob, nn, 0.f, ct, nn);
    }
  }
}

void conv2d(const Node& n, const Shape& xs, const Shape& ws, const Shape& ys, const float* x, const float* w,
            const float* bias, float* y) {
  const Attrs& a = n.attrs;
  kn::ConvGeom g = conv_weight_geom(a, ws);
  g.n = xs[0];
  g.h = xs[2];
  g.w = xs[3];
  g.oh = ys[2];
  g.ow = ys[3];
  if (numel_of(ys) == 0) return;
  // (false when x holds an inf or NaN: the exact paths below then overwrite y)
  if (n.winograd_weight && kn::winograd().conv2d_transformed_f32(x, n.winograd_weight, bias, y, g, static_cast<int>(a.act)))
    return;
  kn::conv().f32.conv2d(x, w, bias, y, g, static_cast<int>(a.act));
}

// Transposed convolution: per image and group, col = W_g^T x_g (GEMM), then col2im adds the
// columns into the output.
void conv_transpose2d(const Node& n, const Shape& xs, const Shape& ws, const Shape& ys, const float* x,
                      const float* w, const float* bias, float* y, float* col) {
  const Attrs& a = n.attrs;
  const int64_t N = xs[0], G = a.groups, cg = xs[1] / G, H = xs[2], W = xs[3];
  const int64_t og = ws[1], kh = ws[2], kw = ws[3], OH = ys[2], OW = ys[3];
  const int64_t rows = og * kh * kw, hw = H * W, ohw = OH * OW;
  std::fill(y, y + numel_of(ys), 0.f);
  kn::Im2colGeom geo{og, OH, OW, kh, kw, H, W, a.stride[0], a.stride[1], a.padding[0], a.padding[2],
                     a.dilation[0], a.dilation[1]};
  for (int64_t i = 0; i < N; ++i)
    for (int64_t g = 0; g < G; ++g) {
      const float* xg = x + (i * G * cg + g * cg) * hw;
      const float* wg = w + g * cg * rows;
      float* yg = y + (i * G * og + g * og) * ohw;
      if (cg > 0 && hw > 0 && rows > 0) {
        kn::gemm().f32.gemm(true, false, rows, hw, cg, 1.f, wg, rows, xg, hw, 0.f, col, hw);
        kn::conv().f32.col2im(col, geo, yg);
      }
    }
  if (bias)
    for (int64_t i = 0; i < N * G * og; ++i) {
      const float b = bias[i % (G * og)];
      float* p = y + i * ohw;
      for (int64_t j = 0; j < ohw; ++j) p[j] += b;
    }
}

void pool(const Node& n, const Shape& xs, const Shape& ys, const float* x, float* y) {
  const Attrs& a = n.attrs;
  kn::PoolGeometry g;
  g.h = xs[xs.size() - 2];
  g.w = xs.back();
  g.oh = ys[ys.size() - 2];
  g.ow = ys.back();
  g.kh = a.kernel[0];
  g.kw = a.kernel[1];
  g.sh = a.stride[0];
  g.sw = a.stride[1];
  g.ph = a.padding[0];
  g.pw = a.padding[2];
  g.dh = a.dilation[0];
  g.dw = a.dilation[1];
  g.count_include_pad = a.count_include_pad;
  g.divisor_override = a.divisor_override;
  const int64_t planes = prod(xs, 0, xs.size() - 2), in_n = g.h * g.w, out_n = g.oh * g.ow;
  const auto& k = kn::pool().f32;
  nc::parallel_for(0, planes, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, in_n)), [&](int64_t b, int64_t e) {
    if (n.op == Op::MaxPool2d) k.max_forward(x + b * in_n, y + b * out_n, nullptr, nullptr, e - b, g);
    else if (n.op == Op::AvgPool2d) k.avg_forward(x + b * in_n, y + b * out_n, e - b, g);
    else k.adaptive_forward(x + b * in_n, y + b * out_n, e - b, g);
  });
}

void batch_norm(const Node& n, const Shape& xs, const std::vector<const float*>& in, float* y, float* work) {
  const int64_t N = xs[0], C = xs[1], S = prod(xs, 2, xs.size());
  size_t next = 3;
  const float* gamma = n.attrs.has_weight ? in[next++] : nullptr;
  const float* beta = n.attrs.has_bias ? in[next++] : nullptr;
  float* a = work;  // per channel: y = x * a + b
  float* b = work + C;
  for (int64_t c = 0; c < C; ++c) {
    const double invstd = 1.0 / std::sqrt(static_cast<double>(in[2][c]) + n.attrs.eps);
    const double scale = (gamma ? gamma[c] : 1.0) * invstd;
    a[static_cast<size_t>(c)] = static_cast<float>(scale);
    b[static_cast<size_t>(c)] = static_cast<float>((beta ? beta[c] : 0.0) - in[1][c] * scale);
  }
  const float* x = in[0];
  nc::parallel_for(0, N * C, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, S)), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const int64_t c = r % C;
      if (S == 1) y[r] = x[r] * a[c] + b[c];
      else kn::norm_ops<float>().axpb(x + r * S, y + r * S, S, a[c], b[c]);
    }
  });
}

void layer_norm(const Node& n, const Shape& xs, const std::vector<const float*>& in, float* y) {
  const int64_t D = numel_of(n.attrs.normalized_shape), R = D ? numel_of(xs) / D : 0;
  const float* w = n.attrs.has_weight ? in[1] : nullptr;
  const float* b = n.attrs.has_bias ? in[n.attrs.has_weight ? 2 : 1] : nullptr;
  const auto& ops = kn::norm_ops<float>();
  nc::parallel_for(0, R, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, D)), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const float* xr = in[0] + r * D;
      const double m = ops.sum(xr, D) / D;
      const double v = ops.sqdev(xr, D, m);
      const double is = 1.0 / std::sqrt(v / D + n.attrs.eps);
      ops.ln_forward(xr, w, b, y + r * D, D, static_cast<float>(m), static_cast<float>(is));
    }
  });
}

void softmax(const Node& n, const Shape& xs, const float* x, float* y, float* work) {
  const bool log = n.op == Op::LogSoftmax;
  const size_t d = static_cast<size_t>(n.attrs.dim);
  const int64_t L = xs[d], outer = prod(xs, 0, d), inner = prod(xs, d + 1, xs.size());
  const auto rows = [&](const float* src, float* dst, int64_t count) {
    nc::parallel_for(0, count, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, L)), [&](int64_t b, int64_t e) {
      kn::softmax().f32.rows(src + b * L, dst + b * L, e - b, L, log);
    });
  };
  if (L == 0) return;
  if (inner == 1) {
    rows(x, y, outer);
    return;
  }
  // Move the softmax dim last, run rows, move it back.
  float* t = work;
  float* u = work + outer * inner * L;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t l = 0; l < L; ++l)
      for (int64_t i = 0; i < inner; ++i) t[(o * inner + i) * L + l] = x[(o * L + l) * inner + i];
  rows(t, u, outer * inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t l = 0; l < L; ++l)
      for (int64_t i = 0; i < inner; ++i) y[(o * L + l) * inner + i] = u[(o * inner + i) * L + l];
}

kn::BinaryOp binary_op(Op op) {
  switch (op) {
    case Op::Add: return kn::BinaryOp::Add;
    case Op::Sub: return kn::BinaryOp::Sub;
    case Op::Mul: return kn::BinaryOp::Mul;
    default: return kn::BinaryOp::Div;
  }
}

void binary(const Node& n, const Shape& as, const Shape* bs, const Shape& os, const float* a, const float* b,
            float* y) {
  const auto& k = kn::elementwise().f32;
  const kn::BinaryOp op = binary_op(n.op);
  const int64_t total = numel_of(os);
  if (!bs) {
    const float s = n.attrs.scalar;
    elementwise(total, [&](int64_t off, int64_t len) {
      if (n.attrs.reverse) k.binary(op, &s, 0, a + off, 1, y + off, len);
      else k.binary(op, a + off, 1, &s, 0, y + off, len);
    });
    return;
  }
  if (as == os && *bs == os) {
    elementwise(total, [&](int64_t off, int64_t len) { k.binary(op, a + off, 1, b + off, 1, y + off, len); });
    return;
  }
  if (os.empty()) {
    k.binary(op, a, 1, b, 1, y, 1);
    return;
  }
  // General broadcast: per output row (last dim), each operand is a dense row or one repeated value.
  const size_t r = os.size();
  auto bstrides = [&](const Shape& s) {
    Dims st{};
    const Dims dense = strides_of(s);
    for (size_t i = 0; i < s.size(); ++i) {
      const size_t o = i + (r - s.size());
      st[o] = s[i] == 1 ? 0 : dense[i];
    }
    return st;
  };
  const auto sa = bstrides(as), sb = bstrides(*bs);
  const int64_t cols = r ? os.back() : 1, rows = cols ? total / cols : 0;
  const int64_t ia = r ? sa[r - 1] : 0, ib = r ? sb[r - 1] : 0;
  nc::parallel_for(0, rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, cols)), [&](int64_t rb, int64_t re) {
    for (int64_t row = rb; row < re; ++row) {
      int64_t rem = row, oa = 0, ob = 0;
      for (size_t i = r - 1; i-- > 0;) {
        const int64_t idx = rem % os[i];
        rem /= os[i];
        oa += idx * sa[i];
        ob += idx * sb[i];
      }
      k.binary(op, a + oa, ia, b + ob, ib, y + row * cols, cols);
    }
  });
}

void unary(const Node& n, const float* x, float* y, int64_t total) {
  const Attrs& a = n.attrs;
  auto act = [&](kn::Activation kind) {
    elementwise(total, [&](int64_t off, int64_t len) { kn::activation().f32[kind].forward(x + off, y + off, len, a.p0, a.p1); });
  };
  switch (n.op) {
    case Op::Relu:
      elementwise(total, [&](int64_t off, int64_t len) { kn::elementwise().f32.relu(x + off, y + off, len); });
      break;
    case Op::Sigmoid:
      elementwise(total, [&](int64_t off, int64_t len) { kn::vecmath().f32.sigmoid(x + off, y + off, len); });
      break;
    case Op::Tanh:
      elementwise(total, [&](int64_t off, int64_t len) { kn::vecmath().f32.tanh(x + off, y + off, len); });
      break;
    case Op::Gelu: act(kn::Activation::Gelu); break;
    case Op::GeluTanh: act(kn::Activation::GeluTanh); break;
    case Op::Silu: act(kn::Activation::Silu); break;
    case Op::Mish: act(kn::Activation::Mish); break;
    case Op::Elu: act(kn::Activation::Elu); break;
    case Op::LeakyRelu: act(kn::Activation::LeakyRelu); break;
    case Op::Softplus: act(kn::Activation::Softplus); break;
    case Op::Hardtanh: act(kn::Activation::Hardtanh); break;
    default: throw Error(std::string("[runtime] internal: not a unary op: ") + op_name(n.op));
  }
}

void permute(const Node& n, const Shape& xs, const Shape& ys, const float* x, float* y) {
  const size_t r = xs.size();
  if (r == 0) {
    y[0] = x[0];
    return;
  }
  const Dims xst = strides_of(xs);
  Dims st{};  // input stride of each output dim
  for (size_t i = 0; i < r; ++i) st[i] = xst[static_cast<size_t>(n.attrs.dims[i])];
  const int64_t total = numel_of(ys), cols = r ? ys.back() : 1, rows = cols ? total / cols : 0;
  const int64_t inner = r ? st[r - 1] : 0;
  for (int64_t row = 0; row < rows; ++row) {
    int64_t rem = row, off = 0;
    for (size_t i = r - 1; i-- > 0;) {
      off += (rem % ys[i]) * st[i];
      rem /= ys[i];
    }
    float* out = y + row * cols;
    for (int64_t j = 0; j < cols; ++j) out[j] = x[off + j * inner];
  }
}

void cat(const Node& n, const std::vector<Shape>& shapes, const std::vector<const float*>& in, const Shape& ys,
         float* y) {
  const size_t d = static_cast<size_t>(n.attrs.dim);
  const int64_t outer = prod(ys, 0, d), inner = prod(ys, d + 1, ys.size()), out_row = ys[d] * inner;
  int64_t at = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const int64_t chunk = shapes[static_cast<size_t>(n.inputs[i])][d] * inner;
    for (int64_t o = 0; o < outer; ++o) std::memcpy(y + o * out_row + at, in[i] + o * chunk, sizeof(float) * chunk);
    at += chunk;
  }
}

void reduce(const Node& n, const Shape& xs, const float* x, float* y) {
  const size_t r = xs.size();
  std::array<bool, kMaxRank> red{};
  for (int64_t d : n.attrs.dims) red[static_cast<size_t>(d)] = true;
  const Dims st = strides_of(xs);
  Dims kept{}, kept_st{}, rdims{}, rst{};
  size_t nk = 0, nr = 0;
  int64_t nout = 1, nred = 1;
  for (size_t i = 0; i < r; ++i) {
    if (red[i]) {
      rdims[nr] = xs[i];
      rst[nr++] = st[i];
      nred *= xs[i];
    } else {
      kept[nk] = xs[i];
      kept_st[nk++] = st[i];
      nout *= xs[i];
    }
  }
  for (int64_t o = 0; o < nout; ++o) {
    int64_t rem = o, base = 0;
    for (size_t i = nk; i-- > 0;) {
      base += (rem % kept[i]) * kept_st[i];
      rem /= kept[i];
    }
    double acc = 0;
    for (int64_t t = 0; t < nred; ++t) {
      int64_t rr = t, off = base;
      for (size_t i = nr; i-- > 0;) {
        off += (rr % rdims[i]) * rst[i];
        rr /= rdims[i];
      }
      acc += x[off];
    }
    y[o] = static_cast<float>(n.op == Op::Mean ? (nred ? acc / nred : NAN) : acc);
  }
}

int64_t padded(int64_t n) { return (n + 15) / 16 * 16; }

// rnn on a padded batch: x is (steps * B, I), step t its rows [t * B, (t + 1) * B). The weights
// were laid out at load (Node::rnn); the step table (int64) and the layer's scratch sit in the
// workspace.
[[noreturn]] void node_error(const Node& n, const std::string& msg) {
  throw Error(std::string("[") + op_name(n.op) + (n.module.empty() ? "" : " in module '" + n.module + "'") + "] " +
              msg);
}

// Per-sample lengths of a packed sequence (floats holding integers), each checked to be an
// integer in [1, steps]; returns the longest.
int64_t check_lengths(const Node& n, const float* lengths, int64_t B, int64_t steps) {
  int64_t longest = 0;
  for (int64_t b = 0; b < B; ++b) {
    const float f = lengths[b];
    if (!(f >= 1 && f <= static_cast<float>(steps)) || f != std::floor(f))
      node_error(n, "length " + std::to_string(f) + " of sample " + std::to_string(b) +
                        " is not an integer in [1, " + std::to_string(steps) + "] (the padded batch has " +
                        std::to_string(steps) + " steps)");
    longest = std::max(longest, static_cast<int64_t>(f));
  }
  return longest;
}

// pack: the padded batch as the time-major grid, in the caller's batch order, rows past each
// sample's length zero.
void pack(const Node& n, const Shape& xs, const float* x, const float* lengths, float* y) {
  const bool bf = n.attrs.batch_first;
  const int64_t T = bf ? xs[1] : xs[0], B = bf ? xs[0] : xs[1], F = xs[2];
  check_lengths(n, lengths, B, T);
  for (int64_t b = 1; n.attrs.enforce_sorted && b < B; ++b)
    if (lengths[b] > lengths[b - 1])
      node_error(n, "`lengths` array must be sorted in decreasing order when `enforce_sorted` is True");
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b) {
      float* dst = y + (t * B + b) * F;
      if (t < static_cast<int64_t>(lengths[b])) std::memcpy(dst, x + (bf ? b * T + t : t * B + b) * F, sizeof(float) * F);
      else std::memset(dst, 0, sizeof(float) * F);
    }
}

// unpack (pad_packed_sequence): the grid as a padded batch of total_length steps (0: the grid's,
// which the longest sample must fill, as eager returns max(lengths) steps).
void unpack(const Node& n, const Shape& gs, const Shape& ys, const float* grid, const float* lengths, float* y) {
  const bool bf = n.attrs.batch_first;
  const int64_t B = bf ? ys[0] : ys[1], Tout = bf ? ys[1] : ys[0], F = gs[1], Tin = gs[0] / B;
  const int64_t longest = check_lengths(n, lengths, B, Tin);
  if (n.attrs.total_length == 0 && longest != Tin)
    node_error(n, "the longest sequence has " + std::to_string(longest) + " steps but the padded batch has " +
                      std::to_string(Tin) + ": eager returns " + std::to_string(longest) +
                      " steps; pass total_length when exporting, or trim the batch to its longest sequence");
  if (longest > Tout)
    node_error(n, "Expected total_length to be at least the length of the longest sequence in input, but got "
                  "total_length=" + std::to_string(Tout) + " and max sequence length being " + std::to_string(longest));
  for (int64_t t = 0; t < Tout; ++t)
    for (int64_t b = 0; b < B; ++b) {
      float* dst = y + (bf ? b * Tout + t : t * B + b) * F;
      if (t < static_cast<int64_t>(lengths[b])) std::memcpy(dst, grid + (t * B + b) * F, sizeof(float) * F);
      else std::fill(dst, dst + F, n.attrs.scalar);
    }
}

// Sizes of a recurrent node: rows N, batch B, steps T (a packed grid's batch is its lengths').
struct RnnSizes {
  int64_t N, B, T;
};

RnnSizes rnn_sizes(const Node& n, const std::vector<Shape>& shapes) {
  const int64_t N = shapes[static_cast<size_t>(n.inputs[0])][0];
  const int64_t B = n.attrs.packed ? shapes[static_cast<size_t>(n.inputs[1])][0] : N / n.attrs.steps;
  return {N, B, n.attrs.packed ? N / B : n.attrs.steps};
}

// Workspace of a packed rnn, in order: int64 order, lengths (B each), batch sizes and first rows
// (T each); the sorted grid x (N, I) and y (N, P); sorted h0, c0, h_n, c_n; the layer's scratch.
int64_t rnn_workspace(const Node& n, const std::vector<Shape>& shapes) {
  if (!n.rnn) return 0;  // the load-time plan, before the weights are laid out
  const auto [N, B, T] = rnn_sizes(n, shapes);
  const nc::RnnWeights& w = *n.rnn;
  const int64_t layer = nc::rnn_infer_scratch(w, N, B);
  if (!n.attrs.packed) return padded(4 * T) + layer;
  return padded(4 * B + 4 * T) + padded(N * w.I) + padded(N * w.P) + 2 * padded(B * w.P) + 2 * padded(B * w.H) +
         layer;
}

// rnn over a packed sequence: the grid's valid rows gathered in the order of decreasing length
// (stable, as pack_padded_sequence sorts), run as PyTorch's packed batch, and scattered back.
void rnn_packed(const Plan& plan, const Node& n, const std::vector<const float*>& in, float* out,
                const std::vector<float*>& extra, float* work) {
  const Attrs& a = n.attrs;
  const nc::RnnWeights& w = *n.rnn;
  const auto [N, B, T] = rnn_sizes(n, plan.shapes);
  const float* lengths = in[1];
  const int64_t longest = check_lengths(n, lengths, B, T);
  auto* order = reinterpret_cast<int64_t*>(work);
  int64_t* len = order + B;
  int64_t* bs = len + B;
  int64_t* off = bs + T;
  for (int64_t b = 0; b < B; ++b) {  // insertion sort: stable, and allocates nothing
    len[b] = static_cast<int64_t>(lengths[b]);
    int64_t r = b;
    for (; r > 0 && len[order[r - 1]] < len[b]; --r) order[r] = order[r - 1];
    order[r] = b;
  }
  for (int64_t t = 0; t < longest; ++t) {
    int64_t count = 0;
    while (count < B && len[order[count]] > t) ++count;
    bs[t] = count;
    off[t] = t * B;
  }
  float* f = work + padded(4 * B + 4 * T);
  float* xs = f;
  float* ys = xs + padded(N * w.I);
  float* h0s = ys + padded(N * w.P);
  float* hns = h0s + padded(B * w.P);
  float* c0s = hns + padded(B * w.P);
  float* cns = c0s + padded(B * w.H);
  float* scratch = cns + padded(B * w.H);
  size_t i = 2;
  const float* h0 = a.has_h0 ? in[i++] : nullptr;
  const float* c0 = a.has_c0 ? in[i++] : nullptr;
  for (int64_t t = 0; t < longest; ++t)
    for (int64_t r = 0; r < B; ++r) {
      float* dst = xs + (t * B + r) * w.I;
      if (r < bs[t]) std::memcpy(dst, in[0] + (t * B + order[r]) * w.I, sizeof(float) * w.I);
      else std::memset(dst, 0, sizeof(float) * w.I);
    }
  for (int64_t r = 0; r < B; ++r) {
    if (h0) std::memcpy(h0s + r * w.P, h0 + order[r] * w.P, sizeof(float) * w.P);
    if (c0) std::memcpy(c0s + r * w.H, c0 + order[r] * w.H, sizeof(float) * w.H);
  }
  const bool lstm = a.mode == 2;
  nc::rnn_infer(w, a.reverse, longest, bs, off, longest * B, xs, h0 ? h0s : nullptr, c0 ? c0s : nullptr, ys, hns,
                lstm ? cns : nullptr, scratch);
  std::memset(out, 0, sizeof(float) * N * w.P);
  for (int64_t t = 0; t < longest; ++t)
    for (int64_t r = 0; r < bs[t]; ++r)
      std::memcpy(out + (t * B + order[r]) * w.P, ys + (t * B + r) * w.P, sizeof(float) * w.P);
  for (int64_t r = 0; r < B; ++r) {
    std::memcpy(extra[0] + order[r] * w.P, hns + r * w.P, sizeof(float) * w.P);
    if (lstm) std::memcpy(extra[1] + order[r] * w.H, cns + r * w.H, sizeof(float) * w.H);
  }
}

void rnn(const Plan& plan, const Node& n, const std::vector<const float*>& in, float* out,
         const std::vector<float*>& extra, float* work) {
  const Attrs& a = n.attrs;
  if (!n.rnn) throw Error("[runtime] internal: recurrent weights not prepared");
  if (a.packed) return rnn_packed(plan, n, in, out, extra, work);
  const int64_t N = plan.shapes[static_cast<size_t>(n.inputs[0])][0], T = a.steps, B = N / T;
  auto* steps = reinterpret_cast<int64_t*>(work);  // batch sizes, then first rows
  for (int64_t t = 0; t < T; ++t) {
    steps[t] = B;
    steps[T + t] = t * B;
  }
  size_t i = 1;
  const float* h0 = a.has_h0 ? in[i++] : nullptr;
  const float* c0 = a.has_c0 ? in[i++] : nullptr;
  nc::rnn_infer(*n.rnn, a.reverse, T, steps, steps + T, N, in[0], h0, c0, out, extra[0],
                a.mode == 2 ? extra[1] : nullptr, work + padded(4 * T));
}

// The fused attention's description for these shapes (validated by the planner): q (..., Hq, L, E),
// k (..., Hk, S, E), v (..., Hk, S, Ev), the mask broadcasting to (..., Hq, L, S).
nc::SdpaInfer attention_call(const Node& n, const std::vector<Shape>& shapes) {
  auto shape = [&](size_t i) -> const Shape& { return shapes[static_cast<size_t>(n.inputs[i])]; };
  const Shape &q = shape(0), &k = shape(1), &v = shape(2);
  const size_t nd = q.size();
  nc::SdpaInfer c;
  c.nlead = static_cast<int>(nd - 2);
  for (size_t d = 0; d + 2 < nd; ++d) c.lead[d] = q[d];
  c.group = n.attrs.gqa && nd >= 3 && k[nd - 3] > 0 ? q[nd - 3] / k[nd - 3] : 1;
  c.L = q[nd - 2];
  c.E = q[nd - 1];
  c.S = k[nd - 2];
  c.Ev = v[nd - 1];
  c.scale = n.attrs.attn_scale;
  c.causal = n.attrs.causal;
  if (n.attrs.has_mask) {
    const Shape& m = shape(3);
    c.mask_kind = n.attrs.mask_bool ? nc::kernels::AttnMask::Bool : nc::kernels::AttnMask::Additive;
    int64_t st[16] = {}, stride = 1;
    for (size_t d = m.size(); d-- > 0;) {  // the mask's dims sit at the right of the target's
      st[nd - m.size() + d] = m[d] == 1 ? 0 : stride;
      stride *= m[d];
    }
    for (size_t d = 0; d + 2 < nd; ++d) c.mask_lead[d] = st[d];
    c.m_rs = st[nd - 2];
    c.m_cs = st[nd - 1];
  }
  return c;
}

int64_t attention_workspace(const Node& n, const std::vector<Shape>& shapes) {
  const int64_t mask_bytes = n.attrs.mask_bool ? numel_of(shapes[static_cast<size_t>(n.inputs[3])]) : 0;
  return nc::sdpa_infer_scratch(attention_call(n, shapes)) + padded((mask_bytes + 3) / 4);
}

void attention(const Plan& plan, const Node& n, const std::vector<const float*>& in, float* out, float* work) {
  nc::SdpaInfer c = attention_call(n, plan.shapes);
  if (n.attrs.mask_bool) {  // 0/1 floats to the kernel's bool bytes, after its own scratch
    auto* bytes = reinterpret_cast<uint8_t*>(work + nc::sdpa_infer_scratch(c));
    const int64_t count = numel_of(plan.shapes[static_cast<size_t>(n.inputs[3])]);
    for (int64_t i = 0; i < count; ++i) bytes[i] = in[3][i] != 0.f;
    c.mask = bytes;
  } else if (n.attrs.has_mask) {
    c.mask = in[3];
  }
  nc::sdpa_infer(c, in[0], in[1], in[2], out, work);
}

// where: y = cond != 0 ? a : b, each operand broadcast to the output (element offsets walked
// along the output's index, strides 0 on broadcast dims).
void where(const std::array<const Shape*, 3>& shapes, const Shape& ys, const std::vector<const float*>& in, float* y) {
  const size_t r = ys.size();
  const int64_t total = numel_of(ys);
  if (total == 0) return;
  std::array<Dims, 3> st{};
  for (size_t k = 0; k < 3; ++k) {
    const Shape& s = *shapes[k];
    const Dims dense = strides_of(s);
    for (size_t i = 0; i < s.size(); ++i) st[k][i + (r - s.size())] = s[i] == 1 ? 0 : dense[i];
  }
  Dims idx{};
  int64_t off[3] = {0, 0, 0};
  for (int64_t e = 0; e < total; ++e) {
    y[e] = in[0][off[0]] != 0.f ? in[1][off[1]] : in[2][off[2]];
    for (size_t i = r; i-- > 0;) {  // next output index, odometer style
      for (size_t k = 0; k < 3; ++k) off[k] += st[k][i];
      if (++idx[i] < ys[i]) break;
      for (size_t k = 0; k < 3; ++k) off[k] -= st[k][i] * ys[i];
      idx[i] = 0;
    }
  }
}

// Rows of the table picked by indices held as floats (exact integers below 2^24).
void embedding(const Node& n, const Shape& ws, const Shape& is, const float* w, const float* idx, float* y) {
  const int64_t rows = ws[0], dim = ws[1], count = numel_of(is);
  for (int64_t i = 0; i < count; ++i) {
    const float f = idx[i];
    if (!(f >= 0 && f < static_cast<float>(rows)) || f != std::floor(f))
      throw Error(std::string("[embedding") + (n.module.empty() ? "" : " in module '" + n.module + "'") + "] index " +
                  std::to_string(f) + " at position " + std::to_string(i) + " is not an integer in [0, " +
                  std::to_string(rows) + ") (indices shape " + shape_str(is) + ")");
    std::memcpy(y + i * dim, w + static_cast<int64_t>(f) * dim, sizeof(float) * static_cast<size_t>(dim));
  }
}

void rms_norm(const Node& n, const Shape& xs, const std::vector<const float*>& in, float* y) {
  const int64_t D = numel_of(n.attrs.normalized_shape), R = D ? numel_of(xs) / D : 0;
  const float* w = n.attrs.has_weight ? in[1] : nullptr;
  const auto& ops = kn::norm_ops<float>();
  nc::parallel_for(0, R, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, D)), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const float* xr = in[0] + r * D;
      const double is = 1.0 / std::sqrt(ops.sqdev(xr, D, 0.0) / D + n.attrs.eps);
      ops.ln_forward(xr, w, nullptr, y + r * D, D, 0.f, static_cast<float>(is));
    }
  });
}

// Broadcast copy: size-1 (or missing leading) dims of x repeat along the output.
void expand(const Shape& xs, const Shape& ys, const float* x, float* y) {
  const size_t r = ys.size();
  const Dims xst = strides_of(xs);
  Dims st{};
  for (size_t d = 0; d < xs.size(); ++d) st[r - xs.size() + d] = xs[d] == 1 ? 0 : xst[d];
  const int64_t total = numel_of(ys);
  if (total == 0) return;
  if (r == 0) {
    y[0] = x[0];
    return;
  }
  const int64_t cols = ys.back(), rows = total / cols, inner = st[r - 1];
  for (int64_t row = 0; row < rows; ++row) {
    int64_t rem = row, off = 0;
    for (size_t i = r - 1; i-- > 0;) {
      off += (rem % ys[i]) * st[i];
      rem /= ys[i];
    }
    for (int64_t j = 0; j < cols; ++j) y[row * cols + j] = x[off + j * inner];
  }
}

// Basic indexing: each kept or indexed dim reads start + j * step.
void slice(const Node& n, const Shape& xs, const Shape& ys, const float* x, float* y) {
  const Attrs& a = n.attrs;
  const Dims xst = strides_of(xs);
  int64_t base = 0;
  Dims dims{}, st{};  // kept dims (output order without new axes) and their input strides
  size_t nd = 0;
  for (size_t d = 0; d < xs.size(); ++d) {
    const int64_t start = a.starts[d] < 0 ? a.starts[d] + xs[d] : a.starts[d];
    base += start * xst[d];
    if (a.keep[d]) {
      dims[nd] = a.lengths[d] < 0 ? xs[d] : a.lengths[d];
      st[nd++] = a.slice_steps[d] * xst[d];
    }
  }
  const int64_t total = numel_of(ys);
  if (total == 0) return;
  if (nd == 0) {
    y[0] = x[base];
    return;
  }
  const int64_t cols = dims[nd - 1], rows = total / cols, inner = st[nd - 1];
  for (int64_t row = 0; row < rows; ++row) {
    int64_t rem = row, off = base;
    for (size_t i = nd - 1; i-- > 0;) {
      off += (rem % dims[i]) * st[i];
      rem /= dims[i];
    }
    float* o = y + row * cols;
    if (inner == 1) std::memcpy(o, x + off, sizeof(float) * static_cast<size_t>(cols));
    else for (int64_t j = 0; j < cols; ++j) o[j] = x[off + j * inner];
  }
}

}  // namespace

int64_t workspace_floats(const Node& n, const std::vector<Shape>& shapes) {
  if (n.inputs.empty()) return 0;
  const Shape& x = shapes[static_cast<size_t>(n.inputs[0])];
  if (n.op == Op::ConvTranspose2d) {
    const Shape& w = shapes[static_cast<size_t>(n.inputs[1])];
    return w[1] * w[2] * w[3] * x[2] * x[3];
  }
  if ((n.op == Op::Softmax || n.op == Op::LogSoftmax) && static_cast<size_t>(n.attrs.dim) + 1 != x.size())
    return 2 * numel_of(x);
  if (n.op == Op::BatchNorm) return 2 * x[1];
  if (n.op == Op::Rnn) return rnn_workspace(n, shapes);
  if (n.op == Op::Attention) return attention_workspace(n, shapes);
  return 0;
}

void execute(const Plan& plan, const Node& n, const std::vector<const float*>& in, float* out,
             const std::vector<float*>& extra, float* work) {
  auto shape = [&](size_t i) -> const Shape& { return plan.shapes[static_cast<size_t>(n.inputs[i])]; };
  const Shape& ys = plan.shapes[static_cast<size_t>(n.output)];
  const float* bias = in.size() > 2 ? in[2] : nullptr;
  switch (n.op) {
    case Op::Linear: linear(n, shape(0), shape(1), in[0], in[1], bias, out); break;
    case Op::Matmul: matmul(shape(0), shape(1), ys, in[0], in[1], out); break;
    case Op::Conv2d: conv2d(n, shape(0), shape(1), ys, in[0], in[1], bias, out); break;
    case Op::ConvTranspose2d: conv_transpose2d(n, shape(0), shape(1), ys, in[0], in[1], bias, out, work); break;
    case Op::MaxPool2d:
    case Op::AvgPool2d:
    case Op::AdaptiveAvgPool2d: pool(n, shape(0), ys, in[0], out); break;
    case Op::BatchNorm: batch_norm(n, shape(0), in, out, work); break;
    case Op::LayerNorm: layer_norm(n, shape(0), in, out); break;
    case Op::Softmax:
    case Op::LogSoftmax: softmax(n, shape(0), in[0], out, work); break;
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Div: binary(n, shape(0), in.size() > 1 ? &shape(1) : nullptr, ys, in[0], in.size() > 1 ? in[1] : nullptr, out); break;
    case Op::Reshape: break;  // shares its input's memory
    case Op::Permute: permute(n, shape(0), ys, in[0], out); break;
    case Op::Cat: {
      cat(n, plan.shapes, in, ys, out);
      break;
    }
    case Op::Mean:
    case Op::Sum: reduce(n, shape(0), in[0], out); break;
    case Op::Rnn: rnn(plan, n, in, out, extra, work); break;
    case Op::Attention: attention(plan, n, in, out, work); break;
    case Op::Embedding: embedding(n, shape(0), shape(1), in[0], in[1], out); break;
    case Op::RmsNorm: rms_norm(n, shape(0), in, out); break;
    case Op::Slice: slice(n, shape(0), ys, in[0], out); break;
    case Op::Full: std::fill(out, out + numel_of(ys), n.attrs.scalar); break;
    case Op::Expand: expand(shape(0), ys, in[0], out); break;
    case Op::Where: where({&shape(0), &shape(1), &shape(2)}, ys, in, out); break;
    case Op::Pack: pack(n, shape(0), in[0], in[1], out); break;
    case Op::Unpack: unpack(n, shape(0), ys, in[0], in[1], out); break;
    default: unary(n, in[0], out, numel_of(ys)); break;
  }
}

}  // namespace neurocore::detail
