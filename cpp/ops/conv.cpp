// conv2d forward and backward on the kernels of kernels/conv.h. The forward and, with stride 1, the
// input gradient (a convolution of gy with the flipped weights) run on the conv2d kernel (direct
// for few taps per output, implicit GEMM otherwise). Other input gradients: per image, a GEMM into
// a column matrix and col2im. Weight gradient: read straight from x and gy for depthwise and
// <= 9-tap direct-path layers (kernels::conv_weight_grad_direct), otherwise im2col per image + GEMM; either way summed over a fixed number of batch chunks,
// combined in chunk order, so the result does not depend on the thread count.
#include "ops/conv.h"

#include <algorithm>
#include <vector>

#include "core/autograd.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"
#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "ops/activation.h"
#include "ops/copy.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace nc {
namespace {

constexpr int64_t kWeightGradChunks = 8;  // fixed, so sums are the same on any thread count

struct Geom {
  int64_t n, c, h, w;     // input
  int64_t oc, kh, kw;     // weight
  int64_t oh, ow;         // output
  int64_t cg, og;         // channels per group: in, out
  int64_t ck() const { return cg * kh * kw; }
  int64_t l() const { return oh * ow; }
  // 1x1, stride 1, no padding: the input plane block is already the column matrix.
  bool direct(const Conv2dParams& p) const {
    return kh == 1 && kw == 1 && p.sh == 1 && p.sw == 1 && p.pt == 0 && p.pb == 0 && p.pl == 0 && p.pr == 0;
  }
};

template <class T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
          T beta, T* c, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    kernels::gemm().f32.gemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
  else
    kernels::gemm().f64.gemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

kernels::Im2colGeom im2col_geom(const Geom& g, const Conv2dParams& p) {
  return {g.cg, g.h, g.w, g.kh, g.kw, g.oh, g.ow, p.sh, p.sw, p.pt, p.pl, p.dh, p.dw};
}

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

// With stride 1 the input gradient is itself a convolution: of gy with the weights flipped in
// space and with in/out channels swapped, padded by (k-1)*d - p. That runs on the implicit-GEMM
// forward kernel, with no column matrix and no col2im scatter.
bool input_grad_as_conv(const Geom& g, const Conv2dParams& p) {
  return p.sh == 1 && p.sw == 1 && p.pt <= (g.kh - 1) * p.dh && p.pl <= (g.kw - 1) * p.dw;
}

template <class T>
void input_grad_by_conv(const T* gy, const T* w, T* gx, const Geom& g, const Conv2dParams& p) {
  // wf (groups*cg, og, kh, kw): wf[gi*cg + c][o][i][j] = w[gi*og + o][c][kh-1-i][kw-1-j]
  std::vector<T> wf(static_cast<size_t>(g.oc * g.ck()));
  const int64_t khw = g.kh * g.kw;
  for (int64_t gi = 0; gi < p.groups; ++gi)
    for (int64_t o = 0; o < g.og; ++o)
      for (int64_t c = 0; c < g.cg; ++c) {
        const T* src = w + ((gi * g.og + o) * g.cg + c) * khw;
        T* dst = wf.data() + ((gi * g.cg + c) * g.og + o) * khw;
        for (int64_t t = 0; t < khw; ++t) dst[t] = src[khw - 1 - t];
      }
  const kernels::ConvGeom k{g.n, p.groups, g.og, g.oh, g.ow, g.cg, g.kh, g.kw, g.h, g.w,
                            1, 1, (g.kh - 1) * p.dh - p.pt, (g.kw - 1) * p.dw - p.pl, p.dh, p.dw};
  kernels::conv_fns<T>().conv2d(gy, wf.data(), nullptr, gx, k, 0);
}

template <class T>
void conv_input_grad_raw(const T* gy, const T* w, T* gx, const Geom& g, const Conv2dParams& p) {
  // Winograd (kernels/conv_winograd.h): the input gradient of a float32 3x3 stride-1 dilation-1
  // layer, the convolution of gy with the flipped weights padded by 2 - p, runs on it via conv2d.
  if (std::is_same_v<T, float> && input_grad_as_conv(g, p) &&
      kernels::conv_winograd({g.n, p.groups, g.og, g.oh, g.ow, g.cg, g.kh, g.kw, g.h, g.w, 1, 1,
                              (g.kh - 1) * p.dh - p.pt, (g.kw - 1) * p.dw - p.pl, p.dh, p.dw})) {
    input_grad_by_conv(gy, w, gx, g, p);
    return;
  }
  if (input_grad_as_conv(g, p)) {
    input_grad_by_conv(gy, w, gx, g, p);
    return;
  }
  const int64_t L = g.l(), CK = g.ck();
  const bool direct = g.direct(p);
  const kernels::Im2colGeom ig = im2col_geom(g, p);
  parallel_for(0, g.n, 1, [&](int64_t n0, int64_t n1) {
    std::vector<T> col(direct ? 0 : CK * L);
    for (int64_t n = n0; n < n1; ++n) {
      T* gxn = gx + n * g.c * g.h * g.w;
      const T* gyn = gy + n * g.oc * L;
      for (int64_t gi = 0; gi < p.groups; ++gi) {
        T* gxg = gxn + gi * g.cg * g.h * g.w;
        // col (CK x L) = w_g^T (CK x og) @ gy_g (og x L)
        T* cm = direct ? gxg : col.data();
        gemm<T>(true, false, CK, L, g.og, w + gi * g.og * CK, CK, gyn + gi * g.og * L, L, T(0), cm, L);
        if (!direct) {
          std::fill(gxg, gxg + g.cg * g.h * g.w, T(0));
          kernels::conv_fns<T>().col2im(col.data(), ig, gxg);
        }
      }
    }
  });
}

// The weight gradient is accumulated transposed, gw_g^T (CK x og) += col (CK x L) @ gy_g^T (L x og):
// with CK as the GEMM's rows it takes the packed path, which beats the og-row orientation.
template <class T>
void conv_weight_grad_raw(const T* x, const T* gy, T* gw, const Geom& g, const Conv2dParams& p) {
  const int64_t L = g.l(), CK = g.ck(), wn = g.oc * CK;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(kWeightGradChunks, g.n));
  const int64_t per = (g.n + chunks - 1) / chunks;
  const kernels::ConvGeom kg = kernel_geom(g, p);
  if (kernels::conv_weight_grad_direct(kg)) {  // read straight from x and gy, per chunk of images
    std::vector<T> acc(static_cast<size_t>(chunks * wn));
    parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t ch = c0; ch < c1; ++ch)
        kernels::conv_fns<T>().conv2d_weight_grad_direct(x, gy, acc.data() + ch * wn, kg, std::min(g.n, ch * per),
                                                          std::min(g.n, (ch + 1) * per));
    });
    std::copy(acc.begin(), acc.begin() + wn, gw);
    for (int64_t ch = 1; ch < chunks; ++ch)
      for (int64_t i = 0; i < wn; ++i) gw[i] += acc[ch * wn + i];
    return;
  }
  const bool direct = g.direct(p);
  const kernels::Im2colGeom ig = im2col_geom(g, p);
  std::vector<T> acc_t(static_cast<size_t>(chunks * wn));  // per chunk: [group][CK][og]
  parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<T> col(direct ? 0 : CK * L);
    for (int64_t ch = c0; ch < c1; ++ch) {
      T* acc = acc_t.data() + ch * wn;
      bool first = true;
      for (int64_t n = ch * per; n < std::min(g.n, (ch + 1) * per); ++n) {
        const T* xn = x + n * g.c * g.h * g.w;
        const T* gyn = gy + n * g.oc * L;
        for (int64_t gi = 0; gi < p.groups; ++gi) {
          const T* xg = xn + gi * g.cg * g.h * g.w;
          const T* cm = xg;
          if (!direct) {
            kernels::conv_fns<T>().im2col(xg, ig, col.data());
            cm = col.data();
          }
          gemm<T>(false, true, CK, g.og, L, cm, L, gyn + gi * g.og * L, L, first ? T(0) : T(1), acc + gi * CK * g.og,
                  g.og);
        }
        first = false;
      }
      if (first) std::fill(acc, acc + wn, T(0));
    }
  });
  // Chunks are combined in order, then transposed into gw (og x CK per group).
  for (int64_t ch = 1; ch < chunks; ++ch) {
    const T* src = acc_t.data() + ch * wn;
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

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const Conv2dParams& p, const std::string& op,
              bool relu) {
  const bool history = needs_history({x_in, w_in, b_in});
  if (relu && history) return nc::relu(conv2d(x_in, w_in, b_in, p, op));
  Geom g = check_conv(x_in, w_in, b_in, p, op);
  NC_CHECK(g.oh > 0 && g.ow > 0, RuntimeError, "[", op, "] output size is zero (", g.oh, " x ", g.ow,
           "); input shape ", shape_str(x_in.shape()), ", weight shape ", shape_str(w_in.shape()));
  Tensor out = Tensor::empty({g.n, g.oc, g.oh, g.ow}, x_in.dtype());
  {
    Tensor x = contiguous(x_in), w = contiguous(w_in), b = b_in.defined() ? contiguous(b_in) : Tensor();
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
                [sx, sw, xs, ws, p, op](const TensorList& gr, const std::vector<bool>& needs) {
                  TensorList r(3);
                  if (needs[0]) r[0] = conv2d_input_grad(gr[0], sw.unpack(op), xs, p);
                  if (needs[1]) r[1] = conv2d_weight_grad(sx.unpack(op), gr[0], ws, p);
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

Tensor conv2d_weight_grad(const Tensor& x_in, const Tensor& gy_in, const Shape& ws, const Conv2dParams& p) {
  Geom g = geom_of(x_in.shape(), ws, p);
  Tensor gw = Tensor::empty(ws, gy_in.dtype());
  {
    Tensor x = contiguous(x_in), gy = contiguous(gy_in);
    dispatch_floating(gy.dtype(), "conv2d_backward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      conv_weight_grad_raw<T>(x.data<T>(), gy.data<T>(), gw.data<T>(), g, p);
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
