#include "ops/image.h"

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/image.h"
#include "ops/copy.h"

namespace nc {

Tensor affine_sample(const Tensor& x_in, const Tensor& theta_in, int64_t oh, int64_t ow, bool bilinear, int edge,
                     const std::vector<double>& fill) {
  NC_CHECK(x_in.dtype() == DType::Float32, TypeError, "[affine_sample] expected float32 images, got ",
           dtype_name(x_in.dtype()));
  NC_CHECK(x_in.dim() == 4, ValueError, "[affine_sample] expected images of shape (N, C, H, W), got ",
           shape_str(x_in.shape()));
  const int64_t n = x_in.shape()[0], c = x_in.shape()[1], h = x_in.shape()[2], w = x_in.shape()[3];
  NC_CHECK(theta_in.dtype() == DType::Float32 && theta_in.dim() == 3 && theta_in.shape()[0] == n &&
               theta_in.shape()[1] == 2 && theta_in.shape()[2] == 3,
           ValueError, "[affine_sample] theta must be float32 of shape (", n, ", 2, 3), got ",
           shape_str(theta_in.shape()));
  NC_CHECK(edge >= 0 && edge <= 2, ValueError,
           "[affine_sample] edge mode must be 0 (fill), 1 (clamp) or 2 (reflect), got ",
           edge);
  NC_CHECK(oh >= 0 && ow >= 0, ValueError, "[affine_sample] output size must be non-negative, got (", oh, ", ", ow,
           ")");
  NC_CHECK((h > 0 && w > 0) || n * c == 0, ValueError, "[affine_sample] empty input images of shape ",
           shape_str(x_in.shape()));
  NC_CHECK(fill.size() == 1 || static_cast<int64_t>(fill.size()) == c, ValueError,
           "[affine_sample] fill must have 1 or ", c, " values, got ", fill.size());
  std::vector<float> fill_c(static_cast<size_t>(c));
  for (int64_t k = 0; k < c; ++k) fill_c[k] = static_cast<float>(fill.size() == 1 ? fill[0] : fill[k]);
  const Tensor x = contiguous(x_in), theta = contiguous(theta_in);
  Tensor y = Tensor::empty({n, c, oh, ow}, DType::Float32);
  if (y.numel() == 0) return y;
  const float* xp = x.data<float>();
  const float* tp = theta.data<float>();
  float* yp = y.data<float>();
  const auto& k = kernels::image();
  // Fixed-size chunks of output rows: any free thread takes the next one.
  const int64_t rows = n * oh, grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(ow * c, 1));
  parallel_for(0, rows, grain, [&](int64_t b, int64_t e) {
    k.f32.affine_sample(xp, yp, n, c, h, w, oh, ow, tp, bilinear, edge, fill_c.data(), b, e);
  });
  return y;
}

}  // namespace nc
