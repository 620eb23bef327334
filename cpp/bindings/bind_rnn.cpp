// Bindings of the recurrent layer op (nn.RNN, nn.LSTM, nn.GRU and their cells).
#include "bindings/common.h"
#include "ops/rnn.h"

namespace nc::py_bindings {

namespace {
Tensor optional(py::handle h) { return h.is_none() ? Tensor() : py::cast<Tensor>(h); }
}  // namespace

void bind_rnn(py::module_& m, TensorClass& cls) {
  // mode: 0 RNN tanh, 1 RNN relu, 2 LSTM, 3 GRU. Returns (output, h_n) or (output, h_n, c_n).
  m.def("_rnn_layer", [](int mode, const Tensor& x, const std::vector<int64_t>& batch_sizes, bool reverse,
                         py::handle h0, py::handle c0, const Tensor& w_ih, const Tensor& w_hh, py::handle b_ih,
                         py::handle b_hh, py::handle w_hr, const std::string& name) {
    if (mode < 0 || mode > 3) throw ValueError("[" + name + "] unknown recurrent mode " + std::to_string(mode));
    Tensor h = optional(h0), c = optional(c0), bi = optional(b_ih), bh = optional(b_hh), wr = optional(w_hr);
    py::gil_scoped_release release;
    return rnn_layer(static_cast<RnnMode>(mode), x, batch_sizes, reverse, h, c, w_ih, w_hh, bi, bh, wr, name);
  });
}

}  // namespace nc::py_bindings
