#include "kernels/conv.h"

#include <algorithm>
#include <cstring>

namespace nc::kernels::NC_ISA {
namespace {

// The outputs ox in [lo, hi) whose tap x0 + ox * s lands inside [0, w): computed once per
// kernel column, so the inner loops have no bounds checks.
inline void valid_range(int64_t x0, int64_t s, int64_t w, int64_t ow, int64_t& lo, int64_t& hi) {
  lo = x0 >= 0 ? 0 : (-x0 + s - 1) / s;
  hi = x0 >= w ? 0 : std::min(ow, (w - 1 - x0) / s + 1);
  lo = std::min(lo, ow);
  hi = std::max(hi, lo);
}

template <class T>
void im2col(const T* x, const Im2colGeom& g, T* col) {
  const int64_t L = g.oh * g.ow;
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        T* row = col + ((c * g.kh + i) * g.kw + j) * L;
        const T* plane = x + c * g.h * g.w;
        const int64_t x0 = -g.pl + j * g.dw;
        int64_t lo, hi;
        valid_range(x0, g.sw, g.w, g.ow, lo, hi);
        for (int64_t oy = 0; oy < g.oh; ++oy) {
          T* r = row + oy * g.ow;
          const int64_t iy = oy * g.sh - g.pt + i * g.dh;
          if (iy < 0 || iy >= g.h) {
            std::fill(r, r + g.ow, T(0));
            continue;
          }
          const T* src = plane + iy * g.w + x0;
          std::fill(r, r + lo, T(0));
          if (g.sw == 1)
            std::memcpy(r + lo, src + lo, (hi - lo) * sizeof(T));
          else
            for (int64_t ox = lo; ox < hi; ++ox) r[ox] = src[ox * g.sw];
          std::fill(r + hi, r + g.ow, T(0));
        }
      }
}

template <class T>
void col2im(const T* col, const Im2colGeom& g, T* gx) {
  const int64_t L = g.oh * g.ow;
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* row = col + ((c * g.kh + i) * g.kw + j) * L;
        T* plane = gx + c * g.h * g.w;
        const int64_t x0 = -g.pl + j * g.dw;
        int64_t lo, hi;
        valid_range(x0, g.sw, g.w, g.ow, lo, hi);
        for (int64_t oy = 0; oy < g.oh; ++oy) {
          const int64_t iy = oy * g.sh - g.pt + i * g.dh;
          if (iy < 0 || iy >= g.h) continue;
          const T* r = row + oy * g.ow;
          T* dst = plane + iy * g.w + x0;
          if (g.sw == 1)
            for (int64_t ox = lo; ox < hi; ++ox) dst[ox] += r[ox];
          else
            for (int64_t ox = lo; ox < hi; ++ox) dst[ox * g.sw] += r[ox];
        }
      }
}

}  // namespace

const ConvKernels conv_table = {im2col<float>, im2col<double>, col2im<float>, col2im<double>};

}  // namespace nc::kernels::NC_ISA
