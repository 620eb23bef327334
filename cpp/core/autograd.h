#pragma once
// Reverse-mode autograd. Every differentiable op that sees an input requiring grad records a
// Node whose backward closure maps output gradients to input gradients, written with ordinary
// (differentiable) tensor ops, so create_graph gives higher-order gradients for free. The engine
// walks the graph in reverse topological order.
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/tensor.h"

namespace nc {

// Grad mode is per thread, like PyTorch's.
struct GradMode {
  static bool is_enabled();
  static void set_enabled(bool enabled);
};

struct NoGradGuard {
  bool prev;
  NoGradGuard() : prev(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev); }
};

struct AutoGradMode {
  bool prev;
  explicit AutoGradMode(bool enabled) : prev(GradMode::is_enabled()) { GradMode::set_enabled(enabled); }
  ~AutoGradMode() { GradMode::set_enabled(prev); }
};

// Anomaly detection (nc.autograd.detect_anomaly). While enabled, every op that records history
// checks its outputs and every backward function its gradients for NaN/Inf they introduced, and
// raises a RuntimeError naming the op and the module (nn.Module.__call__ sets it) that ran it.
// Process-wide like PyTorch's; the module is per thread.
struct AnomalyMode {
  static bool is_enabled();
  static void set_enabled(bool enabled);
  static const std::string& current_module();
  static void set_current_module(std::string module);
};

struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
  bool valid() const { return fn != nullptr; }
};

// What a node knows of each forward input, to check the gradients its closure returns.
struct InputMeta {
  Shape shape;
  DType dtype;
};

// A gradient hook sees the gradient flowing into a tensor and may return a replacement (an
// undefined tensor keeps it). A post-accumulate hook runs after a leaf's .grad was updated.
using GradHook = std::function<Tensor(const Tensor& grad)>;
using PostAccumulateHook = std::function<void(const Tensor& leaf)>;

struct LeafHooks {
  std::vector<std::pair<int64_t, GradHook>> grad;
  std::vector<std::pair<int64_t, PostAccumulateHook>> post_accumulate;
};

struct Node {
  std::vector<Edge> next_edges;       // one per forward input
  std::vector<InputMeta> input_meta;  // one per forward input
  uint32_t num_outputs = 1;           // forward outputs = gradients this node receives
  uint64_t sequence_nr;
  // Non-leaf tensors that asked for retain_grad(): (output_nr, tensor).
  std::vector<std::pair<uint32_t, std::weak_ptr<TensorImpl>>> retained;
  // Hooks of non-leaf outputs, run on the gradient of output `nr` before apply: (id, nr, hook).
  std::vector<std::tuple<int64_t, uint32_t, GradHook>> pre_hooks;
  std::string anomaly_module;         // the module that ran the forward op (anomaly mode only)

  Node();
  virtual ~Node() = default;
  // grads: one per forward output, undefined where no gradient flowed. Returns one per input.
  virtual TensorList apply(TensorList&& grads) = 0;
  virtual std::string name() const = 0;
  virtual void release_saved() {}
};

using BackwardFn = std::function<TensorList(const TensorList& grads, const std::vector<bool>& needs)>;

struct FunctionNode : Node {
  std::string op;
  BackwardFn backward;
  TensorList apply(TensorList&& grads) override;
  std::string name() const override { return op; }
  void release_saved() override { backward = nullptr; }
};

struct AccumulateGrad : Node {
  std::shared_ptr<TensorImpl> variable;
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> v);
  TensorList apply(TensorList&& grads) override;
  std::string name() const override { return "AccumulateGrad"; }
};

// A tensor kept for backward. An op's own output is kept without its history (so the graph
// has no reference cycle); the version counter detects in-place edits made after saving.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t, bool is_output);
  Tensor unpack(const std::string& op) const;
  bool defined() const { return tensor_.defined(); }

 private:
  Tensor tensor_;
  uint64_t version_ = 0;
};

bool any_requires_grad(const TensorList& inputs);
// True when an op over `inputs` must record history (grad mode on and an input requires grad).
bool needs_history(const TensorList& inputs);
// The same for a braced list, needs_history({a, b}), without building a vector: every op asks this.
bool needs_history(std::initializer_list<Tensor> inputs);
Edge gradient_edge(const Tensor& t);

// Makes `outputs` the outputs of a new node over `inputs` (call only when needs_history()).
void set_history(const std::string& op, const TensorList& inputs, const TensorList& outputs,
                 BackwardFn backward);

// Computes gradients of `roots` (seeded with `grads`, or ones for scalars) and accumulates them
// into leaves' .grad.
void backward(const TensorList& roots, const TensorList& grads, bool retain_graph, bool create_graph);
// Returns d(roots)/d(inputs) without touching .grad (torch.autograd.grad).
TensorList grad(const TensorList& roots, const TensorList& inputs, const TensorList& grads,
                bool retain_graph, bool create_graph, bool allow_unused);

// Hooks (Tensor.register_hook, register_post_accumulate_grad_hook); each returns an id for remove_hook.
int64_t register_grad_hook(const Tensor& t, GradHook hook);
int64_t register_post_accumulate_grad_hook(const Tensor& t, PostAccumulateHook hook);
void remove_hook(const Tensor& t, int64_t id);
// Runs `fn` once when the outermost backward() running on this thread finishes (PyTorch's
// Engine.queue_callback); an error in backward drops the queued callbacks.
void queue_callback(std::function<void()> fn);
// Marks `view` (an alias made by a view op) as a view of its storage's current history.
void mark_view(const Tensor& view);

void set_requires_grad(const Tensor& t, bool requires_grad);
void retain_grad(const Tensor& t);
Tensor detach(const Tensor& t);  // shares storage, no history
// In-place ops call this before writing `sources` into t: refuses (while recording) leaves that
// require grad, views of tensors that require grad, and writing a value that requires grad into
// a view (its base would silently miss the gradient path). After writing they bump the version
// and, when recording, call set_history with t as both input and output, rebasing its history.
// It first refuses a t whose elements share memory (an expanded tensor: PyTorch's
// assert_no_internal_overlap), for every in-place op, recording or not, except writes of one
// value (fill_, zero_, copy_ of a single element), which give every location the same result.
void prepare_inplace(const Tensor& t, const char* op, const TensorList& sources = {});

}  // namespace nc
