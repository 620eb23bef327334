#include "kernels/norm.h"

namespace nc::kernels::NC_ISA {
namespace {

// sum of f(i) for i in [0, n) with 8 independent accumulators (vectorisable without -ffast-math).
template <class F>
inline double run_sum(int64_t n, const F& f) {
  double a[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) a[j] += f(i + j);
  for (; i < n; ++i) a[0] += f(i);
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

template <class T>
double sum(const T* x, int64_t n) {
  return run_sum(n, [&](int64_t i) { return static_cast<double>(x[i]); });
}

template <class T>
double sqdev(const T* x, int64_t n, double m) {
  return run_sum(n, [&](int64_t i) {
    const double d = static_cast<double>(x[i]) - m;
    return d * d;
  });
}

template <class T>
double dotdev(const T* g, const T* x, int64_t n, double m) {
  return run_sum(n, [&](int64_t i) { return static_cast<double>(g[i]) * (static_cast<double>(x[i]) - m); });
}

template <class T>
double wsum(const T* g, const T* w, int64_t n) {
  if (!w) return sum(g, n);
  return run_sum(n, [&](int64_t i) { return static_cast<double>(g[i]) * static_cast<double>(w[i]); });
}

template <class T>
double wdotdev(const T* g, const T* w, const T* x, int64_t n, double m) {
  if (!w) return dotdev(g, x, n, m);
  return run_sum(n, [&](int64_t i) {
    return static_cast<double>(g[i]) * static_cast<double>(w[i]) * (static_cast<double>(x[i]) - m);
  });
}

template <class T>
void axpb(const T* x, T* y, int64_t n, T a, T b) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * a + b;
}

template <class T>
void bn_grad(const T* g, const T* x, T* out, int64_t n, T a, T k, T c) {
  for (int64_t i = 0; i < n; ++i) out[i] = g[i] * a + x[i] * k + c;
}

template <class T>
void ln_forward(const T* x, const T* w, const T* b, T* y, int64_t n, T m, T is) {
  if (w && b) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) * is * w[i] + b[i];
  } else if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) * is * w[i];
  } else if (b) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) * is + b[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) * is;
  }
}

template <class T>
void ln_grad(const T* g, const T* w, const T* x, T* out, int64_t n, double m, double is, double a, double c) {
  const double isc = is * c;
  if (w) {
    for (int64_t i = 0; i < n; ++i)
      out[i] = static_cast<T>(is * (static_cast<double>(g[i]) * w[i] - a - (x[i] - m) * isc));
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(is * (static_cast<double>(g[i]) - a - (x[i] - m) * isc));
  }
}

template <class T>
void ln_param_grad(const T* g, const T* x, double* aw, double* ab, int64_t n, double m, double is) {
  for (int64_t i = 0; i < n; ++i) {
    aw[i] += static_cast<double>(g[i]) * ((static_cast<double>(x[i]) - m) * is);
    ab[i] += static_cast<double>(g[i]);
  }
}

template <class T>
constexpr NormOps<T> ops() {
  return {sum<T>, sqdev<T>, dotdev<T>, wsum<T>, wdotdev<T>, axpb<T>, bn_grad<T>, ln_forward<T>, ln_grad<T>,
          ln_param_grad<T>};
}

}  // namespace

const NormKernels norm_table = {ops<float>(), ops<double>()};

}  // namespace nc::kernels::NC_ISA
