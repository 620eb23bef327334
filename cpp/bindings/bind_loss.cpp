// Bindings of the loss functions.
#include "bindings/common.h"
#include "ops/loss.h"

namespace nc::py_bindings {

namespace {
Tensor optional(py::handle h) { return h.is_none() ? Tensor() : py::cast<Tensor>(h); }
}  // namespace

void bind_loss(py::module_& m, TensorClass& cls) {
  m.def("_nll_loss", [](const Tensor& input, const Tensor& target, py::handle weight, int64_t ignore_index,
                        const std::string& reduction) {
    Tensor w = optional(weight);
    Reduction r = parse_reduction(reduction, "nll_loss");
    py::gil_scoped_release release;
    return nll_loss(input, target, w, ignore_index, r);
  });
  m.def("_cross_entropy", [](const Tensor& input, const Tensor& target, py::handle weight, int64_t ignore_index,
                             const std::string& reduction, double label_smoothing) {
    Tensor w = optional(weight);
    Reduction r = parse_reduction(reduction, "cross_entropy");
    py::gil_scoped_release release;
    return cross_entropy(input, target, w, ignore_index, r, label_smoothing);
  });
  m.def("_mse_loss", [](const Tensor& a, const Tensor& b, const std::string& reduction) {
    Reduction r = parse_reduction(reduction, "mse_loss");
    py::gil_scoped_release release;
    return mse_loss(a, b, r);
  });
  m.def("_l1_loss", [](const Tensor& a, const Tensor& b, const std::string& reduction) {
    Reduction r = parse_reduction(reduction, "l1_loss");
    py::gil_scoped_release release;
    return l1_loss(a, b, r);
  });
  m.def("_huber_loss", [](const Tensor& a, const Tensor& b, const std::string& reduction, double delta) {
    Reduction r = parse_reduction(reduction, "huber_loss");
    py::gil_scoped_release release;
    return huber_loss(a, b, r, delta);
  });
  m.def("_smooth_l1_loss", [](const Tensor& a, const Tensor& b, const std::string& reduction, double beta) {
    Reduction r = parse_reduction(reduction, "smooth_l1_loss");
    py::gil_scoped_release release;
    return smooth_l1_loss(a, b, r, beta);
  });
  m.def("_binary_cross_entropy", [](const Tensor& a, const Tensor& b, py::handle weight, const std::string& reduction) {
    Tensor w = optional(weight);
    Reduction r = parse_reduction(reduction, "binary_cross_entropy");
    py::gil_scoped_release release;
    return binary_cross_entropy(a, b, w, r);
  });
  m.def("_binary_cross_entropy_with_logits", [](const Tensor& a, const Tensor& b, py::handle weight,
                                                py::handle pos_weight, const std::string& reduction) {
    Tensor w = optional(weight), pw = optional(pos_weight);
    Reduction r = parse_reduction(reduction, "binary_cross_entropy_with_logits");
    py::gil_scoped_release release;
    return binary_cross_entropy_with_logits(a, b, w, pw, r);
  });
}

}  // namespace nc::py_bindings
