// Direct access to raw kernels for kernel tests (names start with an underscore: not public API).
#include "bindings/common.h"
#include "kernels/philox.h"
#include "kernels/vecmath.h"

namespace nc::py_bindings {

void bind_kernels(py::module_& m) {
  m.def("_philox", [](uint64_t key, uint64_t counter, int64_t n) {
    py::array_t<uint32_t> out(4 * n);
    kernels::philox().philox4x32(key, counter, n, out.mutable_data());
    return out;
  });
  m.def("_vecmath", [](const std::string& fn, py::array_t<float, py::array::c_style | py::array::forcecast> x) {
    const auto& k = kernels::vecmath().f32;
    auto f = fn == "exp" ? k.exp : fn == "log" ? k.log : fn == "tanh" ? k.tanh
           : fn == "sigmoid" ? k.sigmoid : fn == "erf" ? k.erf : fn == "expm1" ? k.expm1
           : fn == "log1p" ? k.log1p : nullptr;
    if (!f) throw nc::ValueError("[_vecmath] unknown function '" + fn + "'");
    py::array_t<float> y(x.size());
    {
      py::gil_scoped_release release;
      f(x.data(), y.mutable_data(), x.size());
    }
    return y;
  });
}

}  // namespace nc::py_bindings
