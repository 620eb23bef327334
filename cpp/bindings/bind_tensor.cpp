// Tensor class: construction, NumPy interop, metadata, autograd entry points, RNG, grad mode.
#include <Python.h>

#include "bindings/common.h"
#include "core/autograd.h"
#include "core/random.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/elementwise.h"

namespace nc::py_bindings {

py::tuple shape_tuple(const Shape& s) {
  py::tuple t(s.size());
  for (size_t i = 0; i < s.size(); ++i) t[i] = py::int_(s[i]);
  return t;
}

py::object tensor_or_none(const Tensor& t) { return t.defined() ? py::cast(t) : py::none(); }

Shape to_shape(py::handle h, const char* op) {
  Shape s;
  if (py::isinstance<py::int_>(h) || PyIndex_Check(h.ptr())) {
    s.push_back(py::cast<int64_t>(h));
    return s;
  }
  if (!py::isinstance<py::sequence>(h) || py::isinstance<py::str>(h))
    throw nc::TypeError(cat_str("[", op, "] expected a shape (a sequence of ints), got ",
                                std::string(py::str(py::type::of(h).attr("__name__")))));
  for (auto item : py::reinterpret_borrow<py::sequence>(h)) {
    if (!PyIndex_Check(item.ptr()))
      throw nc::TypeError(cat_str("[", op, "] shape entries must be ints, got ",
                                  std::string(py::str(py::type::of(item).attr("__name__")))));
    s.push_back(py::cast<int64_t>(item));
  }
  return s;
}

const Tensor* tensor_ptr(py::handle h) {
  // The registered type's record, looked up once (py::cast would look it up on every call).
  static const py::detail::type_info* const info = py::detail::get_type_info(typeid(Tensor));
  py::detail::type_caster_generic caster(info);
  if (!caster.load(h, false)) return nullptr;
  return static_cast<const Tensor*>(caster.value);
}

Tensor to_operand(py::handle h, DType like, const char* op) {
  if (const Tensor* t = tensor_ptr(h)) return *t;
  if (py::isinstance<py::bool_>(h)) return scalar_tensor(Scalar::boolean(h.cast<bool>()), like);
  if (PyLong_Check(h.ptr()) || (PyIndex_Check(h.ptr()) && !PyFloat_Check(h.ptr())))
    return scalar_tensor(Scalar::integer(py::cast<int64_t>(h)), like);
  if (PyFloat_Check(h.ptr()) || PyNumber_Check(h.ptr())) {
    PyObject* f = PyNumber_Float(h.ptr());
    if (f) {
      double v = PyFloat_AsDouble(f);
      Py_DECREF(f);
      return scalar_tensor(Scalar(v), like);
    }
    PyErr_Clear();
  }
  throw nc::TypeError(cat_str("[", op, "] expected a Tensor or a number, got ",
                              std::string(py::str(py::type::of(h).attr("__name__")))));
}

Tensor fill_operand(py::handle v, DType dt, const char* op) {
  Tensor s = to_operand(v, dt, op);
  if (dt == DType::Int64 && is_floating(s.dtype()) && s.numel() == 1) {
    const double x = s.dtype() == DType::Float32 ? *s.data<float>() : *s.data<double>();
    // 2^63 is the first double above the int64 range.
    NC_CHECK(x >= -9223372036854775808.0 && x < 9223372036854775808.0, RuntimeError, "[", op, "] value ", x,
             " cannot be converted to type int64 without overflow");
  }
  return s;
}

namespace {

DType numpy_dtype_to_nc(const py::dtype& dt, bool& ok) {
  ok = true;
  char kind = dt.kind();
  size_t size = dt.itemsize();
  if (kind == 'f' && size == 4) return DType::Float32;
  if (kind == 'f' && size == 8) return DType::Float64;
  if (kind == 'f' && size == 2) return DType::Float16;
  if (kind == 'i' && size == 8) return DType::Int64;
  if (kind == 'i' && size == 4) return DType::Int32;
  if (kind == 'i' && size == 2) return DType::Int16;
  if (kind == 'i' && size == 1) return DType::Int8;
  if (kind == 'u' && size == 1) return DType::UInt8;
  if (kind == 'b' && size == 1) return DType::Bool;
  ok = false;
  return DType::Float32;
}

// NumPy has no bfloat16: such tensors refuse numpy() as in PyTorch (convert with .float()).
py::dtype nc_to_numpy_dtype(DType d) {
  switch (d) {
    case DType::Float32: return py::dtype::of<float>();
    case DType::Float64: return py::dtype::of<double>();
    case DType::Int64: return py::dtype::of<int64_t>();
    case DType::Int32: return py::dtype::of<int32_t>();
    case DType::Int16: return py::dtype::of<int16_t>();
    case DType::Int8: return py::dtype::of<int8_t>();
    case DType::UInt8: return py::dtype::of<uint8_t>();
    case DType::Float16: return py::dtype("float16");
    case DType::BFloat16:
      throw nc::TypeError("[numpy] Got unsupported ScalarType BFloat16: NumPy has no bfloat16; use .float() first");
    default: return py::dtype::of<bool>();
  }
}

DType checked_numpy_dtype(const py::array& arr) {
  bool ok;
  DType d = numpy_dtype_to_nc(arr.dtype(), ok);
  if (!ok) throw nc::TypeError(cat_str("[from_numpy] unsupported NumPy dtype ", std::string(py::str(arr.dtype())),
                                       "; supported: float16/32/64, int8/16/32/64, uint8, bool"));
  return d;
}

// Why an array's memory can't back a tensor as it is. `refused`: the layout has no tensor
// equivalent, so sharing it is refused (as in PyTorch); otherwise a copy serves.
struct Unshareable {
  const char* why = nullptr;
  bool refused = false;
};

// The one check of a NumPy buffer on the way in. A tensor reads its memory as native-endian T at
// offsets stride * itemsize >= 0 and may write to it, so other byte orders, negative or
// non-multiple strides, unaligned data and read-only memory all need a copy.
Unshareable unshareable_reason(const py::array& arr, DType d) {
  const int64_t isz = static_cast<int64_t>(itemsize(d));
  if (!arr.dtype().attr("isnative").cast<bool>())
    return {"given numpy array has byte order different from the native byte order", true};
  for (int64_t i = 0; i < arr.ndim(); ++i) {
    if (arr.strides(i) < 0)
      return {"at least one stride in the given numpy array is negative, and tensors with negative strides are "
              "not supported", true};
    if (arr.strides(i) % isz != 0) return {"the given numpy array's strides are not a multiple of its itemsize"};
  }
  if (reinterpret_cast<uintptr_t>(arr.data()) % static_cast<uintptr_t>(isz) != 0)
    return {"the given numpy array's data is not aligned to its itemsize"};
  if (!arr.writeable()) return {"the given numpy array is not writable"};
  return {};
}

// Shares the memory of an array that passed unshareable_reason; the array stays alive while any
// tensor uses the storage.
Tensor from_numpy_shared(const py::array& arr, DType d) {
  const int64_t nd = arr.ndim();
  Shape shape(nd), strides(nd);
  const int64_t isz = static_cast<int64_t>(itemsize(d));
  for (int64_t i = 0; i < nd; ++i) {
    shape[i] = arr.shape(i);
    strides[i] = arr.strides(i) / isz;
  }
  // Keep the array alive; drop the reference with the GIL held, whichever thread frees the storage.
  PyObject* obj = arr.ptr();
  Py_INCREF(obj);
  std::shared_ptr<void> owner(nullptr, [obj](void*) {
    if (!Py_IsInitialized()) return;
    py::gil_scoped_acquire gil;
    Py_DECREF(obj);
  });
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::wrap(const_cast<void*>(arr.data()), arr.nbytes(), std::move(owner));
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = d;
  return Tensor(std::move(impl));
}

// A private tensor with the array's values: converted to native byte order and C order by NumPy
// when the memory can't be read as it is, then copied into our own storage.
Tensor from_numpy_copy(const py::array& arr, DType d) {
  if (!unshareable_reason(arr, d).why) return clone(from_numpy_shared(arr, d));
  py::module_ np = py::module_::import("numpy");
  py::array c = np.attr("array")(arr, py::arg("dtype") = arr.dtype().attr("newbyteorder")("="),
                                 py::arg("order") = "C", py::arg("copy") = true);
  return clone(from_numpy_shared(c, d));
}

// expose: the array may be written (user code, MPI), bumping no version counter, so nothing
// derived from the values may be cached any more (Storage::exposed); internal reads pass false.
py::array to_numpy(const Tensor& t, bool expose) {
  if (expose) t.impl()->storage->exposed.store(true);
  // The capsule keeps the storage alive while NumPy uses the memory.
  auto* keep = new std::shared_ptr<Storage>(t.impl()->storage);
  py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<Storage>*>(p); });
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end()), strides(t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) strides[i] = t.strides()[i] * static_cast<int64_t>(t.itemsize());
  return py::array(nc_to_numpy_dtype(t.dtype()), shape, strides, t.raw_data(), base);
}

}  // namespace

void bind_tensor(py::module_& m, TensorClass& cls) {
  py::enum_<DType>(m, "dtype")
      .value("bool", DType::Bool)
      .value("int64", DType::Int64)
      .value("float32", DType::Float32)
      .value("float64", DType::Float64)
      .value("uint8", DType::UInt8)
      .value("int8", DType::Int8)
      .value("int16", DType::Int16)
      .value("int32", DType::Int32)
      .value("float16", DType::Float16)
      .value("bfloat16", DType::BFloat16)
      .def_property_readonly("is_floating_point", [](DType d) { return is_float_type(d); })
      .def_property_readonly("itemsize", [](DType d) { return itemsize(d); })
      .def("__repr__", [](DType d) { return std::string("neurocore.") + dtype_name(d); })
      .def("__str__", [](DType d) { return std::string("neurocore.") + dtype_name(d); });

  // copy=False (from_numpy, as_tensor) shares the memory: arrays in another byte order or with
  // negative strides are refused as in PyTorch (sharing is the point of the call), read-only or
  // unaligned ones are copied (a tensor may write to its memory and reads it as aligned T).
  // copy=True (tensor) always gives a private copy, converting whatever the layout.
  m.def("_from_numpy", [](py::array arr, bool copy) {
    const DType d = checked_numpy_dtype(arr);
    if (copy) return from_numpy_copy(arr, d);
    const Unshareable u = unshareable_reason(arr, d);
    if (!u.why) return from_numpy_shared(arr, d);
    if (u.refused)
      throw nc::ValueError(cat_str("[from_numpy] ", u.why, " (shape ", shape_str(Shape(arr.shape(), arr.shape() + arr.ndim())),
                                   "); use neurocore.tensor(array) for a converted copy"));
    return from_numpy_copy(arr, d);
  }, py::arg("array"), py::arg("copy"));

  cls.def(py::init([](const Tensor& other) { return detach(other); }),
          "An alias of another tensor (shares storage, no history).")
      .def("numpy", [](const Tensor& t) {
        if (t.requires_grad())
          throw nc::RuntimeError("[numpy] can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()");
        return to_numpy(t, true);
      })
      .def("_numpy_unchecked", &to_numpy, py::arg("expose") = false)
      .def_property_readonly("shape", [](const Tensor& t) { return shape_tuple(t.shape()); })
      .def_property_readonly("dtype", &Tensor::dtype)
      .def_property_readonly("ndim", &Tensor::dim)
      .def("dim", &Tensor::dim)
      .def("numel", &Tensor::numel)
      .def("stride", [](const Tensor& t) { return shape_tuple(t.strides()); })
      .def("storage_offset", &Tensor::offset)
      .def("is_contiguous", &Tensor::is_contiguous)
      .def("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw_data()); })
      .def_property_readonly("_version", &Tensor::version)
      .def_property_readonly("is_leaf", &Tensor::is_leaf)
      .def_property("requires_grad", &Tensor::requires_grad,
                    [](const Tensor& t, bool r) { set_requires_grad(t, r); })
      .def("requires_grad_", [](py::object self, bool r) { set_requires_grad(self.cast<const Tensor&>(), r); return self; },
           py::arg("requires_grad") = true)
      .def_property("grad", [](const Tensor& t) { return tensor_or_none(t.grad()); },
                    [](const Tensor& t, py::object g) {
                      if (g.is_none()) { t.impl()->grad.reset(); return; }
                      Tensor gt = py::cast<Tensor>(g);
                      NC_CHECK(gt.shape() == t.shape() && gt.dtype() == t.dtype(), ValueError,
                               "[grad] assigned grad has shape ", shape_str(gt.shape()), " ", dtype_name(gt.dtype()),
                               " but the tensor has shape ", shape_str(t.shape()), " ", dtype_name(t.dtype()));
                      t.impl()->grad = gt.impl_ptr();
                    })
      .def_property_readonly("grad_fn", [](const Tensor& t) -> py::object {
        if (!t.grad_fn()) return py::none();
        return py::str(t.grad_fn()->name() + "Backward");
      })
      .def("retain_grad", [](const Tensor& t) { retain_grad(t); })
      .def_property_readonly("retains_grad", [](const Tensor& t) { return t.impl()->retains_grad; })
      .def("detach", &detach)
      .def("detach_", [](py::object self) {
        const Tensor& t = self.cast<const Tensor&>();
        NC_CHECK(!t.impl()->is_view || !t.requires_grad(), RuntimeError,
                 "[detach_] can't detach a view in place; use detach()");
        t.impl()->grad_fn.reset();
        t.impl()->requires_grad = false;
        return self;
      })
      .def("_is_same", [](const Tensor& a, const Tensor& b) { return a.same(b); })
      .def("_set_data", [](const Tensor& t, const Tensor& src) {
        // tensor.data = other: swap in the other's storage and geometry, keep the autograd identity.
        TensorImpl* i = t.impl();
        if (src.dtype() != t.dtype()) {  // module.double() etc.: a gradient of the old dtype is dropped
          i->dtype = src.dtype();
          i->grad.reset();
        }
        i->storage = src.impl()->storage;
        i->shape = src.shape();
        i->strides = src.strides();
        i->offset = src.offset();
      })
      .def("backward", [](const Tensor& t, py::object gradient, py::object retain_graph, bool create_graph) {
        Tensor g = gradient.is_none() ? Tensor() : to_operand(gradient, t.dtype(), "backward");
        bool retain = retain_graph.is_none() ? create_graph : retain_graph.cast<bool>();
        py::gil_scoped_release release;
        backward({t}, {g}, retain, create_graph);
      }, py::arg("gradient") = py::none(), py::arg("retain_graph") = py::none(), py::arg("create_graph") = false);

  m.def("_autograd_grad", [](const TensorList& outputs, const TensorList& inputs, std::vector<py::object> grads,
                             bool retain_graph, bool create_graph, bool allow_unused) {
    TensorList gs;
    for (size_t i = 0; i < grads.size(); ++i)
      gs.push_back(grads[i].is_none() ? Tensor() : py::cast<Tensor>(grads[i]));
    TensorList r;
    {
      py::gil_scoped_release release;
      r = grad(outputs, inputs, gs, retain_graph, create_graph, allow_unused);
    }
    py::list out;
    for (auto& t : r) out.append(tensor_or_none(t));
    return out;
  });
  m.def("_autograd_backward", [](const TensorList& outputs, std::vector<py::object> grads, bool retain_graph,
                                 bool create_graph) {
    TensorList gs;
    for (auto& g : grads) gs.push_back(g.is_none() ? Tensor() : py::cast<Tensor>(g));
    py::gil_scoped_release release;
    backward(outputs, gs, retain_graph, create_graph);
  });

  m.def("_is_anomaly_enabled", &AnomalyMode::is_enabled);
  m.def("_set_anomaly_enabled", &AnomalyMode::set_enabled);
  // Sets this thread's current module for anomaly reports; returns the previous one.
  m.def("_swap_anomaly_module", [](std::string module) {
    std::string prev = AnomalyMode::current_module();
    AnomalyMode::set_current_module(std::move(module));
    return prev;
  });
  m.def("is_grad_enabled", &GradMode::is_enabled);
  m.def("_set_grad_enabled", &GradMode::set_enabled);

  m.def("manual_seed", [](uint64_t s) { manual_seed(s); });
  m.def("initial_seed", &initial_seed);
  m.def("get_rng_state", [] { auto s = get_rng_state(); return py::make_tuple(s.key, s.counter); });
  m.def("set_rng_state", [](std::pair<uint64_t, uint64_t> s) { set_rng_state({s.first, s.second}); });
  m.def("_uniform_", [](const Tensor& t, double lo, double hi) { py::gil_scoped_release r; uniform_(t, lo, hi); return t; });
  m.def("_normal_", [](const Tensor& t, double mean, double std) { py::gil_scoped_release r; normal_(t, mean, std); return t; });
  m.def("_random_int_", [](const Tensor& t, int64_t lo, int64_t hi) { py::gil_scoped_release r; random_int_(t, lo, hi); return t; });
  m.def("_bernoulli_scaled_", [](const Tensor& t, double p) { py::gil_scoped_release r; bernoulli_scaled_(t, p); return t; });

  m.def("_full", [](py::handle shape, py::handle value, DType dt) {
    Tensor v = fill_operand(value, dt, "full");
    Tensor out = Tensor::empty(to_shape(shape, "full"), dt, "full");
    copy_raw(out, v);
    return out;
  });
  m.def("_empty", [](py::handle shape, DType dt) { return Tensor::empty(to_shape(shape, "empty"), dt); });
}

}  // namespace nc::py_bindings
