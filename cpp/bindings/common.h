#pragma once
// Shared helpers of the binding files (the only place with Python headers).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/tensor.h"

// Shapes cross the boundary as Python lists/tuples of ints, exactly like std::vector<int64_t>.
namespace pybind11::detail {
template <>
struct type_caster<nc::DimVector> : list_caster<nc::DimVector, int64_t> {};
}  // namespace pybind11::detail

namespace nc::py_bindings {

namespace py = pybind11;
using TensorClass = py::class_<Tensor>;

// A Python operand of a tensor op: a Tensor, or a Python/NumPy number turned into a 0-dim tensor
// whose dtype follows PyTorch's promotion next to `like`.
Tensor to_operand(py::handle h, DType like, const char* op);
// A shape from a tuple/list of ints or from varargs already collected into a tuple.
Shape to_shape(py::handle h, const char* op);
py::tuple shape_tuple(const Shape& s);
py::object tensor_or_none(const Tensor& t);

void bind_tensor(py::module_& m, TensorClass& cls);
void bind_core_ops(py::module_& m, TensorClass& cls);
void bind_kernels(py::module_& m);
void bind_gemm(py::module_& m);
// One file per op family: bind_<family>.cpp.
void bind_elementwise(py::module_& m, TensorClass& cls);
void bind_reduce(py::module_& m, TensorClass& cls);
void bind_loss(py::module_& m, TensorClass& cls);
void bind_shape(py::module_& m, TensorClass& cls);
void bind_optim(py::module_& m, TensorClass& cls);
void bind_conv(py::module_& m, TensorClass& cls);
void bind_norm(py::module_& m, TensorClass& cls);

}  // namespace nc::py_bindings
