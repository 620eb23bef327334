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

// The Tensor held by a Python object (a Tensor or a subclass such as Parameter), or null when it
// holds none. Cheaper than py::isinstance<Tensor> followed by py::cast<Tensor> (one type check).
const Tensor* tensor_ptr(py::handle h);

// Releases the GIL for the lifetime of the object when `work` (elements touched, or multiply-adds
// / 8 for products) is large. A release and re-acquire costs about as much as a whole 64-element
// op, and other Python threads gain nothing from a gap of a microsecond or two.
class GilRelease {
 public:
  static constexpr int64_t kMinWork = 1 << 14;
  explicit GilRelease(int64_t work) : state_(work >= kMinWork ? PyEval_SaveThread() : nullptr) {}
  ~GilRelease() {
    if (state_) PyEval_RestoreThread(state_);
  }
  GilRelease(const GilRelease&) = delete;
  GilRelease& operator=(const GilRelease&) = delete;

 private:
  PyThreadState* state_;
};

// Elements of the broadcast result of a and b (the op itself reports incompatible shapes).
inline int64_t broadcast_numel(const Tensor& a, const Tensor& b) {
  const Shape& x = a.shape();
  const Shape& y = b.shape();
  const size_t n = std::max(x.size(), y.size());
  int64_t numel = 1;
  for (size_t i = 0; i < n; ++i) {
    const int64_t dx = i < x.size() ? x[x.size() - 1 - i] : 1, dy = i < y.size() ? y[y.size() - 1 - i] : 1;
    numel *= std::max(dx, dy);
  }
  return numel;
}

// A Python operand of a tensor op: a Tensor, or a Python/NumPy number turned into a 0-dim tensor
// whose dtype follows PyTorch's promotion next to `like`.
Tensor to_operand(py::handle h, DType like, const char* op);
// to_operand for a value written into a tensor of dtype dt (fill_, full): a float an int64 tensor
// cannot hold (NaN, inf, beyond the range) is refused as in PyTorch instead of cast with an
// undefined result.
Tensor fill_operand(py::handle v, DType dt, const char* op);
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
void bind_attention(py::module_& m, TensorClass& cls);
void bind_linear_act(py::module_& m);
void bind_inference_plan(py::module_& m);
void bind_embedding(py::module_& m, TensorClass& cls);
void bind_rnn(py::module_& m, TensorClass& cls);
void bind_autograd(py::module_& m, TensorClass& cls);
void bind_runtime(py::module_& m);
void bind_image(py::module_& m);
void bind_sort(py::module_& m);

}  // namespace nc::py_bindings
