// Standalone GEMM test and benchmark: every ISA table, every transpose combination, odd sizes,
// padded strides, alpha/beta (beta == 0 with NaN-filled C), fused bias/ReLU, thread-count
// independence. Usage: test_gemm            -> runs the checks, last line "N passed, N failed"
//                      test_gemm bench [isa] -> GFLOP/s (isa: a name of kernels/isa_list.h, default avx2)
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"

namespace k = nc::kernels;

static int g_pass = 0, g_fail = 0;

struct Case {
  int64_t m, n, k;
};

template <class T>
struct Mat {
  int64_t rows, cols, ld;
  std::vector<T> v;
  Mat(int64_t r, int64_t c, int64_t pad, std::mt19937& rng) : rows(r), cols(c), ld(c + pad), v(r * (c + pad)) {
    std::uniform_real_distribution<double> d(-1.0, 1.0);
    for (auto& x : v) x = static_cast<T>(d(rng));
  }
};

template <class T>
void gemm_call(const k::GemmKernels& t, bool ta, bool tb, int64_t m, int64_t n, int64_t kk, T alpha,
               const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc,
               const float* bias = nullptr, int act = 0) {
  if constexpr (sizeof(T) == 4) {
    if (bias || act)
      t.f32.gemm_bias_act(ta, tb, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc, bias, act);
    else
      t.f32.gemm(ta, tb, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
  } else {
    t.f64.gemm(ta, tb, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
  }
}

// One check against a float64 reference. pad: extra elements per row of A, B and C (the padding
// of C must stay untouched).
template <class T>
bool check(const char* isa, const k::GemmKernels& t, bool ta, bool tb, Case cs, double alpha,
           double beta, int pad, std::mt19937& rng, bool use_bias = false, int act = 0) {
  const int64_t m = cs.m, n = cs.n, kk = cs.k;
  Mat<T> A(ta ? kk : m, ta ? m : kk, pad, rng);
  Mat<T> B(tb ? n : kk, tb ? kk : n, pad ? pad + 1 : 0, rng);
  Mat<T> C(m, n, pad + 2, rng);
  std::vector<float> bias(n);
  for (int64_t j = 0; j < n; ++j) bias[j] = static_cast<float>(0.25 * std::sin(double(j)));
  const T sentinel = static_cast<T>(12345.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = n; j < C.ld; ++j) C.v[i * C.ld + j] = sentinel;
  if (beta == 0.0)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) C.v[i * C.ld + j] = std::numeric_limits<T>::quiet_NaN();
  std::vector<double> ref(m * n), scale(m * n);
  std::vector<double> row(n), arow(n);
  for (int64_t i = 0; i < m; ++i) {
    std::fill(row.begin(), row.end(), 0.0);
    std::fill(arow.begin(), arow.end(), 0.0);
    for (int64_t p = 0; p < kk; ++p) {
      const double av = ta ? A.v[p * A.ld + i] : A.v[i * A.ld + p];
      for (int64_t j = 0; j < n; ++j) {
        const double bv = tb ? B.v[j * B.ld + p] : B.v[p * B.ld + j];
        row[j] += av * bv;
        arow[j] += std::fabs(av * bv);
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      const double c0 = beta == 0.0 ? 0.0 : double(C.v[i * C.ld + j]);
      double r = alpha * row[j] + beta * c0;
      double s = std::fabs(alpha) * arow[j] + std::fabs(beta * c0);
      if (use_bias) { r += bias[j]; s += std::fabs(bias[j]); }
      if (act == 1 && r < 0) r = 0;
      ref[i * n + j] = r;
      scale[i * n + j] = s + 1e-30;
    }
  }
  gemm_call<T>(t, ta, tb, m, n, kk, static_cast<T>(alpha), A.v.data(), A.ld, B.v.data(), B.ld,
               static_cast<T>(beta), C.v.data(), C.ld, use_bias ? bias.data() : nullptr, act);
  const double tol = sizeof(T) == 4 ? 2e-6 * (8.0 + std::sqrt(double(kk))) : 1e-13 * (8.0 + std::sqrt(double(kk)));
  double worst = 0;
  bool ok = true;
  for (int64_t i = 0; i < m && ok; ++i) {
    for (int64_t j = 0; j < C.ld; ++j) {
      const T got = C.v[i * C.ld + j];
      if (j >= n) {
        if (got != sentinel) { ok = false; worst = INFINITY; break; }
        continue;
      }
      const double err = std::fabs(double(got) - ref[i * n + j]) / scale[i * n + j];
      if (!(err <= tol)) { ok = false; worst = err; break; }
      worst = std::max(worst, err);
    }
  }
  if (ok) {
    ++g_pass;
  } else {
    ++g_fail;
    std::printf("FAIL %s %s ta=%d tb=%d m=%lld n=%lld k=%lld alpha=%g beta=%g pad=%d bias=%d act=%d err=%g\n",
                isa, sizeof(T) == 4 ? "sgemm" : "dgemm", ta, tb, (long long)m, (long long)n,
                (long long)kk, alpha, beta, pad, use_bias, act, worst);
  }
  return ok;
}

// Bitwise equality of results with 1 and 2 threads.
template <class T>
void check_threads(const char* isa, const k::GemmKernels& t, bool ta, bool tb, Case cs, std::mt19937& rng) {
  const int64_t m = cs.m, n = cs.n, kk = cs.k;
  Mat<T> A(ta ? kk : m, ta ? m : kk, 3, rng);
  Mat<T> B(tb ? n : kk, tb ? kk : n, n == 1024 ? 0 : 5, rng);
  Mat<T> C0(m, n, 1, rng);
  Mat<T> C1 = C0;
  Mat<T> C2 = C0;
  const int saved = nc::get_num_threads();
  nc::set_num_threads(1);
  gemm_call<T>(t, ta, tb, m, n, kk, T(0.75), A.v.data(), A.ld, B.v.data(), B.ld, T(0.5), C1.v.data(), C1.ld);
  nc::set_num_threads(2);
  gemm_call<T>(t, ta, tb, m, n, kk, T(0.75), A.v.data(), A.ld, B.v.data(), B.ld, T(0.5), C2.v.data(), C2.ld);
  nc::set_num_threads(saved);
  if (std::memcmp(C1.v.data(), C2.v.data(), C1.v.size() * sizeof(T)) == 0) {
    ++g_pass;
  } else {
    ++g_fail;
    std::printf("FAIL threads %s %s ta=%d tb=%d m=%lld n=%lld k=%lld: 1 and 2 threads differ\n", isa,
                sizeof(T) == 4 ? "sgemm" : "dgemm", ta, tb, (long long)m, (long long)n, (long long)kk);
  }
}

template <class T>
void run_table(const char* isa, const k::GemmKernels& t, std::mt19937& rng) {
  const int64_t small_sizes[] = {1, 2, 7, 17, 65};
  std::vector<Case> cases;
  for (int64_t m : small_sizes)
    for (int64_t n : small_sizes)
      for (int64_t kk : small_sizes) cases.push_back({m, n, kk});
  const Case big[] = {{63, 127, 257}, {257, 63, 127}, {127, 257, 63}, {64, 65, 66},  {66, 64, 65},
                      {1, 1024, 784}, {32, 784, 128}, {32, 128, 784}, {32, 512, 160}, {300, 33, 1030},
                      {1003, 517, 301}, {70, 4100, 20}, {5, 3, 2000},  {2000, 3, 5},  {200, 50, 600},
                      {1, 1, 1},      {1, 17, 1},     {17, 1, 1}};
  for (Case c : big) cases.push_back(c);
  int idx = 0;
  for (Case c : cases) {
    for (int tr = 0; tr < 4; ++tr) {
      const bool ta = tr & 1, tb = tr & 2;
      // Cycle alpha/beta/padding over the cases so each combination meets many shapes.
      const double alphas[] = {1.0, -0.5, 2.0, 1.0};
      const double betas[] = {0.0, 1.0, 0.0, -0.75};
      const int pads[] = {0, 3, 1, 16};
      check<T>(isa, t, ta, tb, c, alphas[idx % 4], betas[(idx / 4) % 4], pads[(idx / 16) % 4], rng);
      ++idx;
    }
  }
  // Row strides that are multiples of 512 bytes (the direct path copies such B blocks).
  for (int tr = 0; tr < 4; ++tr) {
    check<T>(isa, t, tr & 1, tr & 2, {32, 1023, 300}, 0.5, 0.0, 1, rng);
    check<T>(isa, t, tr & 1, tr & 2, {20, 1024, 700}, 1.0, 1.0, 0, rng);
  }
  // alpha == 0 and k == 0: C = beta*C.
  check<T>(isa, t, false, false, {9, 33, 0}, 1.0, 0.5, 2, rng);
  check<T>(isa, t, true, true, {9, 33, 0}, 1.0, 0.0, 2, rng);
  check<T>(isa, t, false, true, {9, 33, 20}, 0.0, -1.0, 2, rng);
  if constexpr (sizeof(T) == 4) {
    const Case bc[] = {{1, 10, 7}, {7, 33, 65}, {32, 128, 784}, {300, 100, 300}, {65, 1000, 17}};
    for (Case c : bc)
      for (int tr = 0; tr < 4; ++tr) {
        check<T>(isa, t, tr & 1, tr & 2, c, 1.0, 0.0, 1, rng, true, 1);
        check<T>(isa, t, tr & 1, tr & 2, c, 0.5, 1.0, 0, rng, true, 0);
        check<T>(isa, t, tr & 1, tr & 2, c, 1.0, 0.5, 2, rng, false, 1);
      }
  }
  const Case tc[] = {{1000, 700, 300}, {32, 2048, 300}, {40, 1024, 600}, {32, 784, 128}, {7, 3000, 100}, {130, 130, 600}};
  for (Case c : tc)
    for (int tr = 0; tr < 4; ++tr) check_threads<T>(isa, t, tr & 1, tr & 2, c, rng);
}

// ------------------------------------------------------------------------------------------
static double bench_one(const k::GemmKernels& t, bool ta, bool tb, int64_t m, int64_t n, int64_t kk) {
  std::mt19937 rng(1);
  Mat<float> A(ta ? kk : m, ta ? m : kk, 0, rng), B(tb ? n : kk, tb ? kk : n, 0, rng), C(m, n, 0, rng);
  auto run = [&] { t.f32.gemm(ta, tb, m, n, kk, 1.0f, A.v.data(), A.ld, B.v.data(), B.ld, 0.0f, C.v.data(), C.ld); };
  run();
  const double flop = 2.0 * m * n * kk;
  int reps = std::max<int>(1, static_cast<int>(2e8 / flop));
  double best = 1e30;
  for (int r = 0; r < 7; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) run();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
    best = std::min(best, s);
  }
  return flop / best * 1e-9;
}

static int bench(const k::GemmKernels& t) {
  struct B { const char* name; bool ta, tb; int64_t m, n, k; };
  const B cases[] = {
      {"256^3 NN", 0, 0, 256, 256, 256},      {"1024^3 NN", 0, 0, 1024, 1024, 1024},
      {"1024^3 NT", 0, 1, 1024, 1024, 1024},  {"1024^3 TN", 1, 0, 1024, 1024, 1024},
      {"2048^3 NN", 0, 0, 2048, 2048, 2048},
      {"1x784 @ 784x128 NN", 0, 0, 1, 128, 784},  {"1x784 @ (128x784)^T NT", 0, 1, 1, 128, 784},
      {"32x784 @ 784x128 NN", 0, 0, 32, 128, 784}, {"32x784 @ (128x784)^T NT", 0, 1, 32, 128, 784},
      {"32x160 @ 160x512 NN", 0, 0, 32, 512, 160}, {"32x160 @ (512x160)^T NT", 0, 1, 32, 512, 160},
      {"32x128 @ 128x784 NN", 0, 0, 32, 784, 128},
  };
  std::printf("%-28s %10s %10s\n", "shape (m x k @ k x n)", "1 thread", "2 threads");
  for (const B& c : cases) {
    nc::set_num_threads(1);
    double g1 = bench_one(t, c.ta, c.tb, c.m, c.n, c.k);
    nc::set_num_threads(2);
    double g2 = bench_one(t, c.ta, c.tb, c.m, c.n, c.k);
    std::printf("%-28s %10.1f %10.1f  GFLOP/s\n", c.name, g1, g2);
  }
  return 0;
}

#define NC_TABLE_ENTRY_(isa, ...) {#isa, k::Isa::isa, &k::isa::gemm_table},
struct IsaTable {
  const char* name;
  k::Isa isa;
  const k::GemmKernels* table;
};
static const IsaTable kTables[] = {NC_FOR_EACH_ISA(NC_TABLE_ENTRY_, )};
#undef NC_TABLE_ENTRY_

// The CPU has the ISA, or this is the emulated avx512 test build (CMake NC_AVX512_EMULATE).
static bool can_run(k::Isa isa) { return k::cpu_supports(isa) || (isa == k::Isa::avx512 && k::avx512_emulated()); }

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "bench") {
    const std::string want = argc > 2 ? argv[2] : "avx2";
    for (const IsaTable& it : kTables) {
      if (want != it.name) continue;
      if (!can_run(it.isa)) { std::printf("this CPU cannot run the %s kernels\n", it.name); return 1; }
      return bench(*it.table);
    }
    std::printf("unknown ISA '%s'\n", want.c_str());
    return 1;
  }
  std::mt19937 rng(12345);
  for (const IsaTable& it : kTables) {
    if (!can_run(it.isa)) {
      std::printf("note: this CPU cannot run the %s kernels, not tested\n", it.name);
      continue;
    }
    run_table<float>(it.name, *it.table, rng);
    run_table<double>(it.name, *it.table, rng);
  }
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
