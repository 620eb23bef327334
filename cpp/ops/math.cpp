#include "ops/math.h"

#include <cmath>

#include "kernels/elementwise.h"
#include "kernels/vecmath.h"
#include "ops/creation.h"
#include "ops/pointwise.h"
#include "ops/shape.h"

namespace nc {

namespace {
const double kTwoOverSqrtPi = 1.1283791670955126;

Tensor scalar_like(double v, const Tensor& t) { return scalar_tensor(Scalar(v), t.dtype()); }
Tensor zeros_derivative(const Tensor& x) { return zeros_like(x); }
}  // namespace

Tensor exp(const Tensor& x) {
  return pointwise("exp", x, [](auto v) { return std::exp(v); }, [](auto, auto y) { return y; },
                   [](const Tensor& x) { return exp(x); }, {kernels::vecmath().f32.exp});
}

Tensor log(const Tensor& x) {
  return pointwise("log", x, [](auto v) { return std::log(v); }, [](auto v, auto) { return 1 / v; },
                   [](const Tensor& x) { return reciprocal(x); }, {kernels::vecmath().f32.log});
}

Tensor sqrt(const Tensor& x) {
  return pointwise("sqrt", x, [](auto v) { return std::sqrt(v); },
                   [](auto, auto y) { return decltype(y)(0.5) / y; },
                   [](const Tensor& x) { return div(scalar_like(0.5, x), sqrt(x)); });
}

Tensor rsqrt(const Tensor& x) {
  return pointwise("rsqrt", x, [](auto v) { return 1 / std::sqrt(v); },
                   [](auto, auto y) { return decltype(y)(-0.5) * y * y * y; },
                   [](const Tensor& x) {
                     Tensor y = rsqrt(x);
                     return mul(scalar_like(-0.5, x), mul(y, mul(y, y)));
                   });
}

Tensor sin(const Tensor& x) {
  return pointwise("sin", x, [](auto v) { return std::sin(v); }, [](auto v, auto) { return std::cos(v); },
                   [](const Tensor& x) { return cos(x); });
}

Tensor cos(const Tensor& x) {
  return pointwise("cos", x, [](auto v) { return std::cos(v); }, [](auto v, auto) { return -std::sin(v); },
                   [](const Tensor& x) { return neg(sin(x)); });
}

Tensor tanh(const Tensor& x) {
  return pointwise("tanh", x, [](auto v) { return std::tanh(v); }, [](auto, auto y) { return 1 - y * y; },
                   [](const Tensor& x) {
                     Tensor y = tanh(x);
                     return sub(scalar_like(1.0, x), mul(y, y));
                   },
                   {kernels::vecmath().f32.tanh, nullptr, kernels::elementwise().f32.tanh_backward,
                    kernels::elementwise().f64.tanh_backward});
}

Tensor sigmoid(const Tensor& x) {
  return pointwise("sigmoid", x,
                   [](auto v) {
                     // e^-|v| never overflows; tiny results for very negative v keep their precision.
                     auto e = std::exp(-std::fabs(v));
                     return v >= 0 ? 1 / (1 + e) : e / (1 + e);
                   },
                   [](auto, auto y) { return y * (1 - y); },
                   [](const Tensor& x) {
                     Tensor y = sigmoid(x);
                     return mul(y, sub(scalar_like(1.0, x), y));
                   },
                   {kernels::vecmath().f32.sigmoid, nullptr, kernels::elementwise().f32.sigmoid_backward,
                    kernels::elementwise().f64.sigmoid_backward});
}

Tensor reciprocal(const Tensor& x) {
  return pointwise("reciprocal", x, [](auto v) { return 1 / v; }, [](auto, auto y) { return -y * y; },
                   [](const Tensor& x) {
                     Tensor y = reciprocal(x);
                     return neg(mul(y, y));
                   });
}

Tensor log1p(const Tensor& x) {
  return pointwise("log1p", x, [](auto v) { return std::log1p(v); }, [](auto v, auto) { return 1 / (1 + v); },
                   [](const Tensor& x) { return reciprocal(add(x, scalar_like(1.0, x))); }, {kernels::vecmath().f32.log1p});
}

Tensor expm1(const Tensor& x) {
  return pointwise("expm1", x, [](auto v) { return std::expm1(v); }, [](auto, auto y) { return y + 1; },
                   [](const Tensor& x) { return exp(x); }, {kernels::vecmath().f32.expm1});
}

Tensor erf(const Tensor& x) {
  return pointwise("erf", x, [](auto v) { return std::erf(v); },
                   [](auto v, auto) { return decltype(v)(kTwoOverSqrtPi) * std::exp(-v * v); },
                   [](const Tensor& x) { return mul(scalar_like(kTwoOverSqrtPi, x), exp(neg(mul(x, x)))); },
                   {kernels::vecmath().f32.erf});
}

// Functions that keep integer dtypes and whose derivative is a simple expression of x.
namespace {
template <class F, class D>
Tensor dtype_preserving(const char* name, const Tensor& x, F f, D dfdx, CompositeDerivative composite) {
  if (is_float_type(x.dtype())) return pointwise(name, x, f, dfdx, composite);
  if (is_storage_dtype(x.dtype()))  // int8 .. int32, uint8: computed in int64
    return to_dtype(dtype_preserving(name, to_dtype(x, DType::Int64), f, dfdx, composite), x.dtype());
  return dispatch_numeric(x.dtype() == DType::Bool ? DType::Int64 : x.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return map1<T, T>(x, dtype_of<T>(), [&](T v) { return f(v); });
  });
}
}  // namespace

Tensor abs(const Tensor& x) {
  return dtype_preserving("abs", x, [](auto v) { return std::abs(v); },
                          [](auto v, auto) { return decltype(v)((v > 0) - (v < 0)); },
                          [](const Tensor& x) { return sign(x); });
}

Tensor sign(const Tensor& x) {
  return dtype_preserving("sign", x, [](auto v) { return decltype(v)((v > 0) - (v < 0)); },
                          [](auto v, auto) { return decltype(v)(0); }, zeros_derivative);
}

Tensor square(const Tensor& x) {
  return dtype_preserving("square", x, [](auto v) { return v * v; }, [](auto v, auto) { return 2 * v; },
                          [](const Tensor& x) { return mul(x, scalar_like(2.0, x)); });
}

Tensor floor(const Tensor& x) {
  return dtype_preserving("floor", x, [](auto v) { return decltype(v)(std::floor(v)); },
                          [](auto v, auto) { return decltype(v)(0); }, zeros_derivative);
}

Tensor ceil(const Tensor& x) {
  return dtype_preserving("ceil", x, [](auto v) { return decltype(v)(std::ceil(v)); },
                          [](auto v, auto) { return decltype(v)(0); }, zeros_derivative);
}

Tensor round(const Tensor& x) {
  // Round half to even, as PyTorch.
  return dtype_preserving("round", x, [](auto v) { return decltype(v)(std::nearbyint(v)); },
                          [](auto v, auto) { return decltype(v)(0); }, zeros_derivative);
}

// --- binary ------------------------------------------------------------------------------------

static bool any_negative_int(const Tensor& t) {
  Tensor c = as_compute(t, DType::Int64);
  bool neg = false;
  Tensor flags = map1<int64_t, bool>(c, DType::Bool, [](int64_t v) { return v < 0; });
  const bool* f = flags.data<bool>();
  for (int64_t i = 0; i < flags.numel(); ++i) neg = neg || f[i];
  return neg;
}

Tensor pow(const Tensor& base, const Tensor& exponent) {
  DType dt = result_type(base, exponent);
  Tensor out;
  if (!is_floating(dt)) {
    out = map2<int64_t, int64_t>(base, exponent, DType::Int64, "pow", [](int64_t a, int64_t b) {
      int64_t r = 1;
      for (int64_t e = b; e > 0; --e) r *= a;
      return b < 0 ? int64_t(0) : r;
    });
    NC_CHECK(!any_negative_int(exponent), ValueError, "[pow] integers to negative integer powers are not allowed");
    return out;
  }
  out = dispatch_floating(dt, "pow", [&](auto tag) {
    using T = typename decltype(tag)::type;
    return map2<T, T>(base, exponent, dt, "pow", [](T a, T b) {
      return b == T(2) ? a * a : std::pow(a, b);
    });
  });
  if (needs_history({base, exponent})) {
    SavedTensor sb(base, false), se(exponent, false), so(out, true);
    Shape bs = base.shape(), es = exponent.shape();
    DType bd = base.dtype(), ed = exponent.dtype();
    set_history("pow", {base, exponent}, {out}, [=](const TensorList& g, const std::vector<bool>& needs) {
      Tensor b = sb.unpack("pow"), e = se.unpack("pow");
      TensorList r(2);
      if (needs[0]) {
        // d/db b^e = e * b^(e-1), defined as 0 where e == 0 (PyTorch's convention).
        Tensor e_minus_1 = sub(e, scalar_tensor(Scalar(1.0), e.dtype()));
        Tensor d = mul(e, pow(b, e_minus_1));
        d = where(compare(Compare::Eq, e, scalar_tensor(Scalar(0.0), e.dtype())), zeros({}, d.dtype()), d);
        r[0] = reduce_grad(mul(g[0], d), bs, bd);
      }
      if (needs[1]) {
        // d/de b^e = b^e * log(b), defined as 0 where b == 0 and e >= 0.
        Tensor o = GradMode::is_enabled() ? pow(b, e) : so.unpack("pow");
        Tensor d = mul(o, log(b));
        Tensor zero_base = logical(Logical::And, compare(Compare::Eq, b, zeros({}, b.dtype())),
                                   compare(Compare::Ge, e, zeros({}, e.dtype())));
        d = where(zero_base, zeros({}, d.dtype()), d);
        r[1] = reduce_grad(mul(g[0], d), es, ed);
      }
      return r;
    });
  }
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  NC_CHECK(cond.dtype() == DType::Bool, TypeError, "[where] condition must be a bool tensor, got ",
           dtype_name(cond.dtype()));
  DType dt = result_type(a, b);
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor c = expand(cond, shape);
  Tensor out = dispatch_all(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor cf = as_compute(c, dtype_of<T>());
    return map3<T, T>(cf, a, b, dt, "where", [](T k, T x, T y) { return k ? x : y; });
  });
  if (needs_history({a, b})) {
    Tensor cd = detach(cond);
    Shape as = a.shape(), bs = b.shape();
    DType ad = a.dtype(), bd = b.dtype();
    set_history("where", {a, b}, {out}, [cd, as, bs, ad, bd](const TensorList& g, const std::vector<bool>& needs) {
      TensorList r(2);
      Tensor zero = zeros({}, g[0].dtype());
      if (needs[0]) r[0] = reduce_grad(where(cd, g[0], zero), as, ad);
      if (needs[1]) r[1] = reduce_grad(where(cd, zero, g[0]), bs, bd);
      return r;
    });
  }
  return out;
}

namespace {
// maximum/minimum: the larger (smaller) input gets the gradient; ties split it half and half.
Tensor extremum(const Tensor& a, const Tensor& b, bool is_max) {
  const char* name = is_max ? "maximum" : "minimum";
  DType dt = result_type(a, b);
  Tensor out = dispatch_all(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return map2<T, T>(a, b, dt, name, [is_max](T x, T y) {
      if constexpr (std::is_floating_point_v<T>) {
        if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
      }
      return is_max ? (x > y ? x : y) : (x < y ? x : y);
    });
  });
  if (needs_history({a, b})) {
    SavedTensor sa(a, false), sb(b, false);
    Shape as = a.shape(), bs = b.shape();
    DType ad = a.dtype(), bd = b.dtype();
    set_history(name, {a, b}, {out}, [=](const TensorList& g, const std::vector<bool>& needs) {
      Tensor x = sa.unpack(name), y = sb.unpack(name);
      Tensor wins = to_dtype(compare(is_max ? Compare::Gt : Compare::Lt, x, y), g[0].dtype());
      Tensor ties = mul(to_dtype(compare(Compare::Eq, x, y), g[0].dtype()), scalar_tensor(Scalar(0.5), g[0].dtype()));
      Tensor wa = add(wins, ties);
      TensorList r(2);
      if (needs[0]) r[0] = reduce_grad(mul(g[0], wa), as, ad);
      if (needs[1]) r[1] = reduce_grad(mul(g[0], sub(scalar_tensor(Scalar(1.0), wa.dtype()), wa)), bs, bd);
      return r;
    });
  }
  return out;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(a, b, true); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(a, b, false); }

static Tensor int64_scalar(int64_t v) {  // exact (a double can't hold INT64_MAX)
  Tensor t = Tensor::empty({}, DType::Int64);
  *t.data<int64_t>() = v;
  return t;
}

Tensor clamp(const Tensor& x, const Tensor& lo, const Tensor& hi) {
  NC_CHECK(lo.defined() || hi.defined(), ValueError, "[clamp] at least one of min and max must be given");
  DType dt = x.dtype();
  if (lo.defined()) dt = promote_types(dt, result_type(x, lo));
  if (hi.defined()) dt = promote_types(dt, result_type(x, hi));
  Tensor l = lo.defined() ? lo : full({}, Scalar(-INFINITY), is_floating(dt) ? dt : DType::Float64);
  Tensor h = hi.defined() ? hi : full({}, Scalar(INFINITY), is_floating(dt) ? dt : DType::Float64);
  if (!is_floating(dt)) {
    // Integer clamp: bounds that were not given must not limit anything.
    l = lo.defined() ? lo : int64_scalar(std::numeric_limits<int64_t>::min());
    h = hi.defined() ? hi : int64_scalar(std::numeric_limits<int64_t>::max());
  }
  Tensor out = dispatch_all(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return map3<T, T>(x, l, h, dt, "clamp", [](T v, T a, T b) {
      if constexpr (std::is_floating_point_v<T>) {
        if (std::isnan(v)) return v;
        if (std::isnan(a)) return a;  // a NaN bound gives NaN, as in PyTorch
        if (std::isnan(b)) return b;
      }
      // min(max(v, a), b): with a > b every element becomes b, as in PyTorch.
      const T r = v < a ? a : v;
      return r > b ? b : r;
    });
  });
  if (needs_history({x, lo, hi})) {
    SavedTensor sx(x, false), sl(l, false), sh(h, false);
    Shape xs = x.shape(), ls = lo.defined() ? lo.shape() : Shape{}, hs = hi.defined() ? hi.shape() : Shape{};
    DType xd = x.dtype(), ld = lo.defined() ? lo.dtype() : dt, hd = hi.defined() ? hi.dtype() : dt;
    set_history("clamp", {x, lo, hi}, {out}, [=](const TensorList& g, const std::vector<bool>& needs) {
      Tensor v = sx.unpack("clamp"), a = sl.unpack("clamp"), b = sh.unpack("clamp");
      Tensor zero = zeros({}, g[0].dtype());
      Tensor below = compare(Compare::Lt, v, a), above = compare(Compare::Gt, v, b);
      TensorList r(3);
      if (needs[0]) r[0] = reduce_grad(where(logical(Logical::Or, below, above), zero, g[0]), xs, xd);
      if (needs[1]) r[1] = reduce_grad(where(below, g[0], zero), ls, ld);
      if (needs[2]) r[2] = reduce_grad(where(logical(Logical::And, above, logical_not(below)), g[0], zero), hs, hd);
      return r;
    });
  }
  return out;
}

// --- comparisons and logic (no gradients) ---------------------------------------------------------

Tensor compare(Compare op, const Tensor& a, const Tensor& b) {
  DType dt = result_type(a, b);
  return dispatch_all(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (op) {
      case Compare::Eq: return map2<T, bool>(a, b, DType::Bool, "eq", [](T x, T y) { return x == y; });
      case Compare::Ne: return map2<T, bool>(a, b, DType::Bool, "ne", [](T x, T y) { return x != y; });
      case Compare::Lt: return map2<T, bool>(a, b, DType::Bool, "lt", [](T x, T y) { return x < y; });
      case Compare::Le: return map2<T, bool>(a, b, DType::Bool, "le", [](T x, T y) { return x <= y; });
      case Compare::Gt: return map2<T, bool>(a, b, DType::Bool, "gt", [](T x, T y) { return x > y; });
      default: return map2<T, bool>(a, b, DType::Bool, "ge", [](T x, T y) { return x >= y; });
    }
  });
}

Tensor logical(Logical op, const Tensor& a, const Tensor& b) {
  Tensor x = as_compute(a, DType::Bool), y = as_compute(b, DType::Bool);
  switch (op) {
    case Logical::And: return map2<bool, bool>(x, y, DType::Bool, "logical_and", [](bool p, bool q) { return p && q; });
    case Logical::Or: return map2<bool, bool>(x, y, DType::Bool, "logical_or", [](bool p, bool q) { return p || q; });
    default: return map2<bool, bool>(x, y, DType::Bool, "logical_xor", [](bool p, bool q) { return p != q; });
  }
}

Tensor logical_not(const Tensor& x) {
  return map1<bool, bool>(as_compute(x, DType::Bool), DType::Bool, [](bool p) { return !p; });
}

namespace {
template <class P>
Tensor float_test(const Tensor& x, P pred) {
  if (!is_floating(x.dtype())) return full(x.shape(), Scalar::boolean(pred(0.0)), DType::Bool);
  return dispatch_floating(x.dtype(), "isnan", [&](auto tag) {
    using T = typename decltype(tag)::type;
    return map1<T, bool>(x, DType::Bool, [&](T v) { return pred(v); });
  });
}
}  // namespace

Tensor isnan(const Tensor& x) { return float_test(x, [](auto v) { return std::isnan(v); }); }
Tensor isinf(const Tensor& x) { return float_test(x, [](auto v) { return std::isinf(v); }); }
Tensor isfinite(const Tensor& x) { return float_test(x, [](auto v) { return std::isfinite(v); }); }

}  // namespace nc
