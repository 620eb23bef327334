// The neurocore._core extension module: registers each family's bindings.
#include "bindings/common.h"
#include "core/error.h"
#include "core/parallel.h"
#include "kernels/dispatch.h"

namespace py = pybind11;
using namespace nc::py_bindings;

PYBIND11_MODULE(_core, m) {
  m.doc() = "neurocore C++ core";
  nc::kernels::active_isa();  // a bad NEUROCORE_CPU fails the import, not a later op
  // nc::TypeError derives from std::invalid_argument, which pybind11 would turn into ValueError.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const nc::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    }
  });
  m.def("cpu_capability", [] { return nc::kernels::isa_name(nc::kernels::active_isa()); },
        "The kernel build in use: 'avx2' or 'generic' (NEUROCORE_CPU forces one).");
  m.def("cpu_supports_avx2", &nc::kernels::cpu_supports_avx2);
  m.def("get_num_threads", &nc::get_num_threads);
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw nc::ValueError("[set_num_threads] expected a positive number of threads, got " + std::to_string(n));
    nc::set_num_threads(n);
  });
  TensorClass cls(m, "Tensor");
  bind_tensor(m, cls);
  bind_core_ops(m, cls);
  bind_elementwise(m, cls);
  bind_reduce(m, cls);
  bind_loss(m, cls);
  bind_shape(m, cls);
  bind_optim(m, cls);
}
