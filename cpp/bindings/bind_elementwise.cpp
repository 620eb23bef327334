// Bindings of elementwise math, comparisons and activations.
#include "bindings/common.h"
#include "ops/activation.h"
#include "ops/math.h"

namespace nc::py_bindings {

namespace {
using UnaryFn = Tensor (*)(const Tensor&);

template <UnaryFn F>
Tensor unary(const Tensor& x) {
  GilRelease release(x.numel());
  return F(x);
}

// The dtype that types a Python number next to a and b: the tensor operand's.
DType operand_dtype(py::handle a, py::handle b) {
  if (const Tensor* t = tensor_ptr(a)) return t->dtype();
  if (const Tensor* t = tensor_ptr(b)) return t->dtype();
  return DType::Float32;
}

// Binary functions whose second (or first) operand may be a Python number.
template <class F>
auto binary(F f, const char* name) {
  return [f, name](py::handle a, py::handle b) {
    const DType like = operand_dtype(a, b);
    Tensor x = to_operand(a, like, name), y = to_operand(b, like, name);
    GilRelease release(broadcast_numel(x, y));
    return f(x, y);
  };
}

Tensor optional_operand(py::handle h, DType like, const char* op) {
  return h.is_none() ? Tensor() : to_operand(h, like, op);
}
}  // namespace

void bind_elementwise(py::module_& m, TensorClass& cls) {
  // Unary functions, as nc.<name>(x) and x.<name>().
  const std::pair<const char*, UnaryFn> unary_fns[] = {
      {"exp", &unary<exp>},
      {"log", &unary<log>},
      {"sqrt", &unary<sqrt>},
      {"rsqrt", &unary<rsqrt>},
      {"abs", &unary<abs>},
      {"sign", &unary<sign>},
      {"sin", &unary<sin>},
      {"cos", &unary<cos>},
      {"tanh", &unary<tanh>},
      {"sigmoid", &unary<sigmoid>},
      {"square", &unary<square>},
      {"reciprocal", &unary<reciprocal>},
      {"log1p", &unary<log1p>},
      {"expm1", &unary<expm1>},
      {"erf", &unary<erf>},
      {"floor", &unary<floor>},
      {"ceil", &unary<ceil>},
      {"round", &unary<round>},
      {"relu", &unary<relu>},
      {"selu", &unary<selu>},
      {"silu", &unary<silu>},
      {"logical_not", &unary<logical_not>},
      {"isnan", &unary<isnan>},
      {"isinf", &unary<isinf>},
      {"isfinite", &unary<isfinite>},
  };
  for (const auto& [name, fn] : unary_fns) {
    m.def(name, fn);
    cls.def(name, fn);
  }

  m.def("pow", binary(&pow, "pow"));
  cls.def("pow", binary(&pow, "pow"));
  m.def("maximum", binary(&maximum, "maximum"));
  m.def("minimum", binary(&minimum, "minimum"));
  m.def("eq", binary([](const Tensor& a, const Tensor& b) { return compare(Compare::Eq, a, b); }, "eq"));
  m.def("ne", binary([](const Tensor& a, const Tensor& b) { return compare(Compare::Ne, a, b); }, "ne"));
  m.def("lt", binary([](const Tensor& a, const Tensor& b) { return compare(Compare::Lt, a, b); }, "lt"));
  m.def("le", binary([](const Tensor& a, const Tensor& b) { return compare(Compare::Le, a, b); }, "le"));
  m.def("gt", binary([](const Tensor& a, const Tensor& b) { return compare(Compare::Gt, a, b); }, "gt"));
  m.def("ge", binary([](const Tensor& a, const Tensor& b) { return compare(Compare::Ge, a, b); }, "ge"));
  m.def("logical_and", binary([](const Tensor& a, const Tensor& b) { return logical(Logical::And, a, b); }, "logical_and"));
  m.def("logical_or", binary([](const Tensor& a, const Tensor& b) { return logical(Logical::Or, a, b); }, "logical_or"));
  m.def("logical_xor", binary([](const Tensor& a, const Tensor& b) { return logical(Logical::Xor, a, b); }, "logical_xor"));

  m.def("where", [](const Tensor& cond, py::handle a, py::handle b) {
    const DType like = operand_dtype(a, b);
    Tensor x = to_operand(a, like, "where"), y = to_operand(b, like, "where");
    py::gil_scoped_release release;
    return where(cond, x, y);
  });
  m.def("clamp", [](const Tensor& x, py::handle lo, py::handle hi) {
    Tensor l = optional_operand(lo, x.dtype(), "clamp"), h = optional_operand(hi, x.dtype(), "clamp");
    py::gil_scoped_release release;
    return clamp(x, l, h);
  }, py::arg("input"), py::arg("min") = py::none(), py::arg("max") = py::none());

  auto rel = py::call_guard<py::gil_scoped_release>();
  m.def("leaky_relu", &leaky_relu, py::arg("input"), py::arg("negative_slope") = 0.01, rel);
  m.def("elu", &elu, py::arg("input"), py::arg("alpha") = 1.0, rel);
  m.def("mish", &mish, py::arg("input"), rel);
  m.def("gelu", &gelu, py::arg("input"), py::arg("approximate") = "none", rel);
  m.def("softplus", &softplus, py::arg("input"), py::arg("beta") = 1.0, py::arg("threshold") = 20.0, rel);
  m.def("hardtanh", &hardtanh, py::arg("input"), py::arg("min_val") = -1.0, py::arg("max_val") = 1.0, rel);
  m.def("dropout", [](const Tensor& x, double p, bool training) {
    GilRelease release(training ? x.numel() : 0);
    return dropout(x, p, training);
  }, py::arg("input"), py::arg("p") = 0.5, py::arg("training") = true);

  // Operators. Comparisons return bool tensors; == with a non-tensor, non-number gives False
  // as Python expects of __eq__.
  auto cmp = [](Compare op, const char* name) {
    return [op, name](const Tensor& self, py::handle other) -> py::object {
      if (!tensor_ptr(other) && !PyNumber_Check(other.ptr())) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
      Tensor o = to_operand(other, self.dtype(), name);
      Tensor r;
      {
        GilRelease release(broadcast_numel(self, o));
        r = compare(op, self, o);
      }
      return py::cast(r);
    };
  };
  cls.def("__eq__", cmp(Compare::Eq, "eq"), py::is_operator())
      .def("__ne__", cmp(Compare::Ne, "ne"), py::is_operator())
      .def("__lt__", cmp(Compare::Lt, "lt"), py::is_operator())
      .def("__le__", cmp(Compare::Le, "le"), py::is_operator())
      .def("__gt__", cmp(Compare::Gt, "gt"), py::is_operator())
      .def("__ge__", cmp(Compare::Ge, "ge"), py::is_operator())
      .def("__pow__", [](const Tensor& self, py::handle e) { return pow(self, to_operand(e, self.dtype(), "pow")); }, py::is_operator())
      .def("__rpow__", [](const Tensor& self, py::handle b) { return pow(to_operand(b, self.dtype(), "pow"), self); }, py::is_operator())
      .def("__abs__", &unary<abs>)
      .def("__invert__", [](const Tensor& self) {
        NC_CHECK(self.dtype() == DType::Bool, TypeError, "[bitwise_not] ~ is only supported on bool tensors, got ",
                 dtype_name(self.dtype()));
        return logical_not(self);
      })
      .def("__and__", binary([](const Tensor& a, const Tensor& b) { return logical(Logical::And, a, b); }, "and"), py::is_operator())
      .def("__or__", binary([](const Tensor& a, const Tensor& b) { return logical(Logical::Or, a, b); }, "or"), py::is_operator())
      .def("__xor__", binary([](const Tensor& a, const Tensor& b) { return logical(Logical::Xor, a, b); }, "xor"), py::is_operator());
}

}  // namespace nc::py_bindings
