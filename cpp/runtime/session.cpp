// Session: load + optimise once, then run plans. Each call takes an arena from the session's
// pool (one per concurrent caller, grown only when a larger plan needs it), so concurrent calls
// never share scratch memory and a repeated call allocates nothing.
#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/parallel.h"
#include "core/thread_limit.h"
#include "model.h"

namespace neurocore {
namespace detail {

const char* op_name(Op op) {
  static const char* names[] = {"linear", "matmul", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d",
                                "adaptive_avg_pool2d", "batch_norm", "layer_norm", "softmax", "log_softmax", "add",
                                "sub", "mul", "div", "relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu", "mish",
                                "elu", "leaky_relu", "softplus", "hardtanh", "reshape", "permute", "cat", "mean",
                                "sum", "rnn", "attention", "embedding", "rms_norm", "slice", "full",
                                "expand", "where", "pack", "unpack"};
  return names[static_cast<int>(op)];
}

void Arena::reserve(int64_t n) {
  if (n <= capacity) return;
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 16)) * sizeof(float);
  data.reset(static_cast<float*>(::operator new[](bytes, std::align_val_t(64))));
  capacity = n;
}

}  // namespace detail

using namespace detail;

Tensor::Tensor(float* data, std::vector<int64_t> shape) : data_(data), shape_(std::move(shape)) {}
Tensor::Tensor(const float* data, std::vector<int64_t> shape)
    : data_(const_cast<float*>(data)), shape_(std::move(shape)) {}

Tensor Tensor::owning(std::vector<int64_t> shape) {
  Tensor t;
  const int64_t n = numel_of(shape);
  t.owner_ = std::shared_ptr<float[]>(new float[static_cast<size_t>(std::max<int64_t>(n, 1))]);
  t.data_ = t.owner_.get();
  t.shape_ = std::move(shape);
  return t;
}

int64_t Tensor::numel() const { return numel_of(shape_); }

Session::Session(const std::string& path) : model_(load_model(path)) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

const std::vector<std::string>& Session::input_names() const { return model_->input_names; }
const std::vector<std::string>& Session::output_names() const { return model_->output_names; }
const std::vector<std::vector<int64_t>>& Session::input_shapes() const { return model_->input_shapes; }
size_t Session::num_nodes() const { return model_->nodes.size(); }
void Session::set_num_threads(int n) { model_->num_threads.store(std::max(n, 0)); }
int Session::num_threads() const {
  const int n = model_->num_threads.load();
  return n > 0 ? n : nc::get_num_threads();
}

std::string Session::describe() const {
  std::string s;
  for (const Node& n : model_->nodes) {
    s += op_name(n.op);
    if ((n.op == Op::Linear || n.op == Op::Conv2d) && n.attrs.act == Act::Relu) s += "+relu";
    if (!n.module.empty()) s += " (" + n.module + ")";
    s += "\n";
  }
  return s;
}

std::vector<std::vector<int64_t>> Session::output_shapes(const std::vector<std::vector<int64_t>>& input_shapes) const {
  auto plan = get_plan(*model_, input_shapes);
  std::vector<std::vector<int64_t>> out;
  for (int v : model_->output_values) out.push_back(plan->shapes[static_cast<size_t>(v)]);
  return out;
}

std::vector<Tensor> Session::run(const std::vector<Tensor>& inputs) const {
  std::vector<std::vector<int64_t>> shapes;
  for (const Tensor& t : inputs) shapes.push_back(t.shape());
  std::vector<Tensor> outputs;
  for (auto& s : output_shapes(shapes)) outputs.push_back(Tensor::owning(std::move(s)));
  run(inputs, outputs);
  return outputs;
}

void Session::run(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) const {
  const Model& m = *model_;
  thread_local std::vector<std::vector<int64_t>> shapes;
  shapes.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    shapes[i].assign(inputs[i].shape().begin(), inputs[i].shape().end());
    if (!inputs[i].data() && numel_of(inputs[i].shape()) > 0)
      throw Error("[run] input '" + (i < m.input_names.size() ? m.input_names[i] : std::to_string(i)) + "' has no data");
  }
  const auto plan = get_plan(m, shapes);
  if (outputs.size() != m.output_values.size())
    throw Error("[run] the model has " + std::to_string(m.output_values.size()) + " outputs, got " +
                std::to_string(outputs.size()) + " output tensors");
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& want = plan->shapes[static_cast<size_t>(m.output_values[i])];
    if (outputs[i].shape() != want || (!outputs[i].data() && numel_of(want) > 0))
      throw Error("[run] output '" + m.output_names[i] + "' must have shape " + shape_str(want) + ", got " +
                  shape_str(outputs[i].shape()));
  }

  // An arena for this call.
  std::unique_ptr<Arena> arena;
  {
    std::lock_guard<std::mutex> lock(m.arenas_mutex);
    if (!m.free_arenas.empty()) {
      arena = std::move(m.free_arenas.back());
      m.free_arenas.pop_back();
    }
  }
  if (!arena) arena = std::make_unique<Arena>();
  struct Return {
    const Model& m;
    std::unique_ptr<Arena>& a;
    ~Return() {
      std::lock_guard<std::mutex> lock(m.arenas_mutex);
      m.free_arenas.push_back(std::move(a));
    }
  } give_back{m, arena};
  arena->reserve(plan->arena_floats);
  // The session's thread count, or the calling thread alone where that runs this plan faster
  // (core/thread_choice.h: at batch 1 it depends on where the host put the threads).
  const int session_threads = m.num_threads.load(std::memory_order_relaxed);
  nc::ThreadChoice::Pick pick{session_threads, false, false};
  if ((session_threads > 0 ? session_threads : nc::get_num_threads()) > 1) {
    pick = plan->threads.pick();
    if (pick.limit == 0) pick.limit = session_threads;
  }
  const nc::ThreadLimit threads(pick.limit);
  const auto start = std::chrono::steady_clock::now();
  float* base = arena->data.get();

  auto where = [&](int v) -> float* {
    const int r = plan->root[static_cast<size_t>(v)];
    const Value& val = m.values[static_cast<size_t>(r)];
    if (val.kind == ValueKind::Input) return const_cast<float*>(inputs[static_cast<size_t>(val.input_index)].data());
    if (val.kind == ValueKind::Constant) return const_cast<float*>(val.data);
    return base + plan->offset[static_cast<size_t>(r)];
  };
  thread_local std::vector<const float*> ptrs;
  thread_local std::vector<float*> extra;
  for (const Node& n : m.nodes) {
    ptrs.clear();
    for (int v : n.inputs) ptrs.push_back(where(v));
    extra.clear();
    for (int v : n.extra_outputs) extra.push_back(where(v));
    execute(*plan, n, ptrs, where(n.output), extra, base + plan->workspace_offset);
  }
  if (pick.record) plan->threads.record(pick, std::chrono::steady_clock::now() - start);
  for (size_t i = 0; i < outputs.size(); ++i) {
    const int v = m.output_values[i];
    const int64_t count = numel_of(plan->shapes[static_cast<size_t>(v)]);
    if (count > 0) std::memmove(outputs[i].data(), where(v), sizeof(float) * static_cast<size_t>(count));
  }
}

}  // namespace neurocore
