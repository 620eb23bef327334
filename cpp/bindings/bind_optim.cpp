// Bindings of the fused optimizer steps (one call per parameter group, GIL released).
#include "bindings/common.h"
#include "ops/optim.h"

namespace nc::py_bindings {

namespace {
TensorList optional_list(const std::vector<py::object>& items) {
  TensorList out;
  for (const auto& o : items) out.push_back(o.is_none() ? Tensor() : py::cast<Tensor>(o));
  return out;
}
}  // namespace

void bind_optim(py::module_& m, TensorClass& cls) {
  m.def("_sgd_step", [](const TensorList& params, const TensorList& grads, std::vector<py::object> bufs, double lr,
                        double momentum, double dampening, double weight_decay, bool nesterov, bool maximize) {
    TensorList b = optional_list(bufs);
    {
      py::gil_scoped_release release;
      sgd_step(params, grads, b, {lr, momentum, dampening, weight_decay, nesterov, maximize});
    }
    py::list out;
    for (auto& t : b) out.append(tensor_or_none(t));
    return out;
  });
  m.def("_adam_step", [](const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
                         const TensorList& exp_avg_sqs, std::vector<py::object> max_sqs, const std::vector<int64_t>& steps,
                         double lr, double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
                         bool maximize, bool decoupled) {
    TensorList mx = optional_list(max_sqs);
    py::gil_scoped_release release;
    adam_step(params, grads, exp_avgs, exp_avg_sqs, mx, steps,
              {lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled});
  });
  m.def("_rmsprop_step", [](const TensorList& params, const TensorList& grads, const TensorList& square_avgs,
                            std::vector<py::object> bufs, std::vector<py::object> grad_avgs, double lr, double alpha,
                            double eps, double weight_decay, double momentum, bool centered, bool maximize) {
    TensorList b = optional_list(bufs), ga = optional_list(grad_avgs);
    py::gil_scoped_release release;
    rmsprop_step(params, grads, square_avgs, b, ga, {lr, alpha, eps, weight_decay, momentum, centered, maximize});
  });
  m.def("_adagrad_step", [](const TensorList& params, const TensorList& grads, const TensorList& sums,
                            const std::vector<int64_t>& steps, double lr, double lr_decay, double weight_decay,
                            double eps, bool maximize) {
    py::gil_scoped_release release;
    adagrad_step(params, grads, sums, steps, {lr, lr_decay, weight_decay, eps, maximize});
  });
}

}  // namespace nc::py_bindings
