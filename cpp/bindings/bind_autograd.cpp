// Bindings of the autograd extension points that call back into Python: tensor hooks, callbacks
// queued for the end of backward, and custom Functions (nc.autograd.Function). Backward runs with
// the GIL released, so every call into Python, and every release of a Python object held by the
// graph, takes the GIL first.
#include "bindings/common.h"
#include "core/autograd.h"

#include <memory>

namespace nc::py_bindings {

namespace {

// A Python callable owned by C++ code that may run, or be destroyed, without the GIL.
using PyFn = std::shared_ptr<py::object>;
PyFn hold(py::object fn) {
  return PyFn(new py::object(std::move(fn)), [](py::object* p) {
    if (!Py_IsInitialized()) {  // a graph outliving the interpreter: leak the reference, do not touch Python
      p->release();
      delete p;
      return;
    }
    py::gil_scoped_acquire gil;
    delete p;
  });
}

Tensor as_tensor_or_undefined(py::handle h, const char* what) {
  if (h.is_none()) return Tensor();
  const Tensor* t = tensor_ptr(h);
  if (!t) throw TypeError(cat_str("[", what, "] expected a Tensor or None, got ", std::string(py::str(h.get_type()))));
  return *t;
}

}  // namespace

void bind_autograd(py::module_& m, TensorClass& cls) {
  cls.def("_register_hook", [](const Tensor& t, py::object fn) {
    PyFn f = hold(std::move(fn));
    return register_grad_hook(t, [f](const Tensor& g) {
      py::gil_scoped_acquire gil;
      return as_tensor_or_undefined((*f)(g), "register_hook");
    });
  });
  cls.def("_register_post_accumulate_grad_hook", [](const Tensor& t, py::object fn) {
    PyFn f = hold(std::move(fn));
    return register_post_accumulate_grad_hook(t, [f](const Tensor& leaf) {
      py::gil_scoped_acquire gil;
      (*f)(leaf);
    });
  });
  cls.def("_remove_hook", [](const Tensor& t, int64_t id) { remove_hook(t, id); });

  m.def("_queue_callback", [](py::object fn) {
    PyFn f = hold(std::move(fn));
    queue_callback([f] {
      py::gil_scoped_acquire gil;
      (*f)();
    });
  });

  // Makes `outputs` (computed without history) the outputs of a node over `inputs` whose backward
  // calls `backward(*grads)` (None for an output that received no gradient) and takes one Tensor
  // or None per input.
  m.def("_record_function", [](const std::string& name, const TensorList& inputs, const TensorList& outputs,
                               py::object backward) {
    if (!needs_history(inputs)) return false;
    PyFn f = hold(std::move(backward));
    const size_t n_in = inputs.size();
    set_history(name, inputs, outputs, [f, name, n_in](const TensorList& grads, const std::vector<bool>&) {
      py::gil_scoped_acquire gil;
      py::tuple args(grads.size());
      for (size_t i = 0; i < grads.size(); ++i) args[i] = tensor_or_none(grads[i]);
      py::object r = (*f)(*args);
      py::tuple rs = py::isinstance<py::tuple>(r) ? r.cast<py::tuple>() : py::make_tuple(r);
      if (rs.size() != n_in)
        throw RuntimeError(cat_str("[", name, ".backward] returned ", rs.size(), " gradients, expected ", n_in,
                                   " (one per tensor input of forward)"));
      TensorList out;
      for (size_t i = 0; i < n_in; ++i) out.push_back(as_tensor_or_undefined(rs[i], name.c_str()));
      return out;
    });
    return true;
  });
}

}  // namespace nc::py_bindings
