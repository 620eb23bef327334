// conv2d forward and backward on the kernels of kernels/conv.h, none of which builds a column
// matrix. The forward runs on the conv2d kernel (direct for few taps per output, implicit GEMM
// otherwise). The input gradient is split by the phase of the input positions modulo the stride,
// each phase a stride-1 convolution of gy with a subset of the flipped weights on that same
// kernel (conv_input_grad_phases), or for float32 Winograd layers whose output takes fewer tiles
// than that convolution, the Winograd forward's adjoint (kernels::conv_winograd, per fixed run of
// images). The weight gradient reads x and gy straight for direct-path
// layers with <= 3 output channels per group, i.e. depthwise ones (kernels::conv_weight_grad_direct),
// runs Winograd's adjoint transforms for float32 Winograd layers (kernels::conv_winograd; on the
// transform of x that the forward keeps when the weight needs a gradient), and
// otherwise gathers the column panels from x into the GEMM micro-kernel's layout
// (conv2d_weight_grad_implicit); each way it is summed over a fixed number of batch chunks,
// combined in chunk order, so the result does not depend on the thread count.
#include "ops/conv.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/autograd.h"
#include "core/derived_copy.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"
#include "kernels/conv.h"
#include "kernels/conv_winograd.h"
#include "ops/activation.h"
#include "ops/copy.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace nc {
namespace {

constexpr int64_t kWeightGradChunks = 8;  // fixed, so sums are the same on any thread count
constexpr int64_t kScatterGrain = 1 << 15;  // elements per chunk of the input gradient's phase copies

struct Geom {
  int64_t n, c, h, w;     // input
  int64_t oc, kh, kw;     // weight
  int64_t oh, ow;         // output
  int64_t cg, og;         // channels per group: in, out
  int64_t ck() const { return cg * kh * kw; }
};

int64_t out_size(int64_t in, int64_t pa, int64_t pb, int64_t d, int64_t k, int64_t s) {
  return (in + pa + pb - d * (k - 1) - 1) / s + 1;
}

Geom check_conv(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p, const std::string& op) {
  const char* o = op.c_str();
  NC_CHECK(is_floating(x.dtype()) && x.dtype() == w.dtype(), TypeError, "[", o,
           "] expected input and weight of one float dtype, got ", dtype_name(x.dtype()), " and ",
           dtype_name(w.dtype()));
  NC_CHECK(x.dim() == 4, RuntimeError, "[", o, "] expected a 4-D input (N, C, H, W), got shape ",
           shape_str(x.shape()));
  NC_CHECK(w.dim() == 4, RuntimeError, "[", o, "] expected a 4-D weight (out, in/groups, kh, kw), got shape ",
           shape_str(w.shape()));
  NC_CHECK(p.groups >= 1, RuntimeError, "[", o, "] groups must be positive, got ", p.groups);
  NC_CHECK(p.sh >= 1 && p.sw >= 1, RuntimeError, "[", o, "] stride must be positive, got (", p.sh, ", ", p.sw, ")");
  NC_CHECK(p.dh >= 1 && p.dw >= 1, RuntimeError, "[", o, "] dilation must be positive, got (", p.dh, ", ", p.dw,
           ")");
  NC_CHECK(p.pt >= 0 && p.pb >= 0 && p.pl >= 0 && p.pr >= 0, RuntimeError, "[", o, "] padding must be non-negative");
  Geom g;
  g.n = x.shape()[0], g.c = x.shape()[1], g.h = x.shape()[2], g.w = x.shape()[3];
  g.oc = w.shape()[0], g.kh = w.shape()[2], g.kw = w.shape()[3];
  NC_CHECK(g.oc % p.groups == 0, RuntimeError, "[", o, "] out_channels ", g.oc, " is not divisible by groups ",
           p.groups, " (weight shape ", shape_str(w.shape()), ")");
  NC_CHECK(g.c == w.shape()[1] * p.groups, RuntimeError, "[", o, "] expected input with ", w.shape()[1] * p.groups,
           " channels, got ", g.c, " (input shape ", shape_str(x.shape()), ", weight shape ", shape_str(w.shape()),
           ", groups=", p.groups, ")");
  const int64_t eh = p.dh * (g.kh - 1) + 1, ew = p.dw * (g.kw - 1) + 1;
  const int64_t ph = g.h + p.pt + p.pb, pw = g.w + p.pl + p.pr;
  NC_CHECK(eh <= ph && ew <= pw, RuntimeError, "[", o, "] kernel size (", eh, " x ", ew,
           ", with dilation) is larger than the padded input (", ph, " x ", pw, "); input shape ",
           shape_str(x.shape()), ", weight shape ", shape_str(w.shape()));
  g.oh = out_size(g.h, p.pt, p.pb, p.dh, g.kh, p.sh);
  g.ow = out_size(g.w, p.pl, p.pr, p.dw, g.kw, p.sw);
  g.cg = w.shape()[1];
  g.og = g.oc / p.groups;
  if (b.defined()) {
    NC_CHECK(b.dtype() == x.dtype(), TypeError, "[", o, "] bias dtype ", dtype_name(b.dtype()),
             " doesn't match input dtype ", dtype_name(x.dtype()));
    NC_CHECK(b.dim() == 1 && b.shape()[0] == g.oc, RuntimeError, "[", o, "] expected bias of shape (", g.oc,
             ",), got ", shape_str(b.shape()));
  }
  return g;
}

kernels::ConvGeom kernel_geom(const Geom& g, const Conv2dParams& p) {
  return {g.n, p.groups, g.cg, g.h, g.w, g.og, g.kh, g.kw, g.oh, g.ow, p.sh, p.sw, p.pt, p.pl, p.dh, p.dw};
}

template <class T>
void conv_forward_raw(const T* x, const T* w, const T* b, T* y, const Geom& g, const Conv2dParams& p, int act) {
  kernels::conv_fns<T>().conv2d(x, w, b, y, kernel_geom(g, p), act);
}

// The forward of a Winograd layer whose weight is not being trained (eval, no_grad, frozen) from
// the weight's transform kept on its storage (core/derived_copy.h): at batch 1 the transform is
// about half of the layer's time. False when the geometry is not Winograd's, the weight may not
// be cached or holds an inf or NaN, or x does (the caller then runs the kernel's conv2d).
bool conv_forward_cached(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, const Geom& g,
                         const Conv2dParams& p, int act) {
  const kernels::ConvGeom kg = kernel_geom(g, p);
  if (x.dtype() != DType::Float32 || !kernels::conv_winograd(kg) || !may_derive(w)) return false;
  const auto& wk = kernels::winograd();
  const auto u = derived_copy(w, &wk, static_cast<size_t>(wk.weights_elems(kg)) * sizeof(float), [&](void* data) {
    return wk.transform_weights(w.data<float>(), kg, static_cast<float*>(data));
  });
  return u && wk.conv2d_transformed_f32(x.data<float>(), static_cast<const float*>(u->data),
                                        b.defined() ? b.data<float>() : nullptr, y.data<float>(), kg, act);
}

// The forward of a float32 Winograd layer whose weight will get a gradient, keeping the kernel's
// transform of x (kernels::winograd().conv2d_keeping_input_f32) for the weight gradient, which
// would otherwise make it again: about 2.3 floats per value of x, held until the backward. Measured
// on Zen 5 (1 thread, CPU time, min of 6 alternating processes, forward with history + backward,
// ms): Keras CNN conv2 (batch 32, 32->64, 13x13) 0.782 -> 0.735, SimpleCNN conv2 (batch 64, 32->64,
// 16x16) 2.636 -> 2.455, batch 32 64->32 on 11x11 with padding 2: 1.210 -> 1.079; the
// forward's stores into the kept buffer cost no more than the noise. An undefined tensor (y not
// written) where the layer takes another path or x or w holds an inf or NaN (the caller then runs
// the kernel's conv2d).
Tensor conv_forward_keeping_input(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, const Geom& g,
                                  const Conv2dParams& p, int act) {
  const kernels::ConvGeom kg = kernel_geom(g, p);
  if (x.dtype() != DType::Float32 || !kernels::conv_winograd(kg)) return Tensor();
  const auto& wk = kernels::winograd();
  Tensor v = Tensor::empty({wk.input_transform_elems(kg)}, DType::Float32);
  const bool ok = wk.conv2d_keeping_input_f32(x.data<float>(), w.data<float>(), b.defined() ? b.data<float>() : nullptr,
                                              y.data<float>(), kg, act, v.data<float>());
  return ok ? v : Tensor();
}

// The input gradient without a column matrix. Split gx by the phase (a, b) = (iy mod sh,
// ix mod sw) of its positions: the taps (i, j) that reach a phase's positions are those with
// a + pt - i*dh and b + pl - j*dw divisible by the stride, an evenly spaced subset of the kernel
// (every sh/gcd(sh, dh)-th row), and on the phase's sub-grid (iy = a + sh*q) they read gy at
// oy = q + (a + pt - i*dh)/sh: a stride-1 convolution of gy with those taps flipped, in and out
// channels swapped, dilation dh/gcd(sh, dh) and padding chosen to line up (negative where a
// tap never reaches the first rows). Each phase runs on the conv2d forward kernel (direct for
// few taps, implicit GEMM otherwise) and, with a stride, is copied into its positions of gx.
// With stride 1 there is one phase, written straight into gx. Phases reached by no tap are zero.
struct Phase {
  int64_t first, count, step;  // taps first, first + step, ... (count of them)
  int64_t size, dil, pad;      // sub-grid size, dilation and padding of the phase's convolution
};

int64_t gcd(int64_t a, int64_t b) { return b == 0 ? a : gcd(b, a % b); }

Phase phase_of(int64_t a, int64_t in, int64_t k, int64_t s, int64_t pad, int64_t d) {
  Phase ph{0, 0, s / gcd(s, d), a < in ? (in - a + s - 1) / s : 0, d / gcd(s, d), 0};
  ph.first = -1;
  for (int64_t i = 0; i < k && ph.first < 0; ++i)
    if (((a + pad - i * d) % s + s) % s == 0) ph.first = i;
  if (ph.first < 0) return ph;
  ph.count = (k - 1 - ph.first) / ph.step + 1;
  const int64_t b0 = (a + pad - ph.first * d) / s;  // exact
  ph.pad = (ph.count - 1) * ph.dil - b0;
  return ph;
}

template <class T>
void conv_input_grad_phases(const T* gy, const T* w, T* gx, const Geom& g, const Conv2dParams& p) {
  const int64_t khw = g.kh * g.kw, hw = g.h * g.w, planes = g.n * g.c;
  const bool strided = p.sh > 1 || p.sw > 1;
  std::vector<Phase> rows(p.sh), cols(p.sw);
  for (int64_t a = 0; a < p.sh; ++a) rows[a] = phase_of(a, g.h, g.kh, p.sh, p.pt, p.dh);
  for (int64_t b = 0; b < p.sw; ++b) cols[b] = phase_of(b, g.w, g.kw, p.sw, p.pl, p.dw);
  // With a stride, every phase's sub-grids go into one buffer ([phase][plane][qh][qw]), then gx is
  // written row by row from them in one pass.
  std::vector<int64_t> at(static_cast<size_t>(p.sh * p.sw) + 1, 0);
  for (int64_t ph = 0; ph < p.sh * p.sw; ++ph)
    at[ph + 1] = at[ph] + planes * rows[ph / p.sw].size * cols[ph % p.sw].size;
  Tensor buf = strided ? Tensor::empty({at.back()}, dtype_of<T>()) : Tensor();
  std::vector<T> wf;
  for (int64_t a = 0; a < p.sh; ++a)
    for (int64_t b = 0; b < p.sw; ++b) {
      const Phase& ph = rows[a];
      const Phase& pw = cols[b];
      if (ph.size == 0 || pw.size == 0) continue;
      T* out = strided ? buf.data<T>() + at[a * p.sw + b] : gx;
      if (ph.count == 0 || pw.count == 0) {
        std::fill(out, out + planes * ph.size * pw.size, T(0));
        continue;
      }
      // wf (groups*cg, og, mh, mw): wf[gi*cg + c][o][u][v] = w[gi*og + o][c][tap row mh-1-u][tap col mw-1-v]
      const int64_t mh = ph.count, mw = pw.count;
      wf.resize(static_cast<size_t>(g.oc * g.cg * mh * mw));
      for (int64_t gi = 0; gi < p.groups; ++gi)
        for (int64_t o = 0; o < g.og; ++o)
          for (int64_t c = 0; c < g.cg; ++c) {
            const T* src = w + ((gi * g.og + o) * g.cg + c) * khw;
            T* dst = wf.data() + ((gi * g.cg + c) * g.og + o) * mh * mw;
            for (int64_t u = 0; u < mh; ++u)
              for (int64_t v = 0; v < mw; ++v)
                dst[u * mw + v] = src[(ph.first + (mh - 1 - u) * ph.step) * g.kw + pw.first + (mw - 1 - v) * pw.step];
          }
      const kernels::ConvGeom k{g.n, p.groups, g.og, g.oh, g.ow, g.cg, mh, mw, ph.size, pw.size,
                                1, 1, ph.pad, pw.pad, ph.dil, pw.dil};
      kernels::conv_fns<T>().conv2d(gy, wf.data(), nullptr, out, k, 0);
    }
  if (!strided) return;
  const T* src = buf.data<T>();
  parallel_for(0, planes, std::max<int64_t>(1, kScatterGrain / std::max<int64_t>(1, hw)), [&](int64_t c0, int64_t c1) {
    for (int64_t pl = c0; pl < c1; ++pl)
      for (int64_t iy = 0; iy < g.h; ++iy) {
        const int64_t a = iy % p.sh, qy = iy / p.sh;
        T* dst = gx + pl * hw + iy * g.w;
        for (int64_t b = 0; b < p.sw; ++b) {
          const int64_t qw = cols[b].size;
          const T* r = src + at[a * p.sw + b] + (pl * rows[a].size + qy) * qw;
          for (int64_t qx = 0; qx < qw; ++qx) dst[b + qx * p.sw] = r[qx];
        }
      }
  });
}

// The input gradient of a float32 Winograd layer: the forward's adjoint on the forward's tiles
// (kernels::winograd().input_grad_f32), per fixed run of images, each run where gy holds an inf or
// NaN on the phases' convolution instead. False (nothing written) when the geometry is not
// Winograd's, the kernel's forward on gy is the faster there, or w holds an inf or NaN.
bool winograd_input_grad(const float* gy, const float* w, float* gx, const Geom& g, const Conv2dParams& p) {
  const kernels::ConvGeom kg = kernel_geom(g, p);
  if (!kernels::conv_winograd(kg) || kernels::winograd().input_grad_images(kg) == 0) return false;
  const auto& wk = kernels::winograd();
  Tensor u = Tensor::empty({wk.input_grad_weights_elems(kg)}, DType::Float32);
  if (!wk.transform_weights_for_input_grad(w, kg, u.data<float>())) return false;
  const int64_t per = wk.input_grad_images(kg), runs = (g.n + per - 1) / per;
  std::vector<char> failed(static_cast<size_t>(runs), 0);
  parallel_for(0, runs, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      failed[r] = !wk.input_grad_f32(gy, u.data<float>(), gx, kg, r * per, std::min(g.n, (r + 1) * per));
  });
  for (int64_t r = 0; r < runs; ++r) {
    if (!failed[r]) continue;
    Geom gr = g;
    const int64_t n0 = r * per;
    gr.n = std::min(g.n, n0 + per) - n0;
    conv_input_grad_phases<float>(gy + n0 * g.oc * g.oh * g.ow, w, gx + n0 * g.c * g.h * g.w, gr, p);
  }
  return true;
}
bool winograd_input_grad(const double*, const double*, double*, const Geom&, const Conv2dParams&) { return false; }

template <class T>
void conv_input_grad_raw(const T* gy, const T* w, T* gx, const Geom& g, const Conv2dParams& p) {
  if (!winograd_input_grad(gy, w, gx, g, p)) conv_input_grad_phases(gy, w, gx, g, p);
}

// kernels::winograd().weight_grad_f32 for float; double has no Winograd path.
bool winograd_weight_grad(const float* x, const float* x_transform, const float* gy, float* gwt,
                          const kernels::ConvGeom& g, int64_t n0, int64_t n1, int64_t gi) {
  return kernels::winograd().weight_grad_f32(x, x_transform, gy, gwt, g, n0, n1, gi);
}
bool winograd_weight_grad(const double*, const double*, const double*, double*, const kernels::ConvGeom&, int64_t,
                          int64_t, int64_t) {
  return false;
}

// The weight gradient is accumulated transposed, gw_g^T (CK x og) += col (CK x L) @ gy_g^T (L x og):
// with CK as the GEMM's rows it takes the packed path, which beats the og-row orientation.
// x_transform: the Winograd forward's transform of x (float32 Winograd layers), or null.
template <class T>
void conv_weight_grad_raw(const T* x, const T* x_transform, const T* gy, T* gw, const Geom& g, const Conv2dParams& p) {
  const int64_t CK = g.ck(), wn = g.oc * CK;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(kWeightGradChunks, g.n));
  const int64_t per = (g.n + chunks - 1) / chunks;
  const kernels::ConvGeom kg = kernel_geom(g, p);
  if (kernels::conv_weight_grad_direct(kg)) {  // read straight from x and gy, per chunk of images
    // (The kernels overwrite every partial sum: a buffer from the tensor allocator's cache, not zeroed.)
    Tensor buf = Tensor::empty({chunks * wn}, dtype_of<T>());
    T* acc = buf.data<T>();
    parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t ch = c0; ch < c1; ++ch)
        kernels::conv_fns<T>().conv2d_weight_grad_direct(x, gy, acc + ch * wn, kg, std::min(g.n, ch * per),
                                                          std::min(g.n, (ch + 1) * per));
    });
    std::copy(acc, acc + wn, gw);
    for (int64_t ch = 1; ch < chunks; ++ch)
      for (int64_t i = 0; i < wn; ++i) gw[i] += acc[ch * wn + i];
    return;
  }
  Tensor buf = Tensor::empty({chunks * wn}, dtype_of<T>());
  T* acc_t = buf.data<T>();
  const int64_t units = chunks * p.groups, nt = get_num_threads();
  const auto implicit = [&](int64_t ch, int64_t gi, int64_t r0, int64_t r1) {
    kernels::conv_fns<T>().conv2d_weight_grad_implicit(x, gy, acc_t + ch * wn, kg, std::min(g.n, ch * per),
                                                       std::min(g.n, (ch + 1) * per), gi, r0, r1);
  };
  if (std::is_same_v<T, float> && kernels::conv_winograd(kg)) {
    // Per chunk of images and group, the Winograd weight gradient (float), or the implicit GEMM's
    // where x or gy holds an inf or NaN (the chunk's result then depends on its data only).
    parallel_for(0, units, 1, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t ch = u / p.groups, gi = u % p.groups;
        const int64_t n0 = std::min(g.n, ch * per), n1 = std::min(g.n, (ch + 1) * per);
        if (!winograd_weight_grad(x, x_transform, gy, acc_t + ch * wn, kg, n0, n1, gi)) implicit(ch, gi, 0, CK);
      }
    });
  } else {
    // Per chunk of images, gw^T ([group][CK][og]) from the implicit-GEMM kernel. A chunk's rows may
    // be split between threads (each row's sum is the same whatever its range), which keeps both
    // threads busy at small batches; the split follows the thread count, the results do not.
    const int64_t row_blocks = std::clamp<int64_t>((4 * nt + units - 1) / units, 1, std::max<int64_t>(1, CK / 24));
    const int64_t rows_per = ((CK + row_blocks - 1) / row_blocks + 11) / 12 * 12;  // whole 4-, 6- and 12-row panels
    parallel_for(0, units * row_blocks, 1, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t rb = u % row_blocks;
        implicit(u / (p.groups * row_blocks), (u / row_blocks) % p.groups, rb * rows_per,
                 std::min(CK, (rb + 1) * rows_per));
      }
    });
  }
  // Chunks are combined in order, then transposed into gw (og x CK per group).
  for (int64_t ch = 1; ch < chunks; ++ch) {
    const T* src = acc_t + ch * wn;
    for (int64_t i = 0; i < wn; ++i) acc_t[i] += src[i];
  }
  for (int64_t gi = 0; gi < p.groups; ++gi)
    for (int64_t k = 0; k < CK; ++k)
      for (int64_t o = 0; o < g.og; ++o) gw[(gi * g.og + o) * CK + k] = acc_t[(gi * CK + k) * g.og + o];
}

Geom geom_of(const Shape& xs, const Shape& ws, const Conv2dParams& p) {
  Geom g;
  g.n = xs[0], g.c = xs[1], g.h = xs[2], g.w = xs[3];
  g.oc = ws[0], g.kh = ws[2], g.kw = ws[3];
  g.oh = out_size(g.h, p.pt, p.pb, p.dh, g.kh, p.sh);
  g.ow = out_size(g.w, p.pl, p.pr, p.dw, g.kw, p.sw);
  g.cg = ws[1];
  g.og = g.oc / p.groups;
  return g;
}

}  // namespace

bool has_winograd_weight(const Tensor& weight) {
  return weight.defined() && find_derived(weight, &kernels::winograd(), weight.version()) != nullptr;
}

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const Conv2dParams& p, const std::string& op,
              bool relu) {
  const bool history = needs_history({x_in, w_in, b_in});
  if (relu && history) return nc::relu(conv2d(x_in, w_in, b_in, p, op));
  Geom g = check_conv(x_in, w_in, b_in, p, op);
  NC_CHECK(g.oh > 0 && g.ow > 0, RuntimeError, "[", op, "] output size is zero (", g.oh, " x ", g.ow,
           "); input shape ", shape_str(x_in.shape()), ", weight shape ", shape_str(w_in.shape()));
  Tensor out = Tensor::empty({g.n, g.oc, g.oh, g.ow}, x_in.dtype());
  Tensor x_transform;  // the Winograd forward's transform of x, kept for the weight gradient
  {
    Tensor x = contiguous(x_in), w = contiguous(w_in), b = b_in.defined() ? contiguous(b_in) : Tensor();
    // A weight with history changes every step: nothing to keep. (w is w_in when contiguous, so
    // the copy lives on the weight's own storage.) Its gradient will need the input's transform.
    const bool w_grad = needs_history({w_in});
    const bool cached = !w_grad && w.same(w_in) && conv_forward_cached(x, w, b, out, g, p, relu ? 1 : 0);
    if (w_grad) x_transform = conv_forward_keeping_input(x, w, b, out, g, p, relu ? 1 : 0);
    if (!cached && !x_transform.defined())
      dispatch_floating(x.dtype(), op.c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      conv_forward_raw<T>(x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr, out.data<T>(), g, p,
                          relu ? 1 : 0);
    });
  }
  if (history) {
    SavedTensor sx(x_in, false), sw(w_in, false);
    Shape xs = x_in.shape(), ws = w_in.shape();
    set_history(op, {x_in, w_in, b_in}, {out},
                [sx, sw, xs, ws, p, op, x_transform](const TensorList& gr, const std::vector<bool>& needs) {
                  TensorList r(3);
                  if (needs[0]) r[0] = conv2d_input_grad(gr[0], sw.unpack(op), xs, p);
                  if (needs[1]) r[1] = conv2d_weight_grad(sx.unpack(op), gr[0], ws, p, x_transform);
                  if (needs[2]) r[2] = conv2d_bias_grad(gr[0]);
                  return r;
                });
  }
  return out;
}

Tensor conv2d_bias_grad(const Tensor& gy_in) {
  if (needs_history({gy_in})) return sum(gy_in, {0, 2, 3}, false);  // differentiable (double backward)
  const Shape& s = gy_in.shape();
  Tensor gb = Tensor::empty({s[1]}, gy_in.dtype());
  Tensor gy = contiguous(gy_in);
  dispatch_floating(gy.dtype(), "conv2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t plane = s[2] * s[3];
    // Channels split between threads; each channel's sum is the same whoever computes it.
    parallel_for(0, s[1], std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, s[0] * plane)),
                 [&](int64_t c0, int64_t c1) {
                   kernels::conv_fns<T>().bias_grad(gy.data<T>(), s[0], s[1], plane, c0, c1, gb.data<T>());
                 });
  });
  return gb;
}

Tensor conv2d_input_grad(const Tensor& gy_in, const Tensor& w_in, const Shape& xs, const Conv2dParams& p) {
  Geom g = geom_of(xs, w_in.shape(), p);
  Tensor gx = Tensor::empty(xs, gy_in.dtype());
  {
    Tensor gy = contiguous(gy_in), w = contiguous(w_in);
    dispatch_floating(gy.dtype(), "conv2d_backward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      conv_input_grad_raw<T>(gy.data<T>(), w.data<T>(), gx.data<T>(), g, p);
    });
  }
  if (needs_history({gy_in, w_in})) {
    SavedTensor sgy(gy_in, false), sw(w_in, false);
    Shape ws = w_in.shape();
    set_history("conv2d_input_backward", {gy_in, w_in}, {gx},
                [sgy, sw, ws, p](const TensorList& gr, const std::vector<bool>& needs) {
                  TensorList r(2);
                  if (needs[0]) r[0] = conv2d(gr[0], sw.unpack("conv2d_input_backward"), Tensor(), p);
                  if (needs[1]) r[1] = conv2d_weight_grad(gr[0], sgy.unpack("conv2d_input_backward"), ws, p);
                  return r;
                });
  }
  return gx;
}

Tensor conv2d_weight_grad(const Tensor& x_in, const Tensor& gy_in, const Shape& ws, const Conv2dParams& p,
                          const Tensor& x_transform) {
  Geom g = geom_of(x_in.shape(), ws, p);
  Tensor gw = Tensor::empty(ws, gy_in.dtype());
  {
    Tensor x = contiguous(x_in), gy = contiguous(gy_in);
    dispatch_floating(gy.dtype(), "conv2d_backward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* xt = x_transform.defined() && x_transform.dtype() == dtype_of<T>() ? x_transform.data<T>() : nullptr;
      conv_weight_grad_raw<T>(x.data<T>(), xt, gy.data<T>(), gw.data<T>(), g, p);
    });
  }
  if (needs_history({x_in, gy_in})) {
    SavedTensor sx(x_in, false), sgy(gy_in, false);
    Shape xs = x_in.shape();
    set_history("conv2d_weight_backward", {x_in, gy_in}, {gw},
                [sx, sgy, xs, p](const TensorList& gr, const std::vector<bool>& needs) {
                  TensorList r(2);
                  if (needs[0]) r[0] = conv2d_input_grad(sgy.unpack("conv2d_weight_backward"), gr[0], xs, p);
                  if (needs[1]) r[1] = conv2d(sx.unpack("conv2d_weight_backward"), gr[0], Tensor(), p);
                  return r;
                });
  }
  return gw;
}

}  // namespace nc
