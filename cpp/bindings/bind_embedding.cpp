// Bindings of the embedding op (nn.Embedding, F.embedding).
#include "bindings/common.h"
#include "ops/embedding.h"

namespace nc::py_bindings {

void bind_embedding(py::module_& m, TensorClass& cls) {
  auto rel = py::call_guard<py::gil_scoped_release>();
  m.def("_embedding", &embedding, py::arg("weight"), py::arg("indices"), py::arg("padding_idx"),
        py::arg("scale_grad_by_freq"), rel);
  m.def("_embedding_renorm_", &embedding_renorm_, py::arg("weight"), py::arg("indices"), py::arg("max_norm"),
        py::arg("norm_type"), rel);
}

}  // namespace nc::py_bindings
