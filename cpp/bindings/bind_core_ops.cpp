// Arithmetic operators, matmul/linear, sum/mean, shape ops, copies.
#include "bindings/common.h"
#include "core/autograd.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/elementwise.h"
#include "ops/linalg.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace nc::py_bindings {

namespace {
using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);
using InplaceFn = void (*)(const Tensor&, const Tensor&);

// self (op) other and other (op) self, with the GIL released around the kernel.
template <BinaryFn F>
Tensor forward_op(const Tensor& self, py::handle other) {
  Tensor o = to_operand(other, self.dtype(), "op");
  GilRelease release(broadcast_numel(self, o));
  return F(self, o);
}
template <BinaryFn F>
Tensor reflected_op(const Tensor& self, py::handle other) {
  Tensor o = to_operand(other, self.dtype(), "op");
  GilRelease release(broadcast_numel(self, o));
  return F(o, self);
}
// In-place methods return the very Python object they were called on (x.add_(1) is x), which
// keeps subclasses such as nn.Parameter.
template <InplaceFn F>
py::object inplace_op(py::object self_obj, py::handle other) {
  const Tensor& self = self_obj.cast<const Tensor&>();
  Tensor o = to_operand(other, self.dtype(), "op");
  {
    GilRelease release(self.numel());
    F(self, o);
  }
  return self_obj;
}

// other * alpha, for add/sub(other, alpha=...): a separate overload, so the common call without
// alpha pays nothing for it.
Tensor scaled_operand(const Tensor& self, py::handle other, py::handle alpha) {
  Tensor o = to_operand(other, self.dtype(), "op");
  Tensor a = to_operand(alpha, o.dtype(), "op");
  NC_CHECK(is_floating(self.dtype()) || is_floating(o.dtype()) || !is_floating(a.dtype()), TypeError,
           "[add] for integral input tensors, argument alpha must not be a floating point number");
  return mul(o, a);
}
template <BinaryFn F>
Tensor forward_alpha(const Tensor& self, py::handle other, py::handle alpha) {
  Tensor o = scaled_operand(self, other, alpha);
  GilRelease release(broadcast_numel(self, o));
  return F(self, o);
}
template <InplaceFn F>
py::object inplace_alpha(py::object self_obj, py::handle other, py::handle alpha) {
  const Tensor& self = self_obj.cast<const Tensor&>();
  Tensor o = scaled_operand(self, other, alpha);
  {
    GilRelease release(self.numel());
    F(self, o);
  }
  return self_obj;
}

Shape dims_arg(py::handle dim, const char* op) {
  if (dim.is_none()) return {};
  return to_shape(dim, op);
}

// Multiply-adds of a @ b (batch dims of b ignored), scaled to GilRelease's units.
int64_t product_work(const Tensor& a, const Tensor& b) {
  return a.numel() * (b.dim() >= 2 ? b.shape().back() : 1) / 8;
}

Tensor matmul_op(const Tensor& a, const Tensor& b) {
  GilRelease release(product_work(a, b));
  return matmul(a, b);
}

DType dtype_arg(py::handle d, const char* op) {
  if (py::isinstance<DType>(d)) return d.cast<DType>();
  throw nc::TypeError(cat_str("[", op, "] expected a neurocore dtype, got ", std::string(py::str(d))));
}
}  // namespace

void bind_core_ops(py::module_& m, TensorClass& cls) {
  auto rel = py::call_guard<py::gil_scoped_release>();
  cls.def("__add__", &forward_op<add>, py::is_operator())
      .def("__radd__", &reflected_op<add>, py::is_operator())
      .def("__sub__", &forward_op<sub>, py::is_operator())
      .def("__rsub__", &reflected_op<sub>, py::is_operator())
      .def("__mul__", &forward_op<mul>, py::is_operator())
      .def("__rmul__", &reflected_op<mul>, py::is_operator())
      .def("__truediv__", &forward_op<div>, py::is_operator())
      .def("__rtruediv__", &reflected_op<div>, py::is_operator())
      .def("__iadd__", &inplace_op<add_>, py::is_operator())
      .def("__isub__", &inplace_op<sub_>, py::is_operator())
      .def("__imul__", &inplace_op<mul_>, py::is_operator())
      .def("__itruediv__", &inplace_op<div_>, py::is_operator())
      .def("__neg__", &neg, rel)
      .def("__matmul__", &matmul_op, py::is_operator())
      .def("add", &forward_op<add>)
      .def("sub", &forward_op<sub>)
      .def("mul", &forward_op<mul>)
      .def("div", &forward_op<div>)
      .def("neg", &neg, rel)
      .def("add_", &inplace_op<add_>)
      .def("sub_", &inplace_op<sub_>)
      .def("add", &forward_alpha<add>, py::arg("other"), py::kw_only(), py::arg("alpha"))
      .def("sub", &forward_alpha<sub>, py::arg("other"), py::kw_only(), py::arg("alpha"))
      .def("add_", &inplace_alpha<add_>, py::arg("other"), py::kw_only(), py::arg("alpha"))
      .def("sub_", &inplace_alpha<sub_>, py::arg("other"), py::kw_only(), py::arg("alpha"))
      .def("mul_", &inplace_op<mul_>)
      .def("div_", &inplace_op<div_>)
      .def("matmul", &matmul_op)
      .def("contiguous", &contiguous, rel)
      .def("clone", &clone, rel)
      // clone(memory_format=...): a second overload, so the plain call stays one C++ call.
      .def("clone", [](py::object self, py::object memory_format) {
        return py::module_::import("neurocore._tensor").attr("_clone")(self, py::arg("memory_format") = memory_format);
      }, py::kw_only(), py::arg("memory_format"))
      .def("copy_", [](py::object self, const Tensor& src) {
        const Tensor& t = self.cast<const Tensor&>();
        {
          py::gil_scoped_release r;
          copy_(t, src);
        }
        return self;
      })
      .def("fill_", [](py::object self, py::handle v) {
        const Tensor& t = self.cast<const Tensor&>();
        Tensor s = fill_operand(v, t.dtype(), "fill_");
        {
          py::gil_scoped_release r;
          copy_(t, s);
        }
        return self;
      })
      .def("zero_", [](py::object self) {
        const Tensor& t = self.cast<const Tensor&>();
        {
          py::gil_scoped_release r;
          fill_(t, Scalar(0.0));
        }
        return self;
      })
      .def("to", [](const Tensor& self, py::handle d) { DType dt = dtype_arg(d, "to"); py::gil_scoped_release r; return to_dtype(self, dt); });

  m.def("add", [](const Tensor& a, py::handle b) { return forward_op<add>(a, b); });
  m.def("sub", [](const Tensor& a, py::handle b) { return forward_op<sub>(a, b); });
  m.def("mul", [](const Tensor& a, py::handle b) { return forward_op<mul>(a, b); });
  m.def("div", [](const Tensor& a, py::handle b) { return forward_op<div>(a, b); });
  m.def("neg", &neg, rel);
  m.def("matmul", &matmul_op);
  m.def("linear", [](const Tensor& x, const Tensor& w, py::handle b) {
    Tensor bias;
    if (!b.is_none()) {
      const Tensor* bt = tensor_ptr(b);
      if (!bt) throw py::type_error("[linear] bias must be a Tensor or None");
      bias = *bt;
    }
    GilRelease release(x.numel() * (w.dim() >= 1 ? w.shape().front() : 1) / 8);  // x @ w.T
    return linear(x, w, bias);
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none());
  m.def("_has_packed_weight", &has_packed_weight, "Whether w has a packed copy cached that matches it as it is now.");
  m.def("sum", [](const Tensor& t, py::handle dim, bool keepdim) {
    Shape d = dims_arg(dim, "sum");
    GilRelease release(t.numel());
    return sum(t, d, keepdim);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def("mean", [](const Tensor& t, py::handle dim, bool keepdim) {
    Shape d = dims_arg(dim, "mean");
    GilRelease release(t.numel());
    return mean(t, d, keepdim);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def("sum_to", &sum_to, rel);
  m.def("reshape", [](const Tensor& t, py::handle s) { return reshape(t, to_shape(s, "reshape")); });
  m.def("view", [](const Tensor& t, py::handle s) { return view(t, to_shape(s, "view")); });
  m.def("expand", [](const Tensor& t, py::handle s) { return expand(t, to_shape(s, "expand")); });
  m.def("permute", [](const Tensor& t, py::handle s) { return permute(t, to_shape(s, "permute")); });
  m.def("transpose", &transpose);
  m.def("squeeze", [](const Tensor& t, py::handle dim) {
    if (dim.is_none()) return squeeze(t);
    Shape dims = to_shape(dim, "squeeze");
    // Squeeze from the highest dim down so earlier indices stay valid.
    std::vector<int64_t> wrapped;
    for (int64_t d : dims) wrapped.push_back(wrap_dim(d, std::max<int64_t>(t.dim(), 1), "squeeze"));
    std::sort(wrapped.rbegin(), wrapped.rend());
    Tensor out = t;
    for (int64_t d : wrapped) out = squeeze_dim(out, d);
    return out;
  }, py::arg("input"), py::arg("dim") = py::none());
  m.def("unsqueeze", &unsqueeze);
  m.def("flatten", &flatten, py::arg("input"), py::arg("start_dim") = 0, py::arg("end_dim") = -1);
  m.def("contiguous", &contiguous, rel);
  m.def("clone", &clone, rel);
}

}  // namespace nc::py_bindings
