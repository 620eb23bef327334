// DimVector (nc::Shape) against std::vector<int64_t>: the same sequence of operations on both,
// across the inline/heap boundary, including ranges that alias the vector itself.
// Usage: test_dimvector -> last line "N passed, N failed"
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "core/shape.h"

using nc::DimVector;

static int g_pass = 0, g_fail = 0;

static void check(bool ok, const char* what, int step) {
  if (ok) {
    ++g_pass;
  } else {
    ++g_fail;
    std::printf("FAIL %s (step %d)\n", what, step);
  }
}

static bool same(const DimVector& d, const std::vector<int64_t>& v) {
  return d.size() == v.size() && std::equal(d.begin(), d.end(), v.begin()) && std::vector<int64_t>(d) == v;
}

int main() {
  std::mt19937 rng(7);
  DimVector d;
  std::vector<int64_t> v;
  for (int step = 0; step < 20000; ++step) {
    const size_t n = v.size();
    const int64_t x = static_cast<int64_t>(rng() % 1000);
    const size_t at = n ? rng() % (n + 1) : 0;
    switch (rng() % 12) {
      case 0: d.push_back(x); v.push_back(x); break;
      case 1: if (n) { d.pop_back(); v.pop_back(); } break;
      case 2: d.insert(d.begin() + at, x); v.insert(v.begin() + at, x); break;
      case 3: if (at < n) { d.erase(d.begin() + at); v.erase(v.begin() + at); } break;
      case 4: {  // insert a range of the vector itself
        const size_t lo = n ? rng() % n : 0, hi = n ? lo + rng() % (n - lo + 1) : 0;
        const std::vector<int64_t> part(v.begin() + lo, v.begin() + hi);
        d.insert(d.begin() + at, d.begin() + lo, d.begin() + hi);
        v.insert(v.begin() + at, part.begin(), part.end());
        break;
      }
      case 5: {  // assign from a suffix of itself
        const size_t lo = n ? rng() % n : 0;
        d.assign(d.begin() + lo, d.end());
        v.assign(v.begin() + lo, v.end());
        break;
      }
      case 6: { const size_t m = rng() % 12; d.resize(m, x); v.resize(m, x); break; }
      case 7: { DimVector c(d); d = c; break; }                  // copy in and out
      case 8: { DimVector m(std::move(d)); d = std::move(m); break; }  // move in and out
      case 9: if (n > 10) { d.clear(); v.clear(); } break;
      case 10: { d = DimVector(v); break; }                       // from std::vector
      case 11: { DimVector r(v.rbegin(), v.rend()); std::vector<int64_t> rv(v.rbegin(), v.rend());
                 check(same(r, rv), "reverse range", step); break; }
    }
    check(same(d, v), "same contents", step);
    check((d == DimVector(v)) && !(d != DimVector(v)), "equality", step);
  }
  DimVector a{1, 2, 3}, b(4, 9);
  check(a.size() == 3 && a[2] == 3 && b.size() == 4 && b[3] == 9 && a < DimVector{1, 2, 4}, "constructors", 0);
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
