// conv_transpose2d as the conv2d ops of conv.h with input and output swapped: the forward is
// conv2d's input gradient (GEMM w^T @ x, then col2im), the input gradient is a conv2d forward and
// the weight gradient is conv2d's weight gradient with the output gradient as the conv input.
// Those ops already run per image in parallel, sum the weight gradient in fixed chunks (results
// do not depend on the thread count) and record history in terms of each other, so this op is
// differentiable to any order without a kernel of its own.
//
// The conv that maps the transposed output (OH rows) back to the input (H rows) has top padding
// ph and bottom padding ph - oph. When oph > ph that is negative, which conv2d rightly refuses:
// those last oph - ph output rows are reached by no kernel tap (they hold only the bias), so the
// conv runs on the output without them ("cut") and zero bottom padding. Columns likewise.
#include "ops/conv_transpose.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"
#include "ops/conv.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/index.h"
#include "ops/reduce.h"

namespace nc {
namespace {

struct Plan {
  Shape ys;           // output (N, out, OH, OW)
  Shape cut;          // the part of the output a kernel tap reaches: (N, out, OH - ch, OW - cw)
  Conv2dParams conv;  // conv2d geometry from `cut` to the input shape
};

// The 1-D forms (ops named "...1d": conv_transpose1d, ConvTranspose1d) run as this op on a unit
// height; their messages show the caller's 1-D shapes and values.
struct Fmt {
  bool one_d;
  std::string shape(Shape s) const {
    if (one_d && s.size() == 4) s.erase(s.begin() + 2);
    return shape_str(s);
  }
  std::string pair(int64_t h, int64_t w) const { return one_d ? shape_str({w}) : shape_str({h, w}); }
};

Plan check(const Tensor& x, const Tensor& w, const Tensor& b, const ConvTranspose2dParams& p, const std::string& op) {
  const char* o = op.c_str();
  const Fmt f{op.size() >= 2 && op.compare(op.size() - 2, 2, "1d") == 0};
  NC_CHECK(is_floating(x.dtype()) && x.dtype() == w.dtype(), TypeError, "[", o,
           "] expected input and weight of one float dtype, got ", dtype_name(x.dtype()), " and ",
           dtype_name(w.dtype()));
  NC_CHECK(x.dim() == 4, RuntimeError, "[", o, "] expected a 4-D input (N, C, H, W), got shape ",
           shape_str(x.shape()));
  NC_CHECK(w.dim() == 4, RuntimeError, "[", o, "] expected a 4-D weight (in, out/groups, kh, kw), got shape ",
           shape_str(w.shape()));
  NC_CHECK(p.groups >= 1, RuntimeError, "[", o, "] groups must be positive, got ", p.groups);
  NC_CHECK(p.sh >= 1 && p.sw >= 1, RuntimeError, "[", o, "] stride must be positive, got ", f.pair(p.sh, p.sw));
  NC_CHECK(p.dh >= 1 && p.dw >= 1, RuntimeError, "[", o, "] dilation must be positive, got ", f.pair(p.dh, p.dw));
  NC_CHECK(p.ph >= 0 && p.pw >= 0, RuntimeError, "[", o, "] padding must be non-negative, got ", f.pair(p.ph, p.pw));
  NC_CHECK(p.oph >= 0 && p.opw >= 0, RuntimeError, "[", o, "] output_padding must be non-negative, got ",
           f.pair(p.oph, p.opw));
  const int64_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], wd = x.shape()[3];
  const int64_t ic = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3];
  NC_CHECK(ic % p.groups == 0, RuntimeError, "[", o, "] weight's in_channels ", ic, " is not divisible by groups ",
           p.groups, " (weight shape ", f.shape(w.shape()), ")");
  NC_CHECK(c == ic, RuntimeError, "[", o, "] expected input with ", ic, " channels, got ", c, " (input shape ",
           f.shape(x.shape()), ", weight shape ", f.shape(w.shape()), ")");
  NC_CHECK(kh > 0 && kw > 0 && w.shape()[1] > 0, RuntimeError, "[", o, "] weight has a zero-size dim (weight shape ",
           f.shape(w.shape()), ")");
  NC_CHECK(h > 0 && wd > 0, RuntimeError, "[", o, "] input has a zero-size spatial dim (input shape ",
           f.shape(x.shape()), ")");
  NC_CHECK((p.oph < p.sh || p.oph < p.dh) && (p.opw < p.sw || p.opw < p.dw), RuntimeError, "[", o,
           "] output_padding must be smaller than either stride or dilation, got output_padding=",
           f.pair(p.oph, p.opw), ", stride=", f.pair(p.sh, p.sw), ", dilation=", f.pair(p.dh, p.dw));
  const int64_t oh = (h - 1) * p.sh - 2 * p.ph + p.dh * (kh - 1) + p.oph + 1;
  const int64_t ow = (wd - 1) * p.sw - 2 * p.pw + p.dw * (kw - 1) + p.opw + 1;
  NC_CHECK(oh > 0 && ow > 0, RuntimeError, "[", o, "] output size ", f.pair(oh, ow),
           " is not positive; input shape ", f.shape(x.shape()), ", weight shape ", f.shape(w.shape()), ", stride=",
           f.pair(p.sh, p.sw), ", padding=", f.pair(p.ph, p.pw), ", dilation=", f.pair(p.dh, p.dw),
           ", output_padding=", f.pair(p.oph, p.opw));
  const int64_t oc = w.shape()[1] * p.groups;
  if (b.defined()) {
    NC_CHECK(b.dtype() == x.dtype(), TypeError, "[", o, "] bias dtype ", dtype_name(b.dtype()),
             " doesn't match input dtype ", dtype_name(x.dtype()));
    NC_CHECK(b.dim() == 1 && b.shape()[0] == oc, RuntimeError, "[", o, "] expected bias of shape (", oc,
             ",), got ", shape_str(b.shape()), " (weight shape ", f.shape(w.shape()), ", groups=", p.groups, ")");
  }
  Plan pl;
  const int64_t ch = std::max<int64_t>(p.oph - p.ph, 0), cw = std::max<int64_t>(p.opw - p.pw, 0);
  pl.ys = {n, oc, oh, ow};
  pl.cut = {n, oc, oh - ch, ow - cw};
  Conv2dParams& q = pl.conv;
  q.sh = p.sh, q.sw = p.sw, q.dh = p.dh, q.dw = p.dw, q.groups = p.groups;
  q.pt = p.ph, q.pb = std::max<int64_t>(p.ph - p.oph, 0);
  q.pl = p.pw, q.pr = std::max<int64_t>(p.pw - p.opw, 0);
  return pl;
}

// The output without its uncut-to rows/columns (a view; the identity when nothing is cut).
Tensor cut_view(const Tensor& y, const Plan& pl) {
  if (pl.cut == pl.ys) return y;
  return narrow(narrow(y, 2, 0, pl.cut[2]), 3, 0, pl.cut[3]);
}

template <class T>
void add_bias(T* y, const T* b, int64_t planes, int64_t channels, int64_t plane) {
  parallel_for(0, planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(plane, 1)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const T v = b[i % channels];
      T* row = y + i * plane;
      for (int64_t j = 0; j < plane; ++j) row[j] += v;
    }
  });
}

}  // namespace

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b_in, const ConvTranspose2dParams& p,
                        const std::string& op) {
  const Plan pl = check(x, w, b_in, p, op);
  Tensor out;
  {
    NoGradGuard no_grad;  // this op records its own node below
    Tensor core = conv2d_input_grad(x, w, pl.cut, pl.conv);
    if (pl.cut == pl.ys) {
      out = core;
    } else {
      out = zeros(pl.ys, x.dtype());
      copy_raw(cut_view(out, pl), core);
    }
    if (b_in.defined()) {
      Tensor b = contiguous(b_in);
      dispatch_floating(out.dtype(), op.c_str(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        add_bias<T>(out.data<T>(), b.data<T>(), pl.ys[0] * pl.ys[1], pl.ys[1], pl.ys[2] * pl.ys[3]);
      });
    }
  }
  if (needs_history({x, w, b_in})) {
    SavedTensor sx(x, false), sw(w, false);
    const Shape ws = w.shape();
    set_history(op, {x, w, b_in}, {out}, [sx, sw, ws, pl, op](const TensorList& gr, const std::vector<bool>& needs) {
      TensorList r(3);
      const Tensor g = cut_view(gr[0], pl);
      if (needs[0]) r[0] = conv2d(g, sw.unpack(op), Tensor(), pl.conv);
      if (needs[1]) r[1] = conv2d_weight_grad(g, sx.unpack(op), ws, pl.conv);
      if (needs[2]) r[2] = sum(gr[0], {0, 2, 3}, false);
      return r;
    });
  }
  return out;
}

}  // namespace nc
