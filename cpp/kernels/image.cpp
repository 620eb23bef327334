// Affine resampling kernel (see image.h). Compiled once per ISA; the inner loop over output
// columns is plain code the compiler vectorises where it can.
#include "kernels/image.h"

#include <algorithm>
#include <cmath>

namespace nc::kernels::NC_ISA {
namespace {

// v mirrored into [-0.5, size - 0.5] (period 2 * size), then clamped to the pixel centres.
float reflect(float v, int64_t size) {
  const float period = 2.0f * float(size);
  float u = std::fmod(v + 0.5f, period);
  if (u < 0) u += period;
  u = u < float(size) ? u - 0.5f : period - u - 0.5f;
  return std::min(std::max(u, 0.0f), float(size - 1));
}

// Rows [row_begin, row_end) of the flattened (n * oh) output rows, all channels.
void affine_sample_f32(const float* x, float* y, int64_t n, int64_t c, int64_t h, int64_t w, int64_t oh, int64_t ow,
                       const float* theta, bool bilinear, int edge, const float* fill, int64_t row_begin,
                       int64_t row_end) {
  const bool border = edge != kEdgeFill;
  const int64_t plane = h * w, out_plane = oh * ow;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t img = r / oh, i = r % oh;
    const float* t = theta + img * 6;
    const float* src = x + img * c * plane;
    float* dst = y + img * c * out_plane + i * ow;
    for (int64_t j = 0; j < ow; ++j) {
      float sx = t[0] * float(j) + t[1] * float(i) + t[2];
      float sy = t[3] * float(j) + t[4] * float(i) + t[5];
      if (edge == kEdgeClamp) {
        sx = std::min(std::max(sx, 0.0f), float(w - 1));
        sy = std::min(std::max(sy, 0.0f), float(h - 1));
      } else if (edge == kEdgeReflect) {
        sx = reflect(sx, w);
        sy = reflect(sy, h);
      }
      if (!bilinear) {
        const int64_t xi = static_cast<int64_t>(std::nearbyint(sx)), yi = static_cast<int64_t>(std::nearbyint(sy));
        const bool inside = xi >= 0 && xi < w && yi >= 0 && yi < h;
        for (int64_t ch = 0; ch < c; ++ch)
          dst[ch * out_plane + j] = inside ? src[ch * plane + yi * w + xi] : fill[ch];
        continue;
      }
      const float fx = std::floor(sx), fy = std::floor(sy);
      const int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
      const float ax = sx - fx, ay = sy - fy;
      const float wts[4] = {(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay};
      const int64_t xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
      int64_t off[4];
      float wk[4], mask = 0;
      for (int k = 0; k < 4; ++k) {
        int64_t xx = xs[k], yy = ys[k];
        if (border) {
          xx = std::min(xx, w - 1);
          yy = std::min(yy, h - 1);
        }
        const bool inside = xx >= 0 && xx < w && yy >= 0 && yy < h;
        off[k] = inside ? yy * w + xx : 0;
        wk[k] = inside ? wts[k] : 0.0f;
        mask += wk[k];
      }
      for (int64_t ch = 0; ch < c; ++ch) {
        const float* p = src + ch * plane;
        const float v = wk[0] * p[off[0]] + wk[1] * p[off[1]] + wk[2] * p[off[2]] + wk[3] * p[off[3]];
        dst[ch * out_plane + j] = border ? v : v * mask + (1.0f - mask) * fill[ch];
      }
    }
  }
}

}  // namespace

const ImageKernels image_table = {{affine_sample_f32}};

}  // namespace nc::kernels::NC_ISA
