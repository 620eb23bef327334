// Bindings of sorting, selection, cumulative ops, scatter and seeded generators.
#include "bindings/common.h"
#include "core/random.h"
#include "ops/copy.h"
#include "ops/gather.h"
#include "ops/scan.h"
#include "ops/sort.h"

namespace nc::py_bindings {

namespace {
ScatterReduce reduce_arg(py::handle reduce) {
  if (reduce.is_none()) return ScatterReduce::None;
  const std::string r = py::str(reduce);
  if (r == "add") return ScatterReduce::Add;
  if (r == "multiply") return ScatterReduce::Multiply;
  throw nc::ValueError("[scatter] reduce argument must be either 'add' or 'multiply', got '" + r + "'");
}
}  // namespace

void bind_sort(py::module_& m) {
  auto rel = py::call_guard<py::gil_scoped_release>();
  m.def("_sort", [](const Tensor& x, int64_t dim, bool descending) {
    ValuesIndices r;
    {
      py::gil_scoped_release release;
      r = sort(x, dim, descending);
    }
    return py::make_tuple(r.values, r.indices);
  });
  m.def("_argsort", &argsort, rel);
  m.def("_topk", [](const Tensor& x, int64_t k, int64_t dim, bool largest) {
    ValuesIndices r;
    {
      py::gil_scoped_release release;
      r = topk(x, k, dim, largest);
    }
    return py::make_tuple(r.values, r.indices);
  });
  m.def("_sample_from_cdf", &sample_from_cdf, rel);
  m.def("_cumsum", [](const Tensor& x, int64_t dim) { return cumsum(x, dim); }, rel);
  m.def("_cumprod", &cumprod, rel);
  m.def("_scatter", [](const Tensor& x, int64_t dim, const Tensor& index, py::handle src, py::handle reduce,
                       const std::string& op) {
    const Tensor* st = tensor_ptr(src);
    Tensor s = st ? *st : fill_operand(src, x.dtype(), op.c_str());
    if (!st) s = to_dtype(s, x.dtype());
    const ScatterReduce r = reduce_arg(reduce);
    py::gil_scoped_release release;
    return scatter(x, dim, index, s, st == nullptr, r, op.c_str());
  });
  // Runs fn() with this thread's draws taken from the generator state (key, counter); returns
  // (fn's result, the advanced counter).
  m.def("_with_generator", [](uint64_t key, uint64_t counter, py::function fn) {
    PhiloxState state{key, counter};
    GeneratorScope scope(&state);
    py::object r = fn();
    return py::make_tuple(r, state.counter);
  });
}

}  // namespace nc::py_bindings
