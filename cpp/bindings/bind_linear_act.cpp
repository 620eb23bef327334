// Bindings of the fused feed-forward op (linear + bias + activation).
#include "bindings/common.h"
#include "ops/linear_act.h"

namespace nc::py_bindings {

void bind_linear_act(py::module_& m) {
  m.def("_linear_act",
        [](const Tensor& x, const Tensor& weight, py::handle bias, const std::string& activation) {
          const Tensor b = bias.is_none() ? Tensor() : py::cast<Tensor>(bias);
          py::gil_scoped_release release;
          return linear_act(x, weight, b, activation);
        },
        py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("activation") = "relu");
}

}  // namespace nc::py_bindings
