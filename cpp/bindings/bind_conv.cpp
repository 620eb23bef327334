// Bindings of convolution and pooling. Python resolves int/tuple/'same' arguments into the
// explicit per-side values these take.
#include "bindings/common.h"
#include "ops/conv.h"
#include "ops/conv_transpose.h"

namespace nc::py_bindings {

void bind_conv(py::module_& m, TensorClass& cls) {
  m.def("_conv2d", [](const Tensor& x, const Tensor& w, py::handle bias, std::vector<int64_t> stride,
                      std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups,
                      const std::string& op, bool relu) {
    Tensor b = bias.is_none() ? Tensor() : py::cast<Tensor>(bias);
    Conv2dParams p;
    p.sh = stride.at(0), p.sw = stride.at(1);
    p.pt = padding.at(0), p.pb = padding.at(1), p.pl = padding.at(2), p.pr = padding.at(3);
    p.dh = dilation.at(0), p.dw = dilation.at(1);
    p.groups = groups;
    py::gil_scoped_release release;
    return conv2d(x, w, b, p, op, relu);
  }, py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
     py::arg("groups"), py::arg("op"), py::arg("relu") = false);
  m.def("_has_winograd_weight", &has_winograd_weight,
        "Whether w has its Winograd transform cached, matching it as it is now.");
  m.def("_conv_transpose2d", [](const Tensor& x, const Tensor& w, py::handle bias, std::vector<int64_t> stride,
                                std::vector<int64_t> padding, std::vector<int64_t> output_padding,
                                std::vector<int64_t> dilation, int64_t groups, const std::string& op) {
    Tensor b = bias.is_none() ? Tensor() : py::cast<Tensor>(bias);
    ConvTranspose2dParams p;
    p.sh = stride.at(0), p.sw = stride.at(1), p.ph = padding.at(0), p.pw = padding.at(1);
    p.oph = output_padding.at(0), p.opw = output_padding.at(1), p.dh = dilation.at(0), p.dw = dilation.at(1);
    p.groups = groups;
    py::gil_scoped_release release;
    return conv_transpose2d(x, w, b, p, op);
  });
  auto pool_params = [](std::vector<int64_t> k, std::vector<int64_t> s, std::vector<int64_t> pad,
                        std::vector<int64_t> d, bool ceil_mode) {
    Pool2dParams p;
    p.kh = k.at(0), p.kw = k.at(1), p.sh = s.at(0), p.sw = s.at(1), p.ph = pad.at(0), p.pw = pad.at(1);
    p.dh = d.at(0), p.dw = d.at(1), p.ceil_mode = ceil_mode;
    return p;
  };
  m.def("_max_pool2d", [pool_params](const Tensor& x, std::vector<int64_t> k, std::vector<int64_t> s,
                                     std::vector<int64_t> pad, std::vector<int64_t> d, bool ceil_mode,
                                     bool return_indices, const std::string& op) {
    Pool2dParams p = pool_params(k, s, pad, d, ceil_mode);
    std::pair<Tensor, Tensor> r;
    {
      py::gil_scoped_release release;  // reacquired before building the result
      r = max_pool2d(x, p, op, return_indices);
    }
    if (!return_indices) return py::object(py::cast(r.first));
    return py::object(py::make_tuple(r.first, r.second));
  });
  m.def("_avg_pool2d", [pool_params](const Tensor& x, std::vector<int64_t> k, std::vector<int64_t> s,
                                     std::vector<int64_t> pad, bool ceil_mode, bool count_include_pad,
                                     int64_t divisor_override, const std::string& op) {
    Pool2dParams p = pool_params(k, s, pad, {1, 1}, ceil_mode);
    p.count_include_pad = count_include_pad;
    p.divisor_override = divisor_override;
    py::gil_scoped_release release;
    return avg_pool2d(x, p, op);
  });
  m.def("_adaptive_avg_pool2d", [](const Tensor& x, int64_t oh, int64_t ow, const std::string& op) {
    py::gil_scoped_release release;
    return adaptive_avg_pool2d(x, oh, ow, op);
  });
}

}  // namespace nc::py_bindings
