#include "kernels/activation.h"

#include "kernels/activation_formulas.h"
#include "kernels/isa.h"
#include "kernels/vecmath_avx2.h"

namespace nc::kernels::NC_ISA {
namespace {

// Each function is a struct built from its two parameters, with f(x) and the derivative df(x)
// on one element (generic) or eight (AVX2); forward/backward below map them over buffers.

#if NC_HAVE_AVX2

using V = __m256;

inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
inline V add(V a, V b) { return _mm256_add_ps(a, b); }
inline V div(V a, V b) { return _mm256_div_ps(a, b); }
inline V lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
inline V gt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
inline V zero() { return _mm256_setzero_ps(); }
inline V one() { return set1(1.0f); }
inline V select(V mask, V if_true, V if_false) { return _mm256_blendv_ps(if_false, if_true, mask); }
// NaN-propagating clamp is not needed: every function blends NaN inputs back at the end.
inline V clamp(V x, float lo, float hi) { return _mm256_min_ps(_mm256_max_ps(x, set1(lo)), set1(hi)); }

// PyTorch's special values: NaN in, NaN out; f(-inf) = -inf * 0 = NaN for GELU, SiLU and Mish,
// and their derivatives are NaN at both infinities.
inline V nan_if_neg_inf(V r, V x) {
  return select(_mm256_or_ps(isnan8(x), _mm256_cmp_ps(x, set1(-INFINITY), _CMP_EQ_OQ)), set1(NAN), r);
}
inline V nan_if_inf(V r, V x) {
  return select(_mm256_or_ps(isnan8(x), _mm256_cmp_ps(abs8(x), set1(INFINITY), _CMP_EQ_OQ)), set1(NAN), r);
}

// x Phi(x) = x erfc(-z) / 2, z = x / sqrt 2: 1 + erf(z) for |z| < 0.5, else erfc(|z|) from the
// exact square z^2 = x^2 / 2 (vecmath_avx2.h). For x < 0 the factor x / 2 goes inside the scaled
// exponential, so tiny results round once. |x| is clamped to 15, where erfc underflows.
struct Gelu {
  V x, xc, es, small, neg_tail;
  Erfc8 c;
  Gelu(double, double) {}
  void prepare(V in) {
    x = in;
    xc = clamp(x, -15.0f, 15.0f);
    V hx = mul(xc, xc);
    V z = mul(xc, set1(0.70710678118654752f));
    V a = abs8(z);
    c = erfc8_parts(a, mul(hx, set1(0.5f)), mul(_mm256_fmsub_ps(xc, xc, hx), set1(0.5f)));
    es = erf_small8(z);
    small = lt(a, set1(0.5f));
    neg_tail = _mm256_andnot_ps(small, lt(x, zero()));
  }
  V f(V in) {
    prepare(in);
    V cdf2 = select(small, add(one(), es), _mm256_sub_ps(set1(2.0f), times(c.e, c.q)));
    V head = mul(x, mul(set1(0.5f), cdf2));
    V tail = times(c.e, mul(mul(set1(0.5f), xc), c.q));
    return nan_if_neg_inf(select(neg_tail, tail, head), x);
  }
  // Phi(x) + x phi(x), phi(x) = e^(-z^2) / sqrt(2 pi).
  V df(V in) {
    prepare(in);
    const V k = set1(0.39894228040143268f);
    V pdf_q = _mm256_fnmadd_ps(k, c.lo, k);
    V cdf = select(small, _mm256_fmadd_ps(set1(0.5f), es, set1(0.5f)),
                   _mm256_fnmadd_ps(set1(0.5f), times(c.e, c.q), one()));
    V head = _mm256_fmadd_ps(xc, times(c.e, pdf_q), cdf);
    V tail = times(c.e, _mm256_fmadd_ps(set1(0.5f), c.q, mul(xc, pdf_q)));
    return nan_if_inf(select(neg_tail, tail, head), x);
  }
};

// x sigmoid(2u), u = sqrt(2/pi) x (1 + 0.044715 x^2): x / (1 + e^-2u) for x >= 0, and for x < 0
// x e^2u / (1 + e^2u) with x / (1 + e^2u) inside the scaled exponential. -2|u| is computed in
// double and split into float hi + lo, e^(hi + lo) = e^hi (1 + lo): in float, its rounding (up to
// |u| 2^-23) would be a relative error of the result, hundreds of ULP in the tail near x = -10.
struct GeluTanh {
  V x, xc, e, s, du, corr;
  Exp8Parts ep;
  GeluTanh(double, double) {}
  static __m256d minus_two_abs_u(__m256d v) {
    const __m256d two_k = _mm256_set1_pd(2 * formulas::kSqrt2OverPi);
    const __m256d two_kc = _mm256_set1_pd(2 * formulas::kSqrt2OverPi * formulas::kGeluCoef);
    __m256d u2 = _mm256_mul_pd(v, _mm256_fmadd_pd(two_kc, _mm256_mul_pd(v, v), two_k));
    return _mm256_or_pd(u2, _mm256_set1_pd(-0.0));  // -|2u|
  }
  void prepare(V in) {
    x = in;
    xc = clamp(x, -20.0f, 20.0f);  // beyond +-20 the result is x (or 0) and the derivative 1 (or 0)
    __m256d lo_d = minus_two_abs_u(_mm256_cvtps_pd(_mm256_castps256_ps128(xc)));
    __m256d hi_d = minus_two_abs_u(_mm256_cvtps_pd(_mm256_extractf128_ps(xc, 1)));
    __m128 lo_f = _mm256_cvtpd_ps(lo_d), hi_f = _mm256_cvtpd_ps(hi_d);
    V v = _mm256_set_m128(hi_f, lo_f);
    V rest = _mm256_set_m128(_mm256_cvtpd_ps(_mm256_sub_pd(hi_d, _mm256_cvtps_pd(hi_f))),
                             _mm256_cvtpd_ps(_mm256_sub_pd(lo_d, _mm256_cvtps_pd(lo_f))));
    corr = add(one(), rest);
    du = _mm256_fmadd_ps(set1(0.10703222440890037f), mul(xc, xc), set1(0.79788456080286536f));
    ep = exp8_parts(v);
    e = times(ep, corr);
    s = div(one(), add(one(), e));
  }
  V f(V in) {
    prepare(in);
    V head = div(x, add(one(), e));
    V tail = times(ep, mul(mul(xc, s), corr));
    return nan_if_neg_inf(select(lt(x, zero()), tail, head), x);
  }
  // sigmoid(2u) + 2 x u' sigmoid(2u) (1 - sigmoid(2u)).
  V df(V in) {
    prepare(in);
    V t = mul(add(xc, xc), du);
    V head = _mm256_fmadd_ps(t, mul(s, mul(s, e)), s);
    V tail = times(ep, mul(mul(s, _mm256_fmadd_ps(t, s, one())), corr));
    return nan_if_inf(select(lt(x, zero()), tail, head), x);
  }
};

// x / (1 + e^-x), the negative side as x e^x / (1 + e^x) through the scaled exponential.
struct Silu {
  V x, xm, e, s;
  Exp8Parts ep;
  Silu(double, double) {}
  void prepare(V in) {
    x = in;
    xm = _mm256_max_ps(x, set1(-130.0f));
    ep = exp8_parts(_mm256_sub_ps(zero(), abs8(x)));
    e = value(ep);
    s = div(one(), add(one(), e));
  }
  V f(V in) {
    prepare(in);
    V d = add(one(), e);
    return nan_if_neg_inf(select(lt(x, zero()), times(ep, div(xm, d)), div(x, d)), x);
  }
  // s (1 + x (1 - s)), s = sigmoid(x).
  V df(V in) {
    prepare(in);
    V head = mul(s, _mm256_fmadd_ps(x, mul(e, s), one()));
    V tail = times(ep, mul(s, _mm256_fmadd_ps(xm, s, one())));
    return nan_if_inf(select(lt(x, zero()), tail, head), x);
  }
};

// x tanh(softplus(x)) = x n / (n + 2), n = e^x (e^x + 2); the negative side through the scaled
// exponential. Beyond x = 20 the ratio is 1 in float.
struct Mish {
  V x, xm, xp, e, n, d;
  Exp8Parts ep;
  Mish(double, double) {}
  void prepare(V in) {
    x = in;
    xm = _mm256_max_ps(x, set1(-130.0f));
    xp = _mm256_min_ps(x, set1(20.0f));
    ep = exp8_parts(xp);
    e = value(ep);
    n = mul(e, add(e, set1(2.0f)));
    d = add(n, set1(2.0f));
  }
  V f(V in) {
    prepare(in);
    V head = mul(x, div(n, d));
    V tail = times(ep, div(mul(xm, add(e, set1(2.0f))), d));
    return nan_if_neg_inf(select(lt(x, zero()), tail, head), x);
  }
  // tanh(sp) + x sigmoid(x) (1 - tanh^2(sp)), 1 - tanh^2(sp) = (4n + 4) / d^2.
  V df(V in) {
    prepare(in);
    V w = div(_mm256_fmadd_ps(set1(4.0f), n, set1(4.0f)), mul(d, d));
    V sig = div(e, add(one(), e));
    V head = _mm256_fmadd_ps(mul(xp, sig), w, div(n, d));
    V tail = times(ep, _mm256_fmadd_ps(xm, div(w, add(one(), e)), div(add(e, set1(2.0f)), d)));
    return nan_if_inf(select(lt(x, zero()), tail, head), x);
  }
};

struct Elu {
  V as, sc;
  Elu(double alpha, double scale) : as(set1(static_cast<float>(alpha * scale))), sc(set1(static_cast<float>(scale))) {}
  V f(V x) { return select(gt(x, zero()), mul(x, sc), mul(as, expm1_8(x))); }
  V df(V x) { return select(gt(x, zero()), sc, mul(as, exp8(x))); }
};

struct LeakyRelu {
  V slope;
  LeakyRelu(double s, double) : slope(set1(static_cast<float>(s))) {}
  V f(V x) { return select(gt(x, zero()), x, mul(slope, x)); }
  V df(V x) { return select(gt(x, zero()), one(), slope); }
};

// (max(bx, 0) + log1p(e^-|bx|)) / beta, x itself where bx > threshold.
struct Softplus {
  V beta, threshold;
  Softplus(double b, double t) : beta(set1(static_cast<float>(b))), threshold(set1(static_cast<float>(t))) {}
  V f(V x) {
    V bx = mul(x, beta);
    V l = log1p_core8(exp8(_mm256_sub_ps(zero(), abs8(bx))));
    V r = div(add(_mm256_max_ps(bx, zero()), l), beta);
    return select(gt(bx, threshold), x, r);
  }
  V df(V x) {
    V bx = mul(x, beta);
    return select(gt(bx, threshold), one(), sigmoid8(bx));
  }
};

struct Hardtanh {
  V lo, hi;
  Hardtanh(double l, double h) : lo(set1(static_cast<float>(l))), hi(set1(static_cast<float>(h))) {}
  V f(V x) { return select(lt(x, lo), lo, select(gt(x, hi), hi, x)); }
  V df(V x) {
    V out = _mm256_or_ps(_mm256_cmp_ps(x, lo, _CMP_LE_OQ), _mm256_cmp_ps(x, hi, _CMP_GE_OQ));
    return _mm256_andnot_ps(out, one());  // g * 0 or g * 1, as the portable path multiplies
  }
};

template <class A>
void forward(const float* x, float* y, int64_t n, double p0, double p1) {
  A a(p0, p1);
  map8(x, y, n, [&a](V v) { return a.f(v); });
}

template <class A>
void backward(const float* g, const float* x, float* gx, int64_t n, double p0, double p1) {
  A a(p0, p1);
  map8_backward(g, x, gx, n, [&a](V gv, V v) { return mul(gv, a.df(v)); });
}

#else

// The generic build: the reference formulas themselves.
#define NC_ACTIVATION(Name, fn, ...)                                      \
  struct Name {                                                           \
    double p0, p1;                                                        \
    Name(double a, double b) : p0(a), p1(b) {}                            \
    float f(float x) const { return formulas::fn(x __VA_ARGS__); }        \
    float df(float x) const { return formulas::fn##_grad(x __VA_ARGS__); } \
  };
NC_ACTIVATION(Gelu, gelu)
NC_ACTIVATION(GeluTanh, gelu_tanh)
NC_ACTIVATION(Silu, silu)
NC_ACTIVATION(Mish, mish)
NC_ACTIVATION(Elu, elu, , p0, p1)
NC_ACTIVATION(LeakyRelu, leaky_relu, , p0)
NC_ACTIVATION(Softplus, softplus, , p0, p1)
NC_ACTIVATION(Hardtanh, hardtanh, , p0, p1)
#undef NC_ACTIVATION

template <class A>
void forward(const float* x, float* y, int64_t n, double p0, double p1) {
  const A a(p0, p1);
  for (int64_t i = 0; i < n; ++i) y[i] = a.f(x[i]);
}

template <class A>
void backward(const float* g, const float* x, float* gx, int64_t n, double p0, double p1) {
  const A a(p0, p1);
  for (int64_t i = 0; i < n; ++i) gx[i] = g[i] * a.df(x[i]);
}

#endif

template <class A>
constexpr ActivationPair<float> fns() {
  return {forward<A>, backward<A>};
}

}  // namespace

// In the order of the Activation enum.
const ActivationKernels activation_table = {{{fns<Gelu>(), fns<GeluTanh>(), fns<Silu>(), fns<Mish>(), fns<Elu>(),
                                             fns<LeakyRelu>(), fns<Softplus>(), fns<Hardtanh>()}}};

}  // namespace nc::kernels::NC_ISA
