// 2-D max/avg/adaptive-avg pooling, forward and backward. Planes (n, c) are independent, so each
// thread owns whole planes of the output and of the input gradient: no races, no order issues.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"
#include "ops/conv.h"
#include "ops/copy.h"
#include "ops/gather.h"
#include "ops/shape.h"

namespace nc {
namespace {

struct Planes {
  int64_t planes, h, w, oh, ow;
  Shape lead;  // the dims before (H, W): (N, C) or (C,)
};

int64_t pool_out(int64_t in, int64_t k, int64_t pad, int64_t s, int64_t d, bool ceil_mode) {
  const int64_t num = in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  // The last window must start inside the input or left padding (PyTorch's rule).
  if (ceil_mode && (o - 1) * s >= in + pad) --o;
  return o;
}

Planes check_pool(const Tensor& x, const Pool2dParams& p, const std::string& op, bool adaptive) {
  const char* o = op.c_str();
  NC_CHECK(is_floating(x.dtype()), TypeError, "[", o, "] expected a float tensor, got ", dtype_name(x.dtype()));
  NC_CHECK(x.dim() == 3 || x.dim() == 4, RuntimeError, "[", o, "] expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape ",
           shape_str(x.shape()));
  Planes g;
  g.lead = Shape(x.shape().begin(), x.shape().end() - 2);
  g.planes = shape_numel(g.lead);
  g.h = x.shape()[x.dim() - 2], g.w = x.shape()[x.dim() - 1];
  NC_CHECK(g.h > 0 && g.w > 0, RuntimeError, "[", o, "] input has an empty spatial dim, shape ", shape_str(x.shape()));
  if (adaptive) return g;
  NC_CHECK(p.kh > 0 && p.kw > 0, RuntimeError, "[", o, "] kernel_size must be positive, got (", p.kh, ", ", p.kw, ")");
  NC_CHECK(p.sh > 0 && p.sw > 0, RuntimeError, "[", o, "] stride must be positive, got (", p.sh, ", ", p.sw, ")");
  NC_CHECK(p.dh > 0 && p.dw > 0, RuntimeError, "[", o, "] dilation must be positive, got (", p.dh, ", ", p.dw, ")");
  NC_CHECK(p.ph >= 0 && p.pw >= 0 && 2 * p.ph <= p.kh && 2 * p.pw <= p.kw, RuntimeError, "[", o,
           "] pad should be at most half of the kernel size, got padding (", p.ph, ", ", p.pw, ") and kernel_size (",
           p.kh, ", ", p.kw, ")");
  g.oh = pool_out(g.h, p.kh, p.ph, p.sh, p.dh, p.ceil_mode);
  g.ow = pool_out(g.w, p.kw, p.pw, p.sw, p.dw, p.ceil_mode);
  NC_CHECK(g.oh > 0 && g.ow > 0, RuntimeError, "[", o, "] output size is too small (", g.oh, " x ", g.ow,
           ") for input shape ", shape_str(x.shape()), " and kernel_size (", p.kh, ", ", p.kw, ")");
  return g;
}

Shape out_shape(const Planes& g) {
  Shape s = g.lead;
  s.push_back(g.oh);
  s.push_back(g.ow);
  return s;
}

template <class T>
void max_forward(const T* x, T* y, int64_t* idx, const Planes& g, const Pool2dParams& p) {
  parallel_for(0, g.planes, 1, [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      const T* xp = x + pl * g.h * g.w;
      for (int64_t oy = 0; oy < g.oh; ++oy)
        for (int64_t ox = 0; ox < g.ow; ++ox) {
          T m = -std::numeric_limits<T>::infinity();
          int64_t mi = -1;
          for (int64_t i = 0; i < p.kh; ++i) {
            const int64_t iy = oy * p.sh - p.ph + i * p.dh;
            if (iy < 0 || iy >= g.h) continue;
            for (int64_t j = 0; j < p.kw; ++j) {
              const int64_t ix = ox * p.sw - p.pw + j * p.dw;
              if (ix < 0 || ix >= g.w) continue;
              const T v = xp[iy * g.w + ix];
              if (mi < 0 || v > m || std::isnan(v)) {  // NaN wins, as in PyTorch
                m = v;
                mi = iy * g.w + ix;
              }
            }
          }
          const int64_t o = (pl * g.oh + oy) * g.ow + ox;
          y[o] = m;
          idx[o] = mi;
        }
    }
  });
}

// gx plane = zeros with each gy added at its argmax (planes are disjoint, so threads never collide).
template <class T>
void max_backward(const T* gy, const int64_t* idx, T* gx, const Planes& g) {
  parallel_for(0, g.planes, 1, [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      T* gp = gx + pl * g.h * g.w;
      std::fill(gp, gp + g.h * g.w, T(0));
      const T* gyp = gy + pl * g.oh * g.ow;
      const int64_t* ip = idx + pl * g.oh * g.ow;
      for (int64_t o = 0; o < g.oh * g.ow; ++o) gp[ip[o]] += gyp[o];
    }
  });
}

// The window [y0, y1) x [x0, x1) of output (oy, ox) and its divisor, for avg and adaptive pooling.
struct Window {
  int64_t y0, y1, x0, x1;
  double div;
};

Window avg_window(const Planes& g, const Pool2dParams& p, int64_t oy, int64_t ox) {
  int64_t y0 = oy * p.sh - p.ph, x0 = ox * p.sw - p.pw;
  int64_t y1 = std::min(y0 + p.kh, g.h + p.ph), x1 = std::min(x0 + p.kw, g.w + p.pw);
  const int64_t padded = (y1 - y0) * (x1 - x0);
  y0 = std::max<int64_t>(y0, 0), x0 = std::max<int64_t>(x0, 0);
  y1 = std::min(y1, g.h), x1 = std::min(x1, g.w);
  double div = p.divisor_override ? p.divisor_override : p.count_include_pad ? padded : (y1 - y0) * (x1 - x0);
  return {y0, y1, x0, x1, div};
}

Window adaptive_window(const Planes& g, int64_t oy, int64_t ox) {
  const int64_t y0 = oy * g.h / g.oh, y1 = ((oy + 1) * g.h + g.oh - 1) / g.oh;
  const int64_t x0 = ox * g.w / g.ow, x1 = ((ox + 1) * g.w + g.ow - 1) / g.ow;
  return {y0, y1, x0, x1, static_cast<double>((y1 - y0) * (x1 - x0))};
}

template <class T, class W>
void avg_forward(const T* x, T* y, const Planes& g, const W& window) {
  parallel_for(0, g.planes, 1, [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      const T* xp = x + pl * g.h * g.w;
      for (int64_t oy = 0; oy < g.oh; ++oy)
        for (int64_t ox = 0; ox < g.ow; ++ox) {
          const Window wd = window(oy, ox);
          T s = 0;
          for (int64_t iy = wd.y0; iy < wd.y1; ++iy)
            for (int64_t ix = wd.x0; ix < wd.x1; ++ix) s += xp[iy * g.w + ix];
          y[(pl * g.oh + oy) * g.ow + ox] = s / static_cast<T>(wd.div);
        }
    }
  });
}

template <class T, class W>
void avg_backward(const T* gy, T* gx, const Planes& g, const W& window) {
  parallel_for(0, g.planes, 1, [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      T* gp = gx + pl * g.h * g.w;
      std::fill(gp, gp + g.h * g.w, T(0));
      for (int64_t oy = 0; oy < g.oh; ++oy)
        for (int64_t ox = 0; ox < g.ow; ++ox) {
          const Window wd = window(oy, ox);
          const T v = gy[(pl * g.oh + oy) * g.ow + ox] / static_cast<T>(wd.div);
          for (int64_t iy = wd.y0; iy < wd.y1; ++iy)
            for (int64_t ix = wd.x0; ix < wd.x1; ++ix) gp[iy * g.w + ix] += v;
        }
    }
  });
}

// Average pooling (fixed or adaptive windows) as a pair of ops, each the other's gradient:
// forward maps x to y, backward maps gy to gx, and both are linear.
template <class W>
Tensor avg_apply(const Tensor& t_in, const Planes& g, const W& window, bool forward, const std::string& op) {
  Shape in_shape = g.lead, res_shape = g.lead;
  in_shape.insert(in_shape.end(), {g.h, g.w});
  res_shape.insert(res_shape.end(), {g.oh, g.ow});
  if (!forward) std::swap(in_shape, res_shape);
  Tensor t = contiguous(t_in);
  Tensor r = Tensor::empty(res_shape, t.dtype());
  dispatch_floating(t.dtype(), op.c_str(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (forward)
      avg_forward<T>(t.data<T>(), r.data<T>(), g, window);
    else
      avg_backward<T>(t.data<T>(), r.data<T>(), g, window);
  });
  if (needs_history({t_in})) {
    set_history(forward ? op : op + "_backward", {t_in}, {r},
                [g, window, forward, op](const TensorList& gr, const std::vector<bool>&) {
                  return TensorList{avg_apply(gr[0], g, window, !forward, op)};
                });
  }
  return r;
}

}  // namespace

std::pair<Tensor, Tensor> max_pool2d(const Tensor& x_in, const Pool2dParams& p, const std::string& op) {
  Planes g = check_pool(x_in, p, op, false);
  Tensor x = contiguous(x_in);
  Tensor y = Tensor::empty(out_shape(g), x.dtype());
  Tensor idx = Tensor::empty(out_shape(g), DType::Int64);
  dispatch_floating(x.dtype(), op.c_str(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_forward<T>(x.data<T>(), y.data<T>(), idx.data<int64_t>(), g, p);
  });
  if (needs_history({x_in})) {
    Shape xs = x_in.shape();
    set_history(op, {x_in}, {y}, [g, xs, idx](const TensorList& gr, const std::vector<bool>&) {
      if (!GradMode::is_enabled()) {
        Tensor gy = contiguous(gr[0]);
        Tensor gx = Tensor::empty(xs, gy.dtype());
        dispatch_floating(gy.dtype(), "max_pool2d_backward", [&](auto tag) {
          using T = typename decltype(tag)::type;
          max_backward<T>(gy.data<T>(), idx.data<int64_t>(), gx.data<T>(), g);
        });
        return TensorList{gx};
      }
      // create_graph: the same scatter-add as a differentiable op (its gradient is a gather at
      // the same indices).
      Tensor i3 = idx.as_strided_alias({g.planes, g.oh * g.ow}, {g.oh * g.ow, 1}, 0);
      Tensor g3 = reshape(gr[0], {g.planes, g.oh * g.ow});
      return TensorList{reshape(scatter_add_new({g.planes, g.h * g.w}, 1, i3, g3), xs)};
    });
  }
  return {y, idx};
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p, const std::string& op) {
  Planes g = check_pool(x, p, op, false);
  auto window = [g, p](int64_t oy, int64_t ox) { return avg_window(g, p, oy, ox); };
  return avg_apply(x, g, window, true, op);
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t oh, int64_t ow, const std::string& op) {
  Planes g = check_pool(x, Pool2dParams(), op, true);
  NC_CHECK(oh > 0 && ow > 0, RuntimeError, "[", op, "] output_size must be positive, got (", oh, ", ", ow, ")");
  g.oh = oh, g.ow = ow;
  auto window = [g](int64_t oy, int64_t ox) { return adaptive_window(g, oy, ox); };
  return avg_apply(x, g, window, true, op);
}

}  // namespace nc
