// Bindings of reductions, softmax and gather/scatter.
#include "bindings/common.h"
#include "ops/gather.h"
#include "ops/reduce.h"
#include "ops/softmax.h"

namespace nc::py_bindings {

namespace {
Shape dims_of(py::handle dim, const char* op) { return dim.is_none() ? Shape{} : to_shape(dim, op); }
}  // namespace

void bind_reduce(py::module_& m, TensorClass& cls) {
  auto rel = py::call_guard<py::gil_scoped_release>();
  m.def("_max_dim", [](const Tensor& x, int64_t dim, bool keepdim, bool is_max) {
    ValuesIndices r;
    {
      py::gil_scoped_release release;
      r = max_dim(x, dim, keepdim, is_max);
    }
    return py::make_tuple(r.values, r.indices);
  });
  m.def("_amax", [](const Tensor& x, py::handle dim, bool keepdim, bool is_max) {
    Shape d = dims_of(dim, is_max ? "amax" : "amin");
    py::gil_scoped_release release;
    return amax(x, d, keepdim, is_max);
  });
  m.def("_argmax", [](const Tensor& x, py::handle dim, bool keepdim, bool is_max) {
    bool has_dim = !dim.is_none();
    int64_t d = has_dim ? py::cast<int64_t>(dim) : 0;
    py::gil_scoped_release release;
    return argmax(x, has_dim, d, keepdim, is_max);
  });
  m.def("_var", [](const Tensor& x, py::handle dim, double correction, bool keepdim, bool take_sqrt) {
    Shape d = dims_of(dim, take_sqrt ? "std" : "var");
    py::gil_scoped_release release;
    return take_sqrt ? std_dev(x, d, correction, keepdim) : var(x, d, correction, keepdim);
  });
  m.def("_logsumexp", [](const Tensor& x, py::handle dim, bool keepdim) {
    Shape d = dims_of(dim, "logsumexp");
    py::gil_scoped_release release;
    return logsumexp(x, d, keepdim);
  });
  m.def("_all", [](const Tensor& x, py::handle dim, bool keepdim) {
    Shape d = dims_of(dim, "all");
    py::gil_scoped_release release;
    return all(x, d, keepdim);
  });
  m.def("_any", [](const Tensor& x, py::handle dim, bool keepdim) {
    Shape d = dims_of(dim, "any");
    py::gil_scoped_release release;
    return any(x, d, keepdim);
  });
  m.def("_softmax", &softmax, rel);
  m.def("_log_softmax", &log_softmax, rel);
  m.def("gather", &gather, py::arg("input"), py::arg("dim"), py::arg("index"), rel);
  m.def("_scatter_add_new", [](py::handle shape, int64_t dim, const Tensor& index, const Tensor& src) {
    Shape s = to_shape(shape, "scatter_add");
    py::gil_scoped_release release;
    return scatter_add_new(s, dim, index, src);
  });
}

}  // namespace nc::py_bindings
