// Fused recurrent gate math (see rnn.h). float32 takes its sigmoid/tanh from this ISA's vecmath
// kernels (AVX2 polynomials or the C library); float64 uses the C library.
#include "kernels/rnn.h"

#include <cmath>

#include "kernels/isa.h"
#include "kernels/vecmath.h"

namespace nc::kernels::NC_ISA {
namespace {

void sigmoid_inplace(float* x, int64_t n) { vecmath_table.sigmoid_f32(x, x, n); }
void tanh_inplace(float* x, int64_t n) { vecmath_table.tanh_f32(x, x, n); }
void sigmoid_inplace(double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double e = std::exp(-std::fabs(x[i]));
    x[i] = x[i] >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
  }
}
void tanh_inplace(double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
}

template <class T>
void step_dots(const T* a, int64_t rows, int64_t k, const T* w, int64_t n, T* c) {
  constexpr int L = 8;  // independent partial sums (vector lanes), added pairwise at the end
  const int64_t kv = k / L * L;
  for (int64_t r = 0; r < rows; ++r) {
    const T* ar = a + r * k;
    T* cr = c + r * n;
    for (int64_t j = 0; j < n; ++j) {
      const T* wj = w + j * k;
      T s[L] = {};
      for (int64_t p = 0; p < kv; p += L)
        for (int l = 0; l < L; ++l) s[l] += ar[p + l] * wj[p + l];
      for (int64_t p = kv; p < k; ++p) s[p - kv] += ar[p] * wj[p];
      cr[j] += ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    }
  }
}

template <class T>
void rnn_forward(T* g, int64_t rows, int64_t h, bool relu) {
  const int64_t n = rows * h;
  if (!relu) return tanh_inplace(g, n);
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] > T(0) ? g[i] : (g[i] != g[i] ? g[i] : T(0));
}

template <class T>
void rnn_backward(const T* y, const T* dh, T* dg, int64_t rows, int64_t h, bool relu) {
  const int64_t n = rows * h;
  if (relu)
    for (int64_t i = 0; i < n; ++i) dg[i] = y[i] > T(0) ? dh[i] : T(0);
  else
    for (int64_t i = 0; i < n; ++i) dg[i] = dh[i] * (T(1) - y[i] * y[i]);
}

template <class T>
void lstm_forward(T* gates, T* c, T* hc, int64_t rows, int64_t h) {
  for (int64_t r = 0; r < rows; ++r) {
    T* g = gates + r * 4 * h;
    T* cr = c + r * h;
    T* hr = hc + r * h;
    sigmoid_inplace(g, 2 * h);  // i, f
    tanh_inplace(g + 2 * h, h);
    sigmoid_inplace(g + 3 * h, h);
    const T *gi = g, *gf = g + h, *gg = g + 2 * h;
    for (int64_t j = 0; j < h; ++j) {
      cr[j] = gf[j] * cr[j] + gi[j] * gg[j];
      hr[j] = cr[j];
    }
    tanh_inplace(hr, h);
    const T* go = g + 3 * h;
    for (int64_t j = 0; j < h; ++j) hr[j] *= go[j];
  }
}

template <class T>
void lstm_backward(const T* gates, const T* c, const T* c_prev, const T* dhc, T* dc, T* dgates, int64_t rows,
                   int64_t h) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* g = gates + r * 4 * h;
    const T *gi = g, *gf = g + h, *gg = g + 2 * h, *go = g + 3 * h;
    const T *cr = c + r * h, *cp = c_prev + r * h, *dh = dhc + r * h;
    T* dcr = dc + r * h;
    T* dg = dgates + r * 4 * h;
    T* tc = dg + 3 * h;  // tanh(c) first, then the o gradient over it
    for (int64_t j = 0; j < h; ++j) tc[j] = cr[j];
    tanh_inplace(tc, h);
    for (int64_t j = 0; j < h; ++j) {
      const T t = tc[j], i = gi[j], f = gf[j], gv = gg[j], o = go[j];
      const T dct = dcr[j] + dh[j] * o * (T(1) - t * t);
      dg[j] = dct * gv * i * (T(1) - i);
      dg[h + j] = dct * cp[j] * f * (T(1) - f);
      dg[2 * h + j] = dct * i * (T(1) - gv * gv);
      dg[3 * h + j] = dh[j] * t * o * (T(1) - o);
      dcr[j] = dct * f;
    }
  }
}

template <class T>
void gru_forward(T* gx, const T* gh, const T* h_prev, T* h_out, int64_t rows, int64_t h) {
  for (int64_t r = 0; r < rows; ++r) {
    T* x = gx + r * 3 * h;
    const T* hh = gh + r * 3 * h;
    const T* hp = h_prev + r * h;
    T* ho = h_out + r * h;
    for (int64_t j = 0; j < 2 * h; ++j) x[j] += hh[j];
    sigmoid_inplace(x, 2 * h);  // r, z
    for (int64_t j = 0; j < h; ++j) x[2 * h + j] += x[j] * hh[2 * h + j];
    tanh_inplace(x + 2 * h, h);  // n
    for (int64_t j = 0; j < h; ++j) {
      const T z = x[h + j], n = x[2 * h + j];
      ho[j] = n + z * (hp[j] - n);
    }
  }
}

template <class T>
void gru_backward(const T* gates, const T* gh, const T* h_prev, const T* dh, T* dgx, T* dgh, T* dh_prev, int64_t rows,
                  int64_t h) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* g = gates + r * 3 * h;
    const T* hn = gh + r * 3 * h + 2 * h;
    const T* hp = h_prev + r * h;
    const T* d = dh + r * h;
    T* dx = dgx + r * 3 * h;
    T* dhh = dgh + r * 3 * h;
    T* dp = dh_prev + r * h;
    for (int64_t j = 0; j < h; ++j) {
      const T rg = g[j], z = g[h + j], n = g[2 * h + j], dv = d[j];
      const T dn = dv * (T(1) - z) * (T(1) - n * n);
      const T dr = dn * hn[j] * rg * (T(1) - rg);
      const T dz = dv * (hp[j] - n) * z * (T(1) - z);
      dx[j] = dr;
      dx[h + j] = dz;
      dx[2 * h + j] = dn;
      dhh[j] = dr;
      dhh[h + j] = dz;
      dhh[2 * h + j] = dn * rg;
      dp[j] = dv * z;
    }
  }
}

template <class T>
constexpr RnnOps<T> ops() {
  return {step_dots<T>, rnn_forward<T>, rnn_backward<T>, lstm_forward<T>, lstm_backward<T>, gru_forward<T>, gru_backward<T>};
}

}  // namespace

const RnnKernels rnn_table = {ops<float>(), ops<double>()};

}  // namespace nc::kernels::NC_ISA
