// Bindings of the normalisation ops (batch_norm, layer_norm, rms_norm).
#include "bindings/common.h"
#include "ops/norm.h"

namespace nc::py_bindings {

namespace {
Tensor optional(py::handle h) { return h.is_none() ? Tensor() : py::cast<Tensor>(h); }
}  // namespace

void bind_norm(py::module_& m, TensorClass& cls) {
  m.def("_batch_norm", [](const Tensor& input, py::handle running_mean, py::handle running_var, py::handle weight,
                          py::handle bias, bool training, double momentum, double eps) {
    Tensor rm = optional(running_mean), rv = optional(running_var), w = optional(weight), b = optional(bias);
    py::gil_scoped_release release;
    return batch_norm(input, rm, rv, w, b, training, momentum, eps);
  });
  m.def("_layer_norm", [](const Tensor& input, const Shape& normalized_shape, py::handle weight, py::handle bias,
                          double eps) {
    Tensor w = optional(weight), b = optional(bias);
    py::gil_scoped_release release;
    return layer_norm(input, normalized_shape, w, b, eps);
  });
  m.def("_rms_norm", [](const Tensor& input, const Shape& normalized_shape, py::handle weight, double eps) {
    Tensor w = optional(weight);
    py::gil_scoped_release release;
    return rms_norm(input, normalized_shape, w, eps);
  });
}

}  // namespace nc::py_bindings
