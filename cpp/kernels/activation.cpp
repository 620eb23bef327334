#include "kernels/activation.h"

#include "kernels/activation_formulas.h"
#include "kernels/isa.h"
#include "kernels/vecmath_avx2.h"
#include "kernels/vecmath_avx512.h"

namespace nc::kernels::NC_ISA {
namespace {

// Each function is a struct built from its two parameters, with f(x) and the derivative df(x)
// on one element (generic) or one vector V (8 lanes on AVX2, 16 on AVX-512); forward/backward
// below map them over buffers. The structs are written once over the primitives below, which
// each vector build maps onto its intrinsics and its vecmath header: the same operations in the
// same order on every lane, so the avx512 build gives the avx2 build's floats.

#if NC_HAVE_AVX2

// -2|u| for u = sqrt(2/pi) x (1 + 0.044715 x^2), on 8 floats in double: float hi and lo parts.
inline void minus_two_abs_u8(__m256 xc, __m256& v, __m256& rest) {
  auto in_double = [](__m256d x) {
    const __m256d two_k = _mm256_set1_pd(2 * formulas::kSqrt2OverPi);
    const __m256d two_kc = _mm256_set1_pd(2 * formulas::kSqrt2OverPi * formulas::kGeluCoef);
    __m256d u2 = _mm256_mul_pd(x, _mm256_fmadd_pd(two_kc, _mm256_mul_pd(x, x), two_k));
    return _mm256_or_pd(u2, _mm256_set1_pd(-0.0));  // -|2u|
  };
  __m256d lo_d = in_double(_mm256_cvtps_pd(_mm256_castps256_ps128(xc)));
  __m256d hi_d = in_double(_mm256_cvtps_pd(_mm256_extractf128_ps(xc, 1)));
  __m128 lo_f = _mm256_cvtpd_ps(lo_d), hi_f = _mm256_cvtpd_ps(hi_d);
  v = _mm256_set_m128(hi_f, lo_f);
  rest = _mm256_set_m128(_mm256_cvtpd_ps(_mm256_sub_pd(hi_d, _mm256_cvtps_pd(hi_f))),
                         _mm256_cvtpd_ps(_mm256_sub_pd(lo_d, _mm256_cvtps_pd(lo_f))));
}

#endif

#if NC_HAVE_AVX512

using V = __m512;
using M = __mmask16;  // a compare result

inline V splat(float v) { return set16(v); }
inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
inline V add(V a, V b) { return _mm512_add_ps(a, b); }
inline V sub(V a, V b) { return _mm512_sub_ps(a, b); }
inline V div(V a, V b) { return _mm512_div_ps(a, b); }
inline V mul_add(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline V fnma(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a b
inline V fms(V a, V b, V c) { return _mm512_fmsub_ps(a, b, c); }    // a b - c
inline V vmin(V a, V b) { return _mm512_min_ps(a, b); }
inline V vmax(V a, V b) { return _mm512_max_ps(a, b); }
inline V vabs(V x) { return abs16(x); }
inline M cmp_lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
inline M cmp_gt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
inline M cmp_le(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
inline M cmp_ge(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
inline M cmp_eq(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
inline M is_nan(V x) { return isnan16(x); }
inline M mask_or(M a, M b) { return a | b; }
inline M mask_andnot(M a, M b) { return static_cast<M>(~a & b); }
inline V zero() { return _mm512_setzero_ps(); }
inline V select(M mask, V if_true, V if_false) { return _mm512_mask_mov_ps(if_false, mask, if_true); }

using ExpParts = Exp16Parts;
using ErfcParts = Erfc16;
inline ExpParts exp_parts(V x) { return exp16_parts(x); }
inline ErfcParts erfc_parts(V a, V hi, V lo) { return erfc16_parts(a, hi, lo); }
inline V erf_small(V z) { return erf_small16(z); }
inline V vexp(V x) { return exp16(x); }
inline V vexpm1(V x) { return expm1_16(x); }
inline V vsigmoid(V x) { return sigmoid16(x); }
inline V vlog1p_core(V x) { return log1p_core16(x); }

// For GeluTanh, on two 8-lane halves (the double arithmetic of the avx2 build).
inline void minus_two_abs_u(V xc, V& v, V& rest) {
  __m256 v0, r0, v1, r1;
  minus_two_abs_u8(_mm512_castps512_ps256(xc), v0, r0);
  minus_two_abs_u8(_mm512_extractf32x8_ps(xc, 1), v1, r1);
  v = _mm512_insertf32x8(_mm512_castps256_ps512(v0), v1, 1);
  rest = _mm512_insertf32x8(_mm512_castps256_ps512(r0), r1, 1);
}

template <class F>
inline void map_v(const float* x, float* y, int64_t n, F f) { map16(x, y, n, f); }
template <class F>
inline void map_v_backward(const float* g, const float* x, float* gx, int64_t n, F f) {
  map16_backward(g, x, gx, n, f);
}

#elif NC_HAVE_AVX2

using V = __m256;
using M = __m256;  // a compare result: all-ones or all-zeros lanes

inline V splat(float v) { return set1(v); }
inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
inline V add(V a, V b) { return _mm256_add_ps(a, b); }
inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
inline V div(V a, V b) { return _mm256_div_ps(a, b); }
inline V mul_add(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline V fnma(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a b
inline V fms(V a, V b, V c) { return _mm256_fmsub_ps(a, b, c); }    // a b - c
inline V vmin(V a, V b) { return _mm256_min_ps(a, b); }
inline V vmax(V a, V b) { return _mm256_max_ps(a, b); }
inline V vabs(V x) { return abs8(x); }
inline M cmp_lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
inline M cmp_gt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
inline M cmp_le(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
inline M cmp_ge(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
inline M cmp_eq(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
inline M is_nan(V x) { return isnan8(x); }
inline M mask_or(M a, M b) { return _mm256_or_ps(a, b); }
inline M mask_andnot(M a, M b) { return _mm256_andnot_ps(a, b); }
inline V zero() { return _mm256_setzero_ps(); }
inline V select(M mask, V if_true, V if_false) { return _mm256_blendv_ps(if_false, if_true, mask); }

using ExpParts = Exp8Parts;
using ErfcParts = Erfc8;
inline ExpParts exp_parts(V x) { return exp8_parts(x); }
inline ErfcParts erfc_parts(V a, V hi, V lo) { return erfc8_parts(a, hi, lo); }
inline V erf_small(V z) { return erf_small8(z); }
inline V vexp(V x) { return exp8(x); }
inline V vexpm1(V x) { return expm1_8(x); }
inline V vsigmoid(V x) { return sigmoid8(x); }
inline V vlog1p_core(V x) { return log1p_core8(x); }

inline void minus_two_abs_u(V xc, V& v, V& rest) { minus_two_abs_u8(xc, v, rest); }

template <class F>
inline void map_v(const float* x, float* y, int64_t n, F f) { map8(x, y, n, f); }
template <class F>
inline void map_v_backward(const float* g, const float* x, float* gx, int64_t n, F f) {
  map8_backward(g, x, gx, n, f);
}

#endif

#if NC_HAVE_AVX2

inline V one() { return splat(1.0f); }
// NaN-propagating clamp is not needed: every function blends NaN inputs back at the end.
inline V clamp(V x, float lo, float hi) { return vmin(vmax(x, splat(lo)), splat(hi)); }

// PyTorch's special values: NaN in, NaN out; f(-inf) = -inf * 0 = NaN for GELU, SiLU and Mish,
// and their derivatives are NaN at both infinities.
inline V nan_if_neg_inf(V r, V x) { return select(mask_or(is_nan(x), cmp_eq(x, splat(-INFINITY))), splat(NAN), r); }
inline V nan_if_inf(V r, V x) { return select(mask_or(is_nan(x), cmp_eq(vabs(x), splat(INFINITY))), splat(NAN), r); }

// x Phi(x) = x erfc(-z) / 2, z = x / sqrt 2: 1 + erf(z) for |z| < 0.5, else erfc(|z|) from the
// exact square z^2 = x^2 / 2 (vecmath_avx2.h). For x < 0 the factor x / 2 goes inside the scaled
// exponential, so tiny results round once. |x| is clamped to 15, where erfc underflows.
struct Gelu {
  V x, xc, es;
  M small, neg_tail;
  ErfcParts c;
  Gelu(double, double) {}
  void prepare(V in) {
    x = in;
    xc = clamp(x, -15.0f, 15.0f);
    V hx = mul(xc, xc);
    V z = mul(xc, splat(0.70710678118654752f));
    V a = vabs(z);
    c = erfc_parts(a, mul(hx, splat(0.5f)), mul(fms(xc, xc, hx), splat(0.5f)));
    es = erf_small(z);
    small = cmp_lt(a, splat(0.5f));
    neg_tail = mask_andnot(small, cmp_lt(x, zero()));
  }
  V f(V in) {
    prepare(in);
    V cdf2 = select(small, add(one(), es), sub(splat(2.0f), times(c.e, c.q)));
    V head = mul(x, mul(splat(0.5f), cdf2));
    V tail = times(c.e, mul(mul(splat(0.5f), xc), c.q));
    return nan_if_neg_inf(select(neg_tail, tail, head), x);
  }
  // Phi(x) + x phi(x), phi(x) = e^(-z^2) / sqrt(2 pi).
  V df(V in) {
    prepare(in);
    const V k = splat(0.39894228040143268f);
    V pdf_q = fnma(k, c.lo, k);
    V cdf = select(small, mul_add(splat(0.5f), es, splat(0.5f)), fnma(splat(0.5f), times(c.e, c.q), one()));
    V head = mul_add(xc, times(c.e, pdf_q), cdf);
    V tail = times(c.e, mul_add(splat(0.5f), c.q, mul(xc, pdf_q)));
    return nan_if_inf(select(neg_tail, tail, head), x);
  }
};

// x sigmoid(2u), u = sqrt(2/pi) x (1 + 0.044715 x^2): x / (1 + e^-2u) for x >= 0, and for x < 0
// x e^2u / (1 + e^2u) with x / (1 + e^2u) inside the scaled exponential. -2|u| is computed in
// double and split into float hi + lo, e^(hi + lo) = e^hi (1 + lo): in float, its rounding (up to
// |u| 2^-23) would be a relative error of the result, hundreds of ULP in the tail near x = -10.
struct GeluTanh {
  V x, xc, e, s, du, corr;
  ExpParts ep;
  GeluTanh(double, double) {}
  void prepare(V in) {
    x = in;
    xc = clamp(x, -20.0f, 20.0f);  // beyond +-20 the result is x (or 0) and the derivative 1 (or 0)
    V v, rest;
    minus_two_abs_u(xc, v, rest);
    corr = add(one(), rest);
    du = mul_add(splat(0.10703222440890037f), mul(xc, xc), splat(0.79788456080286536f));
    ep = exp_parts(v);
    e = times(ep, corr);
    s = div(one(), add(one(), e));
  }
  V f(V in) {
    prepare(in);
    V head = div(x, add(one(), e));
    V tail = times(ep, mul(mul(xc, s), corr));
    return nan_if_neg_inf(select(cmp_lt(x, zero()), tail, head), x);
  }
  // sigmoid(2u) + 2 x u' sigmoid(2u) (1 - sigmoid(2u)).
  V df(V in) {
    prepare(in);
    V t = mul(add(xc, xc), du);
    V head = mul_add(t, mul(s, mul(s, e)), s);
    V tail = times(ep, mul(mul(s, mul_add(t, s, one())), corr));
    return nan_if_inf(select(cmp_lt(x, zero()), tail, head), x);
  }
};

// x / (1 + e^-x), the negative side as x e^x / (1 + e^x) through the scaled exponential.
struct Silu {
  V x, xm, e, s;
  ExpParts ep;
  Silu(double, double) {}
  void prepare(V in) {
    x = in;
    xm = vmax(x, splat(-130.0f));
    ep = exp_parts(sub(zero(), vabs(x)));
    e = value(ep);
    s = div(one(), add(one(), e));
  }
  V f(V in) {
    prepare(in);
    V d = add(one(), e);
    return nan_if_neg_inf(select(cmp_lt(x, zero()), times(ep, div(xm, d)), div(x, d)), x);
  }
  // s (1 + x (1 - s)), s = sigmoid(x).
  V df(V in) {
    prepare(in);
    V head = mul(s, mul_add(x, mul(e, s), one()));
    V tail = times(ep, mul(s, mul_add(xm, s, one())));
    return nan_if_inf(select(cmp_lt(x, zero()), tail, head), x);
  }
};

// x tanh(softplus(x)) = x n / (n + 2), n = e^x (e^x + 2); the negative side through the scaled
// exponential. Beyond x = 20 the ratio is 1 in float.
struct Mish {
  V x, xm, xp, e, n, d;
  ExpParts ep;
  Mish(double, double) {}
  void prepare(V in) {
    x = in;
    xm = vmax(x, splat(-130.0f));
    xp = vmin(x, splat(20.0f));
    ep = exp_parts(xp);
    e = value(ep);
    n = mul(e, add(e, splat(2.0f)));
    d = add(n, splat(2.0f));
  }
  V f(V in) {
    prepare(in);
    V head = mul(x, div(n, d));
    V tail = times(ep, div(mul(xm, add(e, splat(2.0f))), d));
    return nan_if_neg_inf(select(cmp_lt(x, zero()), tail, head), x);
  }
  // tanh(sp) + x sigmoid(x) (1 - tanh^2(sp)), 1 - tanh^2(sp) = (4n + 4) / d^2.
  V df(V in) {
    prepare(in);
    V w = div(mul_add(splat(4.0f), n, splat(4.0f)), mul(d, d));
    V sig = div(e, add(one(), e));
    V head = mul_add(mul(xp, sig), w, div(n, d));
    V tail = times(ep, mul_add(xm, div(w, add(one(), e)), div(add(e, splat(2.0f)), d)));
    return nan_if_inf(select(cmp_lt(x, zero()), tail, head), x);
  }
};

struct Elu {
  V as, sc;
  Elu(double alpha, double scale)
      : as(splat(static_cast<float>(alpha * scale))), sc(splat(static_cast<float>(scale))) {}
  V f(V x) { return select(cmp_gt(x, zero()), mul(x, sc), mul(as, vexpm1(x))); }
  V df(V x) { return select(cmp_gt(x, zero()), sc, mul(as, vexp(x))); }
};

struct LeakyRelu {
  V slope;
  LeakyRelu(double s, double) : slope(splat(static_cast<float>(s))) {}
  V f(V x) { return select(cmp_gt(x, zero()), x, mul(slope, x)); }
  V df(V x) { return select(cmp_gt(x, zero()), one(), slope); }
};

// (max(bx, 0) + log1p(e^-|bx|)) / beta, x itself where bx > threshold.
struct Softplus {
  V beta, threshold;
  Softplus(double b, double t) : beta(splat(static_cast<float>(b))), threshold(splat(static_cast<float>(t))) {}
  V f(V x) {
    V bx = mul(x, beta);
    V l = vlog1p_core(vexp(sub(zero(), vabs(bx))));
    V r = div(add(vmax(bx, zero()), l), beta);
    return select(cmp_gt(bx, threshold), x, r);
  }
  V df(V x) {
    V bx = mul(x, beta);
    return select(cmp_gt(bx, threshold), one(), vsigmoid(bx));
  }
};

struct Hardtanh {
  V lo, hi;
  Hardtanh(double l, double h) : lo(splat(static_cast<float>(l))), hi(splat(static_cast<float>(h))) {}
  V f(V x) { return select(cmp_lt(x, lo), lo, select(cmp_gt(x, hi), hi, x)); }
  // g * 0 or g * 1, as the portable path multiplies.
  V df(V x) { return select(mask_or(cmp_le(x, lo), cmp_ge(x, hi)), zero(), one()); }
};

template <class A>
void forward(const float* x, float* y, int64_t n, double p0, double p1) {
  A a(p0, p1);
  map_v(x, y, n, [&a](V v) { return a.f(v); });
}

template <class A>
void backward(const float* g, const float* x, float* gx, int64_t n, double p0, double p1) {
  A a(p0, p1);
  map_v_backward(g, x, gx, n, [&a](V gv, V v) { return mul(gv, a.df(v)); });
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
