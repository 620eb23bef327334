// neurocore._core._RuntimeSession: the C++ embedded-inference runtime (cpp/runtime/) for
// neurocore.export.load. Inputs are float32 C-contiguous NumPy arrays (the Python side converts);
// outputs are new arrays the runtime writes into directly. The GIL is released while it runs, so
// Python threads calling one session run concurrently.
#include "bindings/common.h"
#include "neurocore/runtime.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

namespace py = pybind11;

namespace nc::py_bindings {

void bind_runtime(py::module_& m) {
  using Array = py::array_t<float, py::array::c_style | py::array::forcecast>;
  py::register_exception<neurocore::Error>(m, "RuntimeModelError", PyExc_ValueError);
  py::class_<neurocore::Session>(m, "_RuntimeSession")
      .def(py::init([](const std::string& path) {
             py::gil_scoped_release release;
             return neurocore::Session(path);
           }),
           py::arg("path"))
      .def_property_readonly("input_names", &neurocore::Session::input_names)
      .def_property_readonly("output_names", &neurocore::Session::output_names)
      .def_property_readonly("input_shapes", &neurocore::Session::input_shapes)
      .def_property_readonly("num_nodes", &neurocore::Session::num_nodes)
      .def("describe", &neurocore::Session::describe)
      .def_property("num_threads", &neurocore::Session::num_threads, &neurocore::Session::set_num_threads)
      .def("run", [](const neurocore::Session& s, const std::vector<Array>& inputs) {
        std::vector<neurocore::Tensor> in;
        std::vector<std::vector<int64_t>> shapes;
        in.reserve(inputs.size());
        shapes.reserve(inputs.size());
        for (const Array& a : inputs) {
          shapes.emplace_back(a.shape(), a.shape() + a.ndim());
          in.emplace_back(a.data(), shapes.back());
        }
        // With the GIL held: after the first call for these shapes this is a cached-plan lookup,
        // cheaper than releasing and taking the GIL once more.
        const std::vector<std::vector<int64_t>> out_shapes = s.output_shapes(shapes);
        std::vector<Array> outs;
        std::vector<neurocore::Tensor> out_views;
        outs.reserve(out_shapes.size());
        out_views.reserve(out_shapes.size());
        for (const auto& shape : out_shapes) {
          outs.emplace_back(std::vector<py::ssize_t>(shape.begin(), shape.end()));
          out_views.emplace_back(outs.back().mutable_data(), shape);
        }
        {
          py::gil_scoped_release release;
          s.run(in, out_views);
        }
        return outs;
      }, py::arg("inputs"));
}

}  // namespace nc::py_bindings
