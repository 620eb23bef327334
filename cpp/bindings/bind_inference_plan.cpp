// Sequential's compiled no_grad steps (python/neurocore/nn/_fusion.py) run in one call. At batch
// 1 a step's op takes a few microseconds, and the Python loop that dispatched the steps one by one
// (a tuple unpacked, a dict read, a binding's arguments converted per step) cost a quarter of a
// small MLP's forward. The plan's geometry is converted once, when the plan is compiled; what can
// change between calls is read at every call, as the Python loop did: the weights and biases from
// the layers' parameter registries, and modules the plan does not model are called as Python.
#include "bindings/common.h"
#include "core/parallel.h"
#include "core/thread_choice.h"
#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/linalg.h"
#include "ops/linear_act.h"
#include "ops/shape.h"

namespace nc::py_bindings {

namespace {

// Step kinds, numbered as _fusion's step tuples are.
enum Kind : int { kCall, kConv, kLinear, kLinearRelu, kMaxPool, kFlatten, kRelu, kReluInPlace, kKinds };

struct Step {
  Kind kind = kCall;
  py::object call;  // kCall: the module (or fused pair) called with the running value
  py::dict params;  // kConv, kLinear*: the layer's parameter registry
  Conv2dParams conv;
  Pool2dParams pool;
  std::string op;   // the layer's name for error messages
  bool relu = false;
  int64_t start = 0, end = 0;  // kFlatten
};

int64_t item(const py::tuple& t, size_t i) { return t[i].cast<int64_t>(); }

Step parse(const py::tuple& spec) {
  Step s;
  const int kind = spec[0].cast<int>();
  if (kind < 0 || kind >= kKinds) throw py::value_error("[_InferencePlan] unknown step kind " + std::to_string(kind));
  s.kind = static_cast<Kind>(kind);
  switch (s.kind) {
    case kCall:
      s.call = spec[1];
      break;
    case kConv: {  // (kind, params, stride, pads, dilation, groups, op, relu)
      s.params = spec[1].cast<py::dict>();
      const auto stride = spec[2].cast<py::tuple>(), pads = spec[3].cast<py::tuple>(), dil = spec[4].cast<py::tuple>();
      s.conv.sh = item(stride, 0), s.conv.sw = item(stride, 1);
      s.conv.pt = item(pads, 0), s.conv.pb = item(pads, 1), s.conv.pl = item(pads, 2), s.conv.pr = item(pads, 3);
      s.conv.dh = item(dil, 0), s.conv.dw = item(dil, 1);
      s.conv.groups = spec[5].cast<int64_t>();
      s.op = spec[6].cast<std::string>();
      s.relu = spec[7].cast<bool>();
      break;
    }
    case kLinear:
    case kLinearRelu:
      s.params = spec[1].cast<py::dict>();
      s.op = "Linear";
      break;
    case kMaxPool: {  // (kind, kernel, stride, padding, dilation, ceil_mode, op)
      const auto k = spec[1].cast<py::tuple>(), st = spec[2].cast<py::tuple>(), p = spec[3].cast<py::tuple>(),
                 d = spec[4].cast<py::tuple>();
      s.pool.kh = item(k, 0), s.pool.kw = item(k, 1), s.pool.sh = item(st, 0), s.pool.sw = item(st, 1);
      s.pool.ph = item(p, 0), s.pool.pw = item(p, 1), s.pool.dh = item(d, 0), s.pool.dw = item(d, 1);
      s.pool.ceil_mode = spec[5].cast<bool>();
      s.op = spec[6].cast<std::string>();
      break;
    }
    case kFlatten:
      s.start = spec[1].cast<int64_t>(), s.end = spec[2].cast<int64_t>();
      s.op = "Flatten";
      break;
    case kRelu:
    case kReluInPlace:
      s.op = "ReLU";
      break;
    case kKinds:
      break;
  }
  return s;
}

// The running value as a Tensor, or the TypeError the layer's own call would give.
Tensor tensor_input(py::handle value, const Step& s) {
  if (const Tensor* t = tensor_ptr(value)) return *t;
  throw py::type_error("[" + s.op + "] expected a Tensor input, got " + py::type::handle_of(value).attr("__name__").cast<std::string>());
}

// A layer's weight and bias as they are now (a bias of None: undefined).
std::pair<Tensor, Tensor> weight_and_bias(const Step& s) {
  const auto get = [&](const char* name, bool optional) {
    PyObject* v = PyDict_GetItemString(s.params.ptr(), name);  // borrowed
    if (v == nullptr || v == Py_None) {
      if (optional) return Tensor();
      throw py::type_error("[" + s.op + "] has no " + name);
    }
    if (const Tensor* t = tensor_ptr(v)) return *t;
    throw py::type_error("[" + s.op + "] " + name + " must be a Tensor");
  };
  return {get("weight", false), get("bias", true)};
}

Tensor apply(const Step& s, const Tensor& x, const std::pair<Tensor, Tensor>& wb) {
  switch (s.kind) {
    case kConv:
      return conv2d(x, wb.first, wb.second, s.conv, s.op, s.relu);
    case kLinear:
      return linear(x, wb.first, wb.second);
    case kLinearRelu:
      return linear_act(x, wb.first, wb.second, "relu");
    case kMaxPool:
      return max_pool2d(x, s.pool, s.op, false).first;
    case kFlatten:
      return flatten(x, s.start, s.end);
    case kRelu:
      return relu(x);
    default:
      throw std::logic_error("[_InferencePlan] step kind without an op");
  }
}

bool needs_python(Kind k) { return k == kCall || k == kReluInPlace; }
bool has_weights(Kind k) { return k == kConv || k == kLinear || k == kLinearRelu; }

class InferencePlan {
 public:
  explicit InferencePlan(const py::tuple& steps) {
    for (const auto& spec : steps) steps_.push_back(parse(spec.cast<py::tuple>()));
  }

  // The steps on the calling thread alone or shared with the pool, whichever runs faster here
  // (core/thread_choice.h): at batch 1 the answer depends on where the host put the threads.
  py::object run(py::object value) {
    if (get_num_threads() <= 1) return run_steps(std::move(value));
    return choice_.run([&] { return run_steps(std::move(value)); });
  }

 private:
  py::object run_steps(py::object value) const {
    const size_t n = steps_.size();
    std::vector<std::pair<Tensor, Tensor>> wb;
    for (size_t i = 0; i < n;) {
      const Step& s = steps_[i];
      if (s.kind == kCall) {
        value = s.call(value);
        ++i;
        continue;
      }
      if (s.kind == kReluInPlace) {
        tensor_input(value, s);
        value = value.attr("relu_")();
        ++i;
        continue;
      }
      // A run of op steps: their weights read now (Python objects), then the ops without the GIL.
      size_t j = i;
      while (j < n && !needs_python(steps_[j].kind)) ++j;
      Tensor x = tensor_input(value, s);
      wb.assign(j - i, {});
      for (size_t k = i; k < j; ++k)
        if (has_weights(steps_[k].kind)) wb[k - i] = weight_and_bias(steps_[k]);
      {
        py::gil_scoped_release release;
        for (size_t k = i; k < j; ++k) x = apply(steps_[k], x, wb[k - i]);
      }
      value = py::cast(std::move(x));
      i = j;
    }
    return value;
  }

  std::vector<Step> steps_;
  ThreadChoice choice_;
};

}  // namespace

void bind_inference_plan(py::module_& m) {
  py::class_<InferencePlan>(m, "_InferencePlan")
      .def(py::init<const py::tuple&>())
      .def("__call__", &InferencePlan::run);
}

}  // namespace nc::py_bindings
