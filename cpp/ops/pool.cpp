// 2-D max/avg/adaptive-avg pooling: validation, autograd, and the kernels of kernels/pool.h run
// over (n, c) planes. Each thread owns whole planes of the output and of the input gradient, so
// there are no races and no thread-count-dependent order.
#include <algorithm>
#include <limits>

#include "core/autograd.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/iter.h"
#include "core/parallel.h"
#include "kernels/pool.h"
#include "ops/conv.h"
#include "ops/copy.h"
#include "ops/gather.h"
#include "ops/shape.h"

namespace nc {
namespace {

struct Planes {
  int64_t planes;
  Shape lead;  // the dims before (H, W): (N, C) or (C,)
  kernels::PoolGeometry geo;
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
  kernels::PoolGeometry& k = g.geo;
  k.h = x.shape()[x.dim() - 2], k.w = x.shape()[x.dim() - 1];
  NC_CHECK(k.h > 0 && k.w > 0, RuntimeError, "[", o, "] input has an empty spatial dim, shape ", shape_str(x.shape()));
  if (adaptive) return g;
  // PyTorch takes these as 32-bit ints; bigger ones are absurd, and their products (the taps of a
  // window, its extent) would overflow in the kernels.
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  for (int64_t v : {p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw})
    NC_CHECK(v <= kMax, RuntimeError, "[", o, "] kernel_size, stride, padding and dilation must be at most ", kMax,
             ", got kernel_size (", p.kh, ", ", p.kw, "), stride (", p.sh, ", ", p.sw, "), padding (", p.ph, ", ",
             p.pw, "), dilation (", p.dh, ", ", p.dw, ")");
  NC_CHECK(p.kh > 0 && p.kw > 0, RuntimeError, "[", o, "] kernel_size must be positive, got (", p.kh, ", ", p.kw, ")");
  NC_CHECK(p.sh > 0 && p.sw > 0, RuntimeError, "[", o, "] stride must be positive, got (", p.sh, ", ", p.sw, ")");
  NC_CHECK(p.dh > 0 && p.dw > 0, RuntimeError, "[", o, "] dilation must be positive, got (", p.dh, ", ", p.dw, ")");
  NC_CHECK(p.ph >= 0 && p.pw >= 0 && 2 * p.ph <= p.kh && 2 * p.pw <= p.kw, RuntimeError, "[", o,
           "] pad should be at most half of the kernel size, got padding (", p.ph, ", ", p.pw, ") and kernel_size (",
           p.kh, ", ", p.kw, ")");
  k.kh = p.kh, k.kw = p.kw, k.sh = p.sh, k.sw = p.sw, k.ph = p.ph, k.pw = p.pw, k.dh = p.dh, k.dw = p.dw;
  k.count_include_pad = p.count_include_pad;
  k.divisor_override = p.divisor_override;
  k.oh = pool_out(k.h, p.kh, p.ph, p.sh, p.dh, p.ceil_mode);
  k.ow = pool_out(k.w, p.kw, p.pw, p.sw, p.dw, p.ceil_mode);
  NC_CHECK(k.oh > 0 && k.ow > 0, RuntimeError, "[", o, "] output size is too small (", k.oh, " x ", k.ow,
           ") for input shape ", shape_str(x.shape()), " and kernel_size (", p.kh, ", ", p.kw, ")");
  return g;
}

Shape plane_shape(const Planes& g, bool output) {
  Shape s = g.lead;
  s.push_back(output ? g.geo.oh : g.geo.h);
  s.push_back(output ? g.geo.ow : g.geo.w);
  return s;
}

// body(b, e) over ranges of whole planes; inputs under ~32k elements stay on the calling thread.
template <class F>
void for_planes(const Planes& g, const F& body) {
  const int64_t per_plane = std::max<int64_t>(1, g.geo.h * g.geo.w);
  parallel_for(0, g.planes, std::max<int64_t>(1, kElementwiseGrain / per_plane), body);
}

// Average pooling (fixed or adaptive windows) as a pair of ops, each the other's gradient:
// forward maps x to y, backward maps gy to gx, and both are linear.
Tensor avg_apply(const Tensor& t_in, const Planes& g, bool adaptive, bool forward, const std::string& op) {
  Tensor t = contiguous(t_in);
  Tensor r = Tensor::empty(plane_shape(g, forward), t.dtype());
  const int64_t in_n = g.geo.h * g.geo.w, out_n = g.geo.oh * g.geo.ow;
  const int64_t t_n = forward ? in_n : out_n, r_n = forward ? out_n : in_n;
  dispatch_floating(t.dtype(), op.c_str(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto& k = kernels::pool_fns<T>();
    auto fn = adaptive ? (forward ? k.adaptive_forward : k.adaptive_backward) : (forward ? k.avg_forward : k.avg_backward);
    const T* src = t.data<T>();
    T* dst = r.data<T>();
    for_planes(g, [&](int64_t b, int64_t e) { fn(src + b * t_n, dst + b * r_n, e - b, g.geo); });
  });
  if (needs_history({t_in})) {
    set_history(forward ? op : op + "_backward", {t_in}, {r},
                [g, adaptive, forward, op](const TensorList& gr, const std::vector<bool>&) {
                  return TensorList{avg_apply(gr[0], g, adaptive, !forward, op)};
                });
  }
  return r;
}

// Where the forward recorded the maxima: positions (int64, as return_indices gives them), or for a
// backward-only record the window tap numbers in one byte each.
struct MaxRecord {
  Tensor idx;
  std::shared_ptr<Storage> taps;
};

Tensor max_positions(const MaxRecord& rec, const Planes& g) {
  if (rec.idx.defined()) return rec.idx;
  Tensor idx = Tensor::empty(plane_shape(g, true), DType::Int64);
  const int64_t ohw = g.geo.oh * g.geo.ow;
  const uint8_t* tp = static_cast<const uint8_t*>(rec.taps->data);
  int64_t* ip = idx.data<int64_t>();
  for_planes(g, [&](int64_t b, int64_t e) { kernels::pool().max_tap_positions(tp + b * ohw, ip + b * ohw, e - b, g.geo); });
  return idx;
}

Tensor max_pool2d_backward(const Tensor& gy_in, const MaxRecord& rec, const Planes& g) {
  const int64_t hw = g.geo.h * g.geo.w, ohw = g.geo.oh * g.geo.ow;
  if (GradMode::is_enabled()) {
    // create_graph: the same scatter-add as a differentiable op (its gradient is a gather at the
    // same indices).
    Tensor i2 = max_positions(rec, g).as_strided_alias({g.planes, ohw}, {ohw, 1}, 0);
    Tensor g2 = reshape(gy_in, {g.planes, ohw});
    return reshape(scatter_add_new({g.planes, hw}, 1, i2, g2), plane_shape(g, false));
  }
  Tensor gy = contiguous(gy_in);
  Tensor gx = Tensor::empty(plane_shape(g, false), gy.dtype());
  dispatch_floating(gy.dtype(), "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* gyp = gy.data<T>();
    const int64_t* ip = rec.idx.defined() ? rec.idx.data<int64_t>() : nullptr;
    const uint8_t* tp = rec.taps ? static_cast<const uint8_t*>(rec.taps->data) : nullptr;
    T* gxp = gx.data<T>();
    for_planes(g, [&](int64_t b, int64_t e) {
      kernels::pool_fns<T>().max_backward(gyp + b * ohw, ip ? ip + b * ohw : nullptr, tp ? tp + b * ohw : nullptr,
                                          gxp + b * hw, e - b, g.geo);
    });
  });
  return gx;
}

}  // namespace

std::pair<Tensor, Tensor> max_pool2d(const Tensor& x_in, const Pool2dParams& p, const std::string& op,
                                     bool return_indices) {
  Planes g = check_pool(x_in, p, op, false);
  Tensor x = contiguous(x_in);
  const bool record = needs_history({x_in});
  Tensor y = Tensor::empty(plane_shape(g, true), x.dtype());
  // Inference without return_indices never computes the argmax; a backward alone gets tap numbers.
  MaxRecord rec;
  const int64_t hw = g.geo.h * g.geo.w, ohw = g.geo.oh * g.geo.ow;
  if (return_indices || (record && p.kh * p.kw >= kernels::kPoolNoTap))
    rec.idx = Tensor::empty(plane_shape(g, true), DType::Int64);
  else if (record)
    rec.taps = Storage::allocate(static_cast<size_t>(g.planes * ohw));
  dispatch_floating(x.dtype(), op.c_str(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    int64_t* ip = rec.idx.defined() ? rec.idx.data<int64_t>() : nullptr;
    uint8_t* tp = rec.taps ? static_cast<uint8_t*>(rec.taps->data) : nullptr;
    for_planes(g, [&](int64_t b, int64_t e) {
      kernels::pool_fns<T>().max_forward(xp + b * hw, yp + b * ohw, ip ? ip + b * ohw : nullptr,
                                         tp ? tp + b * ohw : nullptr, e - b, g.geo);
    });
  });
  if (record) {
    set_history(op, {x_in}, {y}, [g, rec](const TensorList& gr, const std::vector<bool>&) {
      return TensorList{max_pool2d_backward(gr[0], rec, g)};
    });
  }
  return {y, rec.idx};
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p, const std::string& op) {
  return avg_apply(x, check_pool(x, p, op, false), false, true, op);
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t oh, int64_t ow, const std::string& op) {
  Planes g = check_pool(x, Pool2dParams(), op, true);
  NC_CHECK(oh > 0 && ow > 0, RuntimeError, "[", op, "] output_size must be positive, got (", oh, ", ", ow, ")");
  g.geo.oh = oh, g.geo.ow = ow;
  return avg_apply(x, g, true, true, op);
}

}  // namespace nc
