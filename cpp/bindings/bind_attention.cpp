// Bindings of the attention ops (scaled_dot_product_attention).
#include "bindings/common.h"
#include "ops/attention.h"

namespace nc::py_bindings {

void bind_attention(py::module_& m, TensorClass& cls) {
  m.def("_scaled_dot_product_attention",
        [](const Tensor& q, const Tensor& k, const Tensor& v, py::handle attn_mask, double dropout_p, bool is_causal,
           py::handle scale, bool enable_gqa) {
          const Tensor mask = attn_mask.is_none() ? Tensor() : py::cast<Tensor>(attn_mask);
          std::optional<double> s;
          if (!scale.is_none()) s = py::cast<double>(scale);
          py::gil_scoped_release release;
          return scaled_dot_product_attention(q, k, v, mask, dropout_p, is_causal, s, enable_gqa);
        },
        py::arg("query"), py::arg("key"), py::arg("value"), py::arg("attn_mask") = py::none(),
        py::arg("dropout_p") = 0.0, py::arg("is_causal") = false, py::arg("scale") = py::none(),
        py::arg("enable_gqa") = false);
}

}  // namespace nc::py_bindings
