// Load-time graph optimisation, done once:
//  * BatchNorm (eval) after a Conv2d or Linear whose output nothing else reads is folded into that
//    layer's weights: w' = w * gamma / sqrt(var + eps) per output channel, b' = (b - mean) * that + beta.
//  * A ReLU after a Conv2d or Linear whose output nothing else reads runs in the layer's GEMM/conv
//    store (the kernels' fused epilogue).
//  * Nodes whose outputs nothing reads (an LSTM's stacked h_n that the model drops) are removed.
//  * Recurrent weights are laid out once in the layouts the step loop reads (nc::rnn_prepare).
//  * Constant Linear weights are packed once into the GEMM micro-kernel's panel layout
//    (kernels::GemmFns::pack_b): runs with enough rows multiply from it without repacking.
//  * Constant weights of convolutions that take the Winograd path (kernels::conv_winograd) are
//    transformed once (kernels::WinogradKernels::transform_weights): at batch 1 the transform is
//    about half of such a layer's time.
// Dropout and identity never reach the file (the trace records no node for them).
#include <algorithm>
#include <cmath>

#include "kernels/conv_winograd.h"
#include "kernels/gemm.h"
#include "model.h"

namespace neurocore::detail {
namespace {

std::vector<int> use_counts(const Model& m) {
  std::vector<int> uses(m.values.size(), 0);
  for (const Node& n : m.nodes)
    for (int v : n.inputs) ++uses[static_cast<size_t>(v)];
  for (int v : m.output_values) uses[static_cast<size_t>(v)] += 1000000;  // graph outputs are never fused away
  return uses;
}

// Folds batch norm node `bn` into layer `layer` (conv2d or linear with a 2-D output).
void fold_batch_norm(Model& m, Node& layer, const Node& bn) {
  const Value& w = m.values[static_cast<size_t>(layer.inputs[1])];
  const int64_t cout = w.shape[0];
  const int64_t per = numel_of(w.shape) / std::max<int64_t>(cout, 1);
  auto param = [&](size_t i) { return m.values[static_cast<size_t>(bn.inputs[i])].data; };
  const float* mean = param(1);
  const float* var = param(2);
  size_t next = 3;
  const float* gamma = bn.attrs.has_weight ? param(next++) : nullptr;
  const float* beta = bn.attrs.has_bias ? param(next++) : nullptr;
  const float* bias = layer.inputs.size() == 3 ? m.values[static_cast<size_t>(layer.inputs[2])].data : nullptr;
  float* nw = m.new_buffer(numel_of(w.shape));
  float* nb = m.new_buffer(cout);
  for (int64_t c = 0; c < cout; ++c) {
    // As the eval batch_norm op computes it: scale and shift in double, rounded once.
    const double invstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + bn.attrs.eps);
    const double scale = (gamma ? gamma[c] : 1.0) * invstd;
    const double shift = (beta ? beta[c] : 0.0) - mean[c] * scale;
    for (int64_t k = 0; k < per; ++k) nw[c * per + k] = static_cast<float>(w.data[c * per + k] * scale);
    nb[c] = static_cast<float>((bias ? bias[c] : 0.0) * scale + shift);
  }
  Value wv = w;
  wv.data = nw;
  Value bv;
  bv.kind = ValueKind::Constant;
  bv.shape = {cout};
  bv.data = nb;
  m.values.push_back(wv);
  layer.inputs[1] = static_cast<int>(m.values.size() - 1);
  m.values.push_back(bv);
  if (layer.inputs.size() == 3) layer.inputs[2] = static_cast<int>(m.values.size() - 1);
  else layer.inputs.push_back(static_cast<int>(m.values.size() - 1));
}

// Inputs: x, [lengths], [h0], [c0], w_ih, w_hh, [b_ih, b_hh], [w_hr]; the weights are constants (the loader
// checks) whose shapes the example plan validated.
void prepare_rnn(const Model& m, Node& n) {
  const Attrs& a = n.attrs;
  size_t i = 1 + a.packed + a.has_h0 + a.has_c0;
  auto next = [&]() -> const Value& { return m.values[static_cast<size_t>(n.inputs[i++])]; };
  const Value& w_ih = next();
  const Value& w_hh = next();
  const float* b_ih = a.has_bias ? next().data : nullptr;
  const float* b_hh = a.has_bias ? next().data : nullptr;
  const Value* w_hr = a.has_proj ? &next() : nullptr;
  const int64_t gates = a.mode == 2 ? 4 : a.mode == 3 ? 3 : 1;
  const int64_t H = w_ih.shape[0] / gates, P = w_hh.shape[1];
  n.rnn = std::make_shared<const nc::RnnWeights>(nc::rnn_prepare(static_cast<nc::RnnMode>(a.mode), w_ih.shape[1], H, P,
                                                                 w_ih.data, w_hh.data, b_ih, b_hh,
                                                                 w_hr ? w_hr->data : nullptr));
}

// y = x W^T: op(B) = W^T, W (out, in) row-major.
void prepack_linear(Model& m, Node& n) {
  const Value& w = m.values[static_cast<size_t>(n.inputs[1])];
  if (w.kind != ValueKind::Constant || !w.data || w.shape.size() != 2) return;
  const int64_t out = w.shape[0], in = w.shape[1];
  if (out == 0 || in == 0) return;
  const auto& g = nc::kernels::gemm().f32;
  float* packed = m.new_buffer(g.packed_b_elems(in, out));
  g.pack_b(true, in, out, w.data, in, packed);
  n.packed_weight = packed;
}

// The weights of a Winograd conv2d, transformed once (not when they hold an inf or NaN: the
// exact paths then run, as in eager).
void pretransform_conv(Model& m, Node& n) {
  const Value& w = m.values[static_cast<size_t>(n.inputs[1])];
  if (w.kind != ValueKind::Constant || !w.data || w.shape.size() != 4) return;
  const nc::kernels::ConvGeom g = conv_weight_geom(n.attrs, w.shape);
  if (!nc::kernels::conv_winograd(g)) return;
  const auto& wk = nc::kernels::winograd();
  float* u = m.new_buffer(wk.weights_elems(g));
  if (wk.transform_weights(w.data, g, u)) n.winograd_weight = u;
}

}  // namespace

void optimize(Model& m, const Plan& example) {
  std::vector<Node> out;
  std::vector<int> uses = use_counts(m);
  // producer[v]: index in `out` of the node computing v.
  std::vector<int> producer(m.values.size(), -1);
  for (Node& n : m.nodes) {
    const int src = n.inputs.empty() ? -1 : n.inputs[0];
    const int p = src >= 0 ? producer[static_cast<size_t>(src)] : -1;
    Node* prev = p >= 0 ? &out[static_cast<size_t>(p)] : nullptr;
    const bool sole = prev && uses[static_cast<size_t>(src)] == 1;
    const bool layer = prev && (prev->op == Op::Conv2d || prev->op == Op::Linear);
    if (n.op == Op::BatchNorm && sole && layer && prev->attrs.act == Act::None) {
      const Value& w = m.values[static_cast<size_t>(prev->inputs[1])];
      // Linear folds only where batch_norm's channel dim is the features dim: a 2-D output.
      // batch_norm normalises dim 1: the layer's output channels for a conv, and for a linear only
      // when its output is 2-D (ranks don't change with the batch size).
      const bool ok = prev->op == Op::Conv2d || example.shapes[static_cast<size_t>(src)].size() == 2;
      if (ok && w.shape[0] == m.values[static_cast<size_t>(n.inputs[1])].shape[0]) {
        fold_batch_norm(m, *prev, n);
        producer.resize(m.values.size(), -1);
        producer[static_cast<size_t>(n.output)] = p;
        prev->output = n.output;
        continue;
      }
    }
    if (n.op == Op::Relu && sole && layer && prev->attrs.act == Act::None) {
      prev->attrs.act = Act::Relu;
      producer[static_cast<size_t>(n.output)] = p;
      prev->output = n.output;
      continue;
    }
    producer.resize(m.values.size(), -1);
    producer[static_cast<size_t>(n.output)] = static_cast<int>(out.size());
    out.push_back(std::move(n));
    uses.resize(m.values.size(), 0);
  }
  // Dead nodes, from the last one back.
  std::vector<bool> live(m.values.size(), false);
  for (int v : m.output_values) live[static_cast<size_t>(v)] = true;
  std::vector<Node> kept;
  for (size_t i = out.size(); i-- > 0;) {
    Node& n = out[i];
    bool used = live[static_cast<size_t>(n.output)];
    for (int v : n.extra_outputs) used = used || live[static_cast<size_t>(v)];
    if (!used) continue;
    for (int v : n.inputs) live[static_cast<size_t>(v)] = true;
    kept.push_back(std::move(n));
  }
  std::reverse(kept.begin(), kept.end());
  m.nodes = std::move(kept);
  for (Node& n : m.nodes) {
    if (n.op == Op::Rnn) prepare_rnn(m, n);
    if (n.op == Op::Linear) prepack_linear(m, n);
    if (n.op == Op::Conv2d) pretransform_conv(m, n);
  }
}

}  // namespace neurocore::detail
