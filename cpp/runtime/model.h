#pragma once
// The runtime's internal form of a model: values, nodes with typed attributes, constant buffers,
// and the plans (shapes + arena offsets) computed per input shape.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "core/thread_choice.h"
#include "kernels/conv.h"
#include "neurocore/runtime.h"
#include "ops/rnn.h"

namespace neurocore::detail {

constexpr size_t kMaxRank = 16;  // ranks above it are rejected when planning

enum class Op {
  Linear, Matmul, Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, BatchNorm, LayerNorm,
  Softmax, LogSoftmax, Add, Sub, Mul, Div, Relu, Sigmoid, Tanh, Gelu, GeluTanh, Silu, Mish, Elu, LeakyRelu,
  Softplus, Hardtanh, Reshape, Permute, Cat, Mean, Sum,
  // sequence models
  Rnn, Attention, Embedding, RmsNorm, Slice, Full, Expand,
  Where,  // condition (0/1 floats: a bool input), a, b; broadcast
  // packed sequences (pack_padded_sequence -> rnn -> pad_packed_sequence) with per-sample lengths
  // as a model input: the packed data lives as a time-major (steps * batch, features) grid in the
  // caller's batch order, rows past a sample's length zero
  Pack, Unpack
};

const char* op_name(Op op);

// Fused epilogue of Linear / Conv2d.
enum class Act { None = 0, Relu = 1 };

struct Attrs {
  // conv / pool geometry (2-D; 1-D layers run with a unit height)
  std::array<int64_t, 2> stride{1, 1}, dilation{1, 1}, kernel{1, 1}, output_padding{0, 0}, output_size{1, 1};
  std::array<int64_t, 4> padding{0, 0, 0, 0};  // top, bottom, left, right (pools, conv_transpose: top, -, left, -)
  int64_t groups = 1;
  bool ceil_mode = false, count_include_pad = true;
  int64_t divisor_override = 0;
  Act act = Act::None;
  // norms
  double eps = 1e-5;
  bool has_weight = false, has_bias = false;
  std::vector<int64_t> normalized_shape;
  // binary ops with a number operand: x op scalar, or scalar op x when reverse
  bool has_scalar = false, reverse = false;
  float scalar = 0;
  // activation parameters (elu: alpha, scale; leaky_relu: slope; softplus: beta, threshold; hardtanh: min, max)
  double p0 = 0, p1 = 0;
  // reshape, full, expand: dim i = shape_c[i] + shape_k[i] * batch (full: every element `scalar`)
  std::vector<int64_t> shape_c, shape_k;
  std::vector<int64_t> dims;  // permute order, reduced dims
  int64_t dim = 0;            // softmax, cat
  bool keepdim = false;
  // rnn: mode (0 tanh, 1 relu, 2 LSTM, 3 GRU), time steps of the (steps * batch, features) input,
  // which optional inputs are present (x, [h0], [c0], w_ih, w_hh, [b_ih, b_hh], [w_hr])
  int64_t mode = 0, steps = 1;
  bool has_h0 = false, has_c0 = false, has_proj = false;
  // rnn over a packed sequence: inputs x (grid), lengths, then as above; the steps follow the
  // grid (rows / batch)
  bool packed = false;
  // pack: the input is (batch, steps, features) (else (steps, batch, features)); lengths must be
  // non-increasing. unpack: the same layout for its output, which has total_length steps (0: as
  // many as the grid, which the longest sample must fill), padded with `scalar`
  bool batch_first = false, enforce_sorted = false;
  int64_t total_length = 0;
  // attention: q, k, v[, mask]; the mask is additive, or with mask_bool 0/1 values (1: takes
  // part); scale 0 = 1/sqrt(E)
  bool causal = false, has_mask = false, gqa = false, mask_bool = false;
  double attn_scale = 0;
  // slice: per input dim start, step, length (-1: the whole dim) and whether it is kept (an
  // integer index drops it); new size-1 axes at these output positions
  std::vector<int64_t> starts, slice_steps, lengths;
  std::vector<bool> keep;
  std::vector<int64_t> new_axes;
};

struct Node {
  Op op;
  std::vector<int> inputs;
  int output = -1;
  std::vector<int> extra_outputs;  // rnn: h_n (and c_n)
  Attrs attrs;
  std::string module;  // where it came from, for error messages
  std::shared_ptr<const nc::RnnWeights> rnn;  // rnn: its weights in the step layouts (set at load)
  // linear with a constant weight: that weight packed once at load for the GEMM's micro-kernel
  // (kernels::GemmFns::pack_b, in Model::buffers); null otherwise
  const float* packed_weight = nullptr;
  // conv2d with a constant weight on the Winograd path: its transform, made once at load
  // (kernels::WinogradKernels::transform_weights, in Model::buffers); null otherwise
  const float* winograd_weight = nullptr;
};

// The part of a conv2d node's kernel geometry that its attributes and weight shape (out, in/groups,
// kh, kw) fix: groups, channels per group, kernel, stride, top/left padding, dilation. Callers add
// the batch and the input and output sizes (execute.cpp), or need no more (optimize.cpp).
inline nc::kernels::ConvGeom conv_weight_geom(const Attrs& a, const std::vector<int64_t>& ws) {
  nc::kernels::ConvGeom g{};
  g.groups = a.groups;
  g.og = ws[0] / a.groups;
  g.cg = ws[1];
  g.kh = ws[2];
  g.kw = ws[3];
  g.sh = a.stride[0];
  g.sw = a.stride[1];
  g.pt = a.padding[0];
  g.pl = a.padding[2];
  g.dh = a.dilation[0];
  g.dw = a.dilation[1];
  return g;
}

// Where a value lives.
enum class ValueKind { Input, Constant, Computed };

struct Value {
  ValueKind kind = ValueKind::Computed;
  int input_index = -1;           // Input
  std::vector<int64_t> shape;     // Constant: its shape
  const float* data = nullptr;    // Constant: its data (in Model::buffers)
};

// Shapes and memory layout for one set of input shapes.
struct Plan {
  std::vector<std::vector<int64_t>> shapes;  // per value
  std::vector<int64_t> offset;               // per value: float offset in the arena (-1: not in the arena)
  std::vector<int> root;                     // per value: the value whose memory it shares (reshape)
  int64_t arena_floats = 0;
  int64_t workspace_offset = 0;              // scratch for ops that need it (conv_transpose, permuted softmax)
  mutable nc::ThreadChoice threads;          // calls shared with the pool or run alone: the faster
};

struct AlignedDelete {
  void operator()(float* p) const { ::operator delete[](p, std::align_val_t(64)); }
};

// Scratch memory of one call; grown only when a plan needs more.
struct Arena {
  std::unique_ptr<float[], AlignedDelete> data;
  int64_t capacity = 0;
  void reserve(int64_t n);
};

struct Model {
  std::vector<std::string> input_names, output_names;
  std::vector<std::vector<int64_t>> input_shapes;  // -1: dynamic batch
  std::vector<int> input_values, output_values;
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<std::unique_ptr<float[], AlignedDelete>> buffers;  // constant storage, 64-byte aligned
  bool dynamic_batch = false;
  std::atomic<int> num_threads{0};  // Session::set_num_threads (0: the process-wide setting)

  // Plans by input shapes, built on first use and never changed afterwards.
  mutable std::mutex plans_mutex;
  mutable std::map<std::vector<int64_t>, std::shared_ptr<const Plan>> plans;

  // Arenas not in use (one per concurrent caller at most).
  mutable std::mutex arenas_mutex;
  mutable std::vector<std::unique_ptr<Arena>> free_arenas;

  float* new_buffer(int64_t n);
};

// loader.cpp: reads and verifies a file.
std::shared_ptr<Model> load_model(const std::string& path);
// optimize.cpp: BatchNorm folding, activation fusion, dead node removal, recurrent and linear
// weights laid out (packed) for their kernels.
void optimize(Model& m, const Plan& example);
// planner.cpp: shape inference (validates everything a kernel relies on) and arena layout.
std::shared_ptr<const Plan> make_plan(const Model& m, const std::vector<std::vector<int64_t>>& input_shapes);
std::shared_ptr<const Plan> get_plan(const Model& m, const std::vector<std::vector<int64_t>>& input_shapes);
// execute.cpp: runs one node (`extra` receives the extra outputs).
void execute(const Plan& plan, const Node& n, const std::vector<const float*>& in, float* out,
             const std::vector<float*>& extra, float* workspace);
int64_t workspace_floats(const Node& n, const std::vector<std::vector<int64_t>>& shapes);

int64_t numel_of(const std::vector<int64_t>& shape);
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace neurocore::detail
