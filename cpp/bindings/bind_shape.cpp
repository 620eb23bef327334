// Bindings of indexing, concatenation and narrowing (the Python layer parses index tuples).
#include "bindings/common.h"
#include "ops/index.h"

namespace nc::py_bindings {

void bind_shape(py::module_& m, TensorClass& cls) {
  auto rel = py::call_guard<py::gil_scoped_release>();
  m.def("_basic_index", [](const Tensor& x, const std::vector<std::tuple<int64_t, int64_t, int64_t, bool>>& dims,
                           const std::vector<int64_t>& new_axes) {
    BasicIndex idx;
    for (const auto& [start, step, length, keep] : dims) idx.dims.push_back({start, step, length, keep});
    idx.new_axes = new_axes;
    return basic_index(x, idx);
  });
  m.def("_take", &take, rel);
  m.def("_put_", [](const Tensor& x, const Tensor& positions, py::handle value) {
    Tensor v = to_operand(value, x.dtype(), "index_put_");
    py::gil_scoped_release release;
    put_(x, positions, v);
    return x;
  });
  m.def("cat", &cat, py::arg("tensors"), py::arg("dim") = 0, rel);
  m.def("narrow", &narrow, py::arg("input"), py::arg("dim"), py::arg("start"), py::arg("length"), rel);
  m.def("select", &select, py::arg("input"), py::arg("dim"), py::arg("index"), rel);
}

}  // namespace nc::py_bindings
