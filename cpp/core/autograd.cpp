#include "core/autograd.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <atomic>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "ops/creation.h"
#include "ops/elementwise.h"
#include "ops/copy.h"

namespace nc {

static thread_local bool grad_enabled = true;
bool GradMode::is_enabled() { return grad_enabled; }
void GradMode::set_enabled(bool enabled) { grad_enabled = enabled; }

static std::atomic<bool> anomaly_enabled{false};
static thread_local std::string anomaly_module;
bool AnomalyMode::is_enabled() { return anomaly_enabled.load(std::memory_order_relaxed); }
void AnomalyMode::set_enabled(bool enabled) { anomaly_enabled.store(enabled); }
const std::string& AnomalyMode::current_module() { return anomaly_module; }
void AnomalyMode::set_current_module(std::string module) { anomaly_module = std::move(module); }

namespace {

enum class NonFinite { None = 0, Inf = 1, NaN = 2 };

// The worst non-finite value in t (NaN over Inf); None for integer tensors.
NonFinite scan_nonfinite(const Tensor& t) {
  if (!t.defined() || !is_float_type(t.dtype())) return NonFinite::None;
  Tensor c = is_storage_dtype(t.dtype()) ? to_dtype(detach(t), DType::Float32) : contiguous(detach(t));
  NonFinite worst = NonFinite::None;
  auto scan = [&](const auto* p) {
    for (int64_t i = 0; i < c.numel() && worst != NonFinite::NaN; ++i) {
      if (std::isnan(p[i])) worst = NonFinite::NaN;
      else if (std::isinf(p[i])) worst = NonFinite::Inf;
    }
  };
  if (c.dtype() == DType::Float32) scan(c.data<float>());
  else scan(c.data<double>());
  return worst;
}

NonFinite worst_of(const TensorList& ts) {
  NonFinite w = NonFinite::None;
  for (const auto& t : ts) w = std::max(w, scan_nonfinite(t));
  return w;
}

// "binary_cross_entropy" -> "BinaryCrossEntropyBackward", as PyTorch names its backward functions.
std::string backward_name(const std::string& op) {
  std::string r;
  bool upper = true;
  for (char ch : op) {
    if (ch == '_') { upper = true; continue; }
    r += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(ch))) : ch;
    upper = false;
  }
  return r + "Backward";
}

std::string module_note(const std::string& module) {
  return module.empty() ? std::string() : cat_str(" (called from module '", module, "')");
}

// Throws when some output has a NaN (or an Inf) that no value it was computed from had: the op
// introduced it. Values that arrived non-finite were reported where they first appeared.
void check_anomaly(const TensorList& sources, const TensorList& outputs, const std::string& what,
                   const std::string& module) {
  const NonFinite before = worst_of(sources);
  for (size_t i = 0; i < outputs.size(); ++i) {
    const NonFinite now = scan_nonfinite(outputs[i]);
    if (now > before)
      throw RuntimeError(cat_str("[anomaly] ", what, " ", now == NonFinite::NaN ? "nan" : "inf", " values in its ", i,
                                 "th output", module_note(module)));
  }
}

}  // namespace

static std::atomic<uint64_t> next_sequence_nr{0};
Node::Node() : sequence_nr(next_sequence_nr.fetch_add(1)) {}

TensorList FunctionNode::apply(TensorList&& grads) {
  if (!backward)
    throw RuntimeError(cat_str(
        "[", op, "] Trying to backward through the graph a second time (or to use saved tensors "
        "after they were freed). Pass retain_graph=True to the first backward() to keep them."));
  std::vector<bool> needs(next_edges.size());
  for (size_t i = 0; i < next_edges.size(); ++i) needs[i] = next_edges[i].valid();
  return backward(grads, needs);
}

AccumulateGrad::AccumulateGrad(std::shared_ptr<TensorImpl> v) : variable(std::move(v)) {
  input_meta.push_back({variable->shape, variable->dtype});
}

TensorList AccumulateGrad::apply(TensorList&& grads) {
  Tensor g = grads[0];
  if (!g.defined()) return {};
  const std::shared_ptr<LeafHooks> hooks = variable->hooks;  // a hook may remove hooks
  if (hooks) {
    for (auto& [id, hook] : std::vector<std::pair<int64_t, GradHook>>(hooks->grad)) {
      Tensor r = hook(g);
      if (r.defined()) g = r;
    }
  }
  if (!variable->grad) {
    // The leaf must own its .grad so later accumulation can be in place: take the incoming
    // buffer when nothing else references it (the common case), else copy it.
    const bool sole_owner = g.impl_ptr().use_count() == 1 && g.impl()->storage.use_count() == 1 &&
                            g.is_contiguous() && g.offset() == 0;
    variable->grad = (GradMode::is_enabled() || sole_owner) ? g.impl_ptr() : clone(g).impl_ptr();
  } else if (GradMode::is_enabled() || variable->grad->requires_grad) {
    variable->grad = add(Tensor(variable->grad), g).impl_ptr();
  } else {
    NoGradGuard no_grad;
    add_(Tensor(variable->grad), g);
  }
  if (hooks) {
    for (auto& [id, hook] : std::vector<std::pair<int64_t, PostAccumulateHook>>(hooks->post_accumulate))
      hook(Tensor(variable));
  }
  return {};
}

static std::atomic<int64_t> next_hook_id{1};

int64_t register_grad_hook(const Tensor& t, GradHook hook) {
  NC_CHECK(t.requires_grad(), RuntimeError, "[register_hook] cannot register a hook on a tensor that does not "
           "require grad (shape ", shape_str(t.shape()), ")");
  const int64_t id = next_hook_id.fetch_add(1);
  if (t.grad_fn()) {
    t.grad_fn()->pre_hooks.emplace_back(id, t.impl()->output_nr, std::move(hook));
  } else {
    if (!t.impl()->hooks) t.impl()->hooks = std::make_shared<LeafHooks>();
    t.impl()->hooks->grad.emplace_back(id, std::move(hook));
  }
  return id;
}

int64_t register_post_accumulate_grad_hook(const Tensor& t, PostAccumulateHook hook) {
  NC_CHECK(t.requires_grad() && t.is_leaf(), RuntimeError, "[register_post_accumulate_grad_hook] post "
           "accumulate grad hooks can only be registered on leaf tensors that require grad (shape ",
           shape_str(t.shape()), ")");
  const int64_t id = next_hook_id.fetch_add(1);
  if (!t.impl()->hooks) t.impl()->hooks = std::make_shared<LeafHooks>();
  t.impl()->hooks->post_accumulate.emplace_back(id, std::move(hook));
  return id;
}

void remove_hook(const Tensor& t, int64_t id) {
  auto drop = [id](auto& list) {
    list.erase(std::remove_if(list.begin(), list.end(), [id](const auto& h) { return std::get<0>(h) == id; }),
               list.end());
  };
  if (t.impl()->hooks) {
    drop(t.impl()->hooks->grad);
    drop(t.impl()->hooks->post_accumulate);
  }
  if (t.grad_fn()) drop(t.grad_fn()->pre_hooks);
}

namespace {
thread_local int backward_depth = 0;
thread_local std::vector<std::function<void()>> queued_callbacks;

// Counts nested backward runs on this thread; the outermost one runs the queued callbacks when it
// finishes normally and drops them when it fails.
struct BackwardScope {
  BackwardScope() { ++backward_depth; }
  ~BackwardScope() {
    if (--backward_depth == 0) queued_callbacks.clear();
  }
  void finish() {
    if (backward_depth != 1) return;
    for (size_t i = 0; i < queued_callbacks.size(); ++i) {
      auto fn = std::move(queued_callbacks[i]);  // a callback may queue more
      fn();
    }
    queued_callbacks.clear();
  }
};
}  // namespace

void queue_callback(std::function<void()> fn) {
  NC_CHECK(backward_depth > 0, RuntimeError, "[queue_callback] can only be called while backward is running");
  queued_callbacks.push_back(std::move(fn));
}

SavedTensor::SavedTensor(const Tensor& t, bool is_output)
    : tensor_(is_output ? detach(t) : t), version_(t.defined() ? t.version() : 0) {}

Tensor SavedTensor::unpack(const std::string& op) const {
  if (tensor_.defined() && tensor_.version() != version_)
    throw RuntimeError(cat_str("[", op, "] one of the tensors needed for gradient computation has "
                               "been modified by an in-place operation: a tensor of shape ",
                               shape_str(tensor_.shape()), " is at version ", tensor_.version(),
                               "; expected version ", version_, " instead."));
  return tensor_;
}

bool any_requires_grad(const TensorList& inputs) {
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

bool needs_history(const TensorList& inputs) {
  return GradMode::is_enabled() && any_requires_grad(inputs);
}

bool needs_history(std::initializer_list<Tensor> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  if (t.grad_fn()) return {t.grad_fn(), t.impl()->output_nr};
  auto acc = t.impl()->grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    t.impl()->grad_accumulator = acc;
  }
  return {acc, 0};
}

void mark_view(const Tensor& view) {
  view.impl()->is_view = true;
  view.impl()->view_history_version = view.impl()->storage->history_version.load();
}

namespace {

// A view's grad_fn leads to its base's history as it was when the view was taken. After an
// in-place op has rebased the base's history, that path would silently miss the op (PyTorch
// regenerates the view's grad_fn); using such a view in a recorded op is refused instead.
void check_view_history(const Tensor& t, const std::string& op) {
  const TensorImpl* i = t.impl();
  if (i->is_view && i->grad_fn && i->view_history_version != i->storage->history_version.load())
    throw RuntimeError(cat_str("[", op, "] a view (shape ", shape_str(t.shape()), ") was taken before an "
                               "in-place operation on its base, so its gradient would miss that operation. Take "
                               "the view again after the in-place operation."));
}

}  // namespace

void set_history(const std::string& op, const TensorList& inputs, const TensorList& outputs,
                 BackwardFn backward) {
  for (const auto& in : inputs)
    if (in.defined()) check_view_history(in, op);
  for (const auto& out : outputs)
    for (const auto& in : inputs)
      if (in.same(out)) out.impl()->storage->history_version.fetch_add(1);  // in-place: history rebased
  auto node = std::make_shared<FunctionNode>();
  node->op = op;
  node->backward = std::move(backward);
  node->next_edges.reserve(inputs.size());
  node->input_meta.reserve(inputs.size());
  for (const auto& in : inputs) {
    node->next_edges.push_back(gradient_edge(in));
    node->input_meta.push_back({in.defined() ? in.shape() : Shape{},
                                in.defined() ? in.dtype() : DType::Float32});
  }
  node->num_outputs = static_cast<uint32_t>(outputs.size());
  if (AnomalyMode::is_enabled()) {
    node->anomaly_module = AnomalyMode::current_module();
    // An in-place op's input is its output, already overwritten: judged as if its inputs were finite.
    bool inplace = false;
    for (const auto& out : outputs)
      for (const auto& in : inputs) inplace = inplace || (in.defined() && in.same(out));
    check_anomaly(inplace ? TensorList{} : inputs, outputs, cat_str("Function '", op, "' produced"),
                  node->anomaly_module);
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    TensorImpl* o = outputs[i].impl();
    o->grad_fn = node;
    o->output_nr = static_cast<uint32_t>(i);
    o->requires_grad = true;
  }
}

void set_requires_grad(const Tensor& t, bool requires_grad) {
  if (!t.is_leaf())
    throw RuntimeError(cat_str("[requires_grad_] you can only change requires_grad of leaf tensors; "
                               "use detach() to get a leaf (shape ", shape_str(t.shape()), ")"));
  if (requires_grad && !is_floating(t.dtype()))
    throw RuntimeError(cat_str("[requires_grad_] only floating-point tensors can require gradients, got ",
                               dtype_name(t.dtype())));
  t.impl()->requires_grad = requires_grad;
}

void retain_grad(const Tensor& t) {
  if (!t.requires_grad())
    throw RuntimeError("[retain_grad] can't retain_grad on a tensor that has requires_grad=False");
  if (t.is_leaf() || t.impl()->retains_grad) return;
  t.impl()->retains_grad = true;
  t.grad_fn()->retained.emplace_back(t.impl()->output_nr, t.impl_ptr());
}

Tensor detach(const Tensor& t) {
  Tensor d = t.as_strided_alias(t.shape(), t.strides(), t.offset());
  d.impl()->is_view = t.impl()->is_view;
  return d;
}

namespace {

// True when two elements of t may share a memory location (PyTorch's has_internal_overlap): with
// the dims of size > 1 sorted by stride, each stride must exceed the extent of all smaller ones.
// Exact for every tensor the view ops make (slices, transposes, expands: a stride 0 overlaps).
bool has_internal_overlap(const Tensor& t) {
  Shape order;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.shape()[d] > 1) order.push_back(d);
  const Shape& st = t.strides();
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return st[a] < st[b]; });
  int64_t extent = 0;  // largest offset reachable with the dims so far
  for (int64_t d : order) {
    if (st[d] <= extent) return true;
    extent += st[d] * (t.shape()[d] - 1);
  }
  return false;
}

}  // namespace

// Writing one value everywhere (fill_, zero_, copy_ of a single element) gives every location
// the same result however often it is written, so PyTorch allows it into overlapping memory.
static bool writes_one_value(const char* op, const TensorList& sources) {
  if (std::strcmp(op, "fill_") != 0 && std::strcmp(op, "copy_") != 0) return false;
  for (const Tensor& s : sources)
    if (s.defined() && s.numel() != 1) return false;
  return true;
}

void prepare_inplace(const Tensor& t, const char* op, const TensorList& sources) {
  if (t.numel() > 1 && !writes_one_value(op, sources) && has_internal_overlap(t))
    throw RuntimeError(cat_str("[", op, "] unsupported operation: more than one element of the written-to tensor "
                               "(shape ", shape_str(t.shape()), ", strides ", shape_str(t.strides()),
                               ") refers to a single memory location. Please clone() the tensor before "
                               "performing the operation."));
  if (!GradMode::is_enabled()) return;
  if (t.impl()->is_view && any_requires_grad(sources))
    throw RuntimeError(cat_str("[", op, "] writing a tensor that requires grad into a view (shape ",
                               shape_str(t.shape()), ") is not supported: the view's base would not get the "
                               "gradient. Write into the base tensor itself (e.g. base[i] = value)"));
  if (t.requires_grad() && t.is_leaf())
    throw RuntimeError(cat_str("[", op, "] a leaf tensor that requires grad (shape ", shape_str(t.shape()),
                               ") is being used in an in-place operation; wrap it in nc.no_grad() "
                               "or use an out-of-place op"));
  if (t.requires_grad() && t.impl()->is_view)
    throw RuntimeError(cat_str("[", op, "] in-place operation on a view (shape ", shape_str(t.shape()),
                               ") of a tensor that requires grad is not supported; use an "
                               "out-of-place op"));
}

// ---------------------------------------------------------------------------------------------
// The engine.

namespace {

struct ReadyOrder {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr < b->sequence_nr; }
};

void add_to_buffer(TensorList& buffer, uint32_t slot, const Tensor& g) {
  if (!buffer[slot].defined()) buffer[slot] = g;
  else buffer[slot] = add(buffer[slot], g);
}

void check_gradient(const Node& node, size_t i, const Tensor& g) {
  const InputMeta& m = node.input_meta[i];
  if (g.shape() != m.shape || g.dtype() != m.dtype)
    throw RuntimeError(cat_str("[", node.name(), " backward] internal error: gradient ", i, " has shape ",
                               shape_str(g.shape()), " ", dtype_name(g.dtype()), " but the input has shape ",
                               shape_str(m.shape), " ", dtype_name(m.dtype)));
}

// Runs the graph below `root_edges`. With `captures`, returns the gradients arriving at those
// edges and leaves .grad alone; otherwise accumulates into leaves.
TensorList run_backward(const std::vector<Edge>& root_edges, const TensorList& root_grads,
                        bool retain_graph, bool create_graph, const std::vector<Edge>* captures) {
  AutoGradMode mode(create_graph);
  std::unordered_map<Node*, int> dependencies;
  std::unordered_map<Node*, TensorList> buffers;
  std::vector<Node*> stack;
  for (const Edge& e : root_edges) {
    if (dependencies.emplace(e.fn.get(), 0).second) stack.push_back(e.fn.get());
  }
  std::unordered_map<Node*, std::vector<Node*>> parents;  // only kept for captures
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges) {
      if (!e.valid()) continue;
      if (captures) parents[e.fn.get()].push_back(n);
      auto it = dependencies.find(e.fn.get());
      if (it == dependencies.end()) {
        dependencies.emplace(e.fn.get(), 1);
        stack.push_back(e.fn.get());
      } else {
        it->second++;
      }
    }
  }
  // With captures (autograd.grad) only the nodes above a captured edge run, as in PyTorch: the
  // graph below the requested inputs is neither computed nor released (a backward function
  // may call grad on a subgraph while the outer backward still needs what lies below).
  std::unordered_set<Node*> needed;
  if (captures) {
    std::vector<Node*> up;
    for (const Edge& e : *captures) up.push_back(e.fn.get());
    while (!up.empty()) {
      Node* n = up.back();
      up.pop_back();
      for (Node* p : parents[n])
        if (needed.insert(p).second) up.push_back(p);
    }
  }
  auto buffer_of = [&](Node* n) -> TensorList& {
    auto& b = buffers[n];
    if (b.empty()) b.resize(n->num_outputs);
    return b;
  };
  for (size_t i = 0; i < root_edges.size(); ++i)
    add_to_buffer(buffer_of(root_edges[i].fn.get()), root_edges[i].input_nr, root_grads[i]);

  TensorList captured(captures ? captures->size() : 0);
  std::priority_queue<Node*, std::vector<Node*>, ReadyOrder> ready;
  for (auto& [n, d] : dependencies)
    if (d == 0) ready.push(n);
  // Keep nodes alive while running even if a release drops the last reference to them.
  std::vector<std::shared_ptr<Node>> keep_alive;
  for (const Edge& e : root_edges) keep_alive.push_back(e.fn);

  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    TensorList grads = std::move(buffer_of(node));
    buffers.erase(node);
    if (!node->pre_hooks.empty()) {
      for (auto& [id, nr, hook] : decltype(node->pre_hooks)(node->pre_hooks)) {
        if (!grads[nr].defined()) continue;
        Tensor r = hook(grads[nr]);
        if (r.defined()) grads[nr] = r;
      }
    }
    for (auto& [nr, weak] : node->retained) {
      auto impl = weak.lock();
      if (!impl || !grads[nr].defined()) continue;
      impl->grad = impl->grad ? add(Tensor(impl->grad), grads[nr]).impl_ptr() : clone(grads[nr]).impl_ptr();
    }
    bool is_accumulator = dynamic_cast<AccumulateGrad*>(node) != nullptr;
    TensorList outs;
    if (captures) {
      for (size_t c = 0; c < captures->size(); ++c) {
        const Edge& e = (*captures)[c];
        if (e.fn.get() == node && grads[e.input_nr].defined()) captured[c] = grads[e.input_nr];
      }
    }
    if (!captures || needed.count(node)) {
      const bool anomaly = AnomalyMode::is_enabled() && !is_accumulator;
      const TensorList incoming = anomaly ? grads : TensorList{};
      outs = node->apply(std::move(grads));
      if (anomaly)
        check_anomaly(incoming, outs, cat_str("Function '", backward_name(node->name()), "' returned"),
                      node->anomaly_module);
      if (!retain_graph) node->release_saved();
    }
    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& e = node->next_edges[i];
      if (!e.valid()) continue;
      if (i < outs.size() && outs[i].defined()) {
        check_gradient(*node, i, outs[i]);
        add_to_buffer(buffer_of(e.fn.get()), e.input_nr, outs[i]);
      }
      keep_alive.push_back(e.fn);
      if (--dependencies[e.fn.get()] == 0) ready.push(e.fn.get());
    }
  }
  return captured;
}

std::vector<Edge> root_edges_of(const TensorList& roots, const TensorList& grads, TensorList& seeds,
                                const char* op) {
  std::vector<Edge> edges;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    Edge e = gradient_edge(r);
    if (!e.valid())
      throw RuntimeError(cat_str("[", op, "] element ", i, " of tensors does not require grad and "
                                 "does not have a grad_fn (shape ", shape_str(r.shape()), ")"));
    check_view_history(r, op);
    Tensor g = i < grads.size() ? grads[i] : Tensor();
    if (!g.defined()) {
      if (r.numel() != 1)
        throw RuntimeError(cat_str("[", op, "] grad can be implicitly created only for scalar outputs; "
                                   "got shape ", shape_str(r.shape()), ", pass a gradient argument"));
      g = ones_like(r);
    } else if (g.shape() != r.shape()) {
      throw ValueError(cat_str("[", op, "] gradient has shape ", shape_str(g.shape()),
                               " but the tensor has shape ", shape_str(r.shape())));
    } else if (g.dtype() != r.dtype()) {
      g = to_dtype(g, r.dtype());
    }
    edges.push_back(e);
    seeds.push_back(g);
  }
  return edges;
}

}  // namespace

void backward(const TensorList& roots, const TensorList& grads, bool retain_graph, bool create_graph) {
  TensorList seeds;
  auto edges = root_edges_of(roots, grads, seeds, "backward");
  BackwardScope scope;
  run_backward(edges, seeds, retain_graph, create_graph, nullptr);
  scope.finish();
}

TensorList grad(const TensorList& roots, const TensorList& inputs, const TensorList& grads,
                bool retain_graph, bool create_graph, bool allow_unused) {
  TensorList seeds;
  auto edges = root_edges_of(roots, grads, seeds, "autograd.grad");
  std::vector<Edge> captures;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad())
      throw RuntimeError(cat_str("[autograd.grad] input ", i, " does not require grad"));
    captures.push_back(gradient_edge(inputs[i]));
  }
  BackwardScope scope;
  TensorList out = run_backward(edges, seeds, retain_graph, create_graph, &captures);
  scope.finish();
  for (size_t i = 0; i < out.size(); ++i)
    if (!out[i].defined() && !allow_unused)
      throw RuntimeError(cat_str("[autograd.grad] input ", i, " was not used in the graph; pass "
                                 "allow_unused=True to get None for it"));
  return out;
}

}  // namespace nc
