// Bindings of the image resampling op used by neurocore.transforms (GIL released).
#include "bindings/common.h"
#include "ops/image.h"

namespace nc::py_bindings {

void bind_image(py::module_& m) {
  m.def("_affine_sample", [](const Tensor& x, const Tensor& theta, int64_t oh, int64_t ow, bool bilinear, int edge,
                             const std::vector<double>& fill) {
    py::gil_scoped_release release;
    return affine_sample(x, theta, oh, ow, bilinear, edge, fill);
  });
}

}  // namespace nc::py_bindings
