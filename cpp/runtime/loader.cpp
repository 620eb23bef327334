// Reads a model file and verifies all of it before anything runs: the safetensors framing, every
// tensor's dtype, shape and offsets (inside the data section, no holes, no overlaps), the SHA-256
// of the data section, the format version, and the graph (known ops, typed attributes, values
// defined once before use). Shape consistency is then checked by planning the recorded example.
#include <algorithm>
#include <cmath>
#include <limits>
#include <cstring>
#include <fstream>
#include <set>

#include "json.h"
#include "model.h"
#include "sha256.h"

namespace neurocore::detail {
namespace {

constexpr uint64_t kMaxHeader = 100u << 20;        // 100 MiB of JSON
constexpr int64_t kMaxDim = int64_t(1) << 40;
constexpr int kFormatVersion = 1;

[[noreturn]] void fail(const std::string& path, const std::string& msg) {
  throw Error("[load] " + path + ": " + msg);
}

std::vector<unsigned char> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) fail(path, "cannot open the file");
  const std::streamoff size = f.tellg();
  if (size < 0) fail(path, "cannot read the file size");
  std::vector<unsigned char> bytes(static_cast<size_t>(size));
  f.seekg(0);
  if (size > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), size)) fail(path, "cannot read the file");
  return bytes;
}

int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || d > kMaxDim) throw Error("[load] " + what + " has an invalid dimension " + std::to_string(d));
    if (d != 0 && n > kMaxDim / d) throw Error("[load] " + what + " has too many elements");
    n *= d;
  }
  return n;
}

const std::map<std::string, Op>& op_names() {
  static const std::map<std::string, Op> names = {
      {"linear", Op::Linear}, {"matmul", Op::Matmul}, {"conv2d", Op::Conv2d},
      {"conv_transpose2d", Op::ConvTranspose2d}, {"max_pool2d", Op::MaxPool2d}, {"avg_pool2d", Op::AvgPool2d},
      {"adaptive_avg_pool2d", Op::AdaptiveAvgPool2d}, {"batch_norm", Op::BatchNorm},
      {"layer_norm", Op::LayerNorm}, {"softmax", Op::Softmax}, {"log_softmax", Op::LogSoftmax},
      {"add", Op::Add}, {"sub", Op::Sub}, {"mul", Op::Mul}, {"div", Op::Div}, {"relu", Op::Relu},
      {"sigmoid", Op::Sigmoid}, {"tanh", Op::Tanh}, {"gelu", Op::Gelu}, {"silu", Op::Silu}, {"mish", Op::Mish},
      {"elu", Op::Elu}, {"leaky_relu", Op::LeakyRelu}, {"softplus", Op::Softplus}, {"hardtanh", Op::Hardtanh},
      {"reshape", Op::Reshape}, {"permute", Op::Permute}, {"cat", Op::Cat}, {"mean", Op::Mean}, {"sum", Op::Sum},
      {"rnn", Op::Rnn}, {"attention", Op::Attention}, {"embedding", Op::Embedding}, {"rms_norm", Op::RmsNorm},
      {"slice", Op::Slice}, {"full", Op::Full}, {"expand", Op::Expand}, {"where", Op::Where}, {"pack", Op::Pack},
      {"unpack", Op::Unpack}};
  return names;
}

template <size_t N>
std::array<int64_t, N> fixed(const Json& attrs, const char* key, const std::string& what, int64_t lo) {
  const std::vector<int64_t> v = attrs.at(key, what).as_int_list(what + "." + key);
  if (v.size() != N) throw Error("[load] " + what + "." + key + " must have " + std::to_string(N) + " elements");
  std::array<int64_t, N> a{};
  for (size_t i = 0; i < N; ++i) {
    if (v[i] < lo || v[i] > (int64_t(1) << 31))
      throw Error("[load] " + what + "." + key + " has an out-of-range value " + std::to_string(v[i]));
    a[i] = v[i];
  }
  return a;
}

int64_t int_attr(const Json& attrs, const char* key, const std::string& what, int64_t lo) {
  const int64_t v = attrs.at(key, what).as_int(what + "." + key);
  if (v < lo || v > (int64_t(1) << 31))
    throw Error("[load] " + what + "." + key + " has an out-of-range value " + std::to_string(v));
  return v;
}

Act parse_act(const Json& attrs, const std::string& what) {
  const std::string& a = attrs.at("act", what).as_string(what + ".act");
  if (a == "none") return Act::None;
  if (a == "relu") return Act::Relu;
  throw Error("[load] " + what + ".act must be 'none' or 'relu', got '" + a + "'");
}

// A number attribute; JSON has no inf or NaN, so they come as the strings "inf", "-inf", "nan".
double num(const Json& attrs, const char* key, const std::string& what) {
  const Json& v = attrs.at(key, what);
  if (v.is(Json::Type::String)) {
    const std::string& s = v.as_string(what + "." + key);
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    throw Error("[load] " + what + "." + key + " must be a number, got the string '" + s + "'");
  }
  return v.as_double(what + "." + key);
}

// Parses the attributes of one node; returns how many inputs the node must have (-1: at least 1).
int parse_attrs(Op& op, const Json& j, Attrs& a, const std::string& what) {
  switch (op) {
    case Op::Linear:
      a.act = parse_act(j, what);
      return -2;  // 2 or 3
    case Op::Matmul:
      return 2;
    case Op::Conv2d:
      a.stride = fixed<2>(j, "stride", what, 1);
      a.padding = fixed<4>(j, "padding", what, 0);
      a.dilation = fixed<2>(j, "dilation", what, 1);
      a.groups = int_attr(j, "groups", what, 1);
      a.act = parse_act(j, what);
      return -2;
    case Op::ConvTranspose2d: {
      a.stride = fixed<2>(j, "stride", what, 1);
      const auto p = fixed<2>(j, "padding", what, 0);
      a.padding = {p[0], p[0], p[1], p[1]};
      a.output_padding = fixed<2>(j, "output_padding", what, 0);
      a.dilation = fixed<2>(j, "dilation", what, 1);
      a.groups = int_attr(j, "groups", what, 1);
      return -2;
    }
    case Op::MaxPool2d:
    case Op::AvgPool2d: {
      a.kernel = fixed<2>(j, "kernel", what, 1);
      a.stride = fixed<2>(j, "stride", what, 1);
      const auto p = fixed<2>(j, "padding", what, 0);
      a.padding = {p[0], p[0], p[1], p[1]};
      a.ceil_mode = j.at("ceil_mode", what).as_bool(what + ".ceil_mode");
      if (op == Op::MaxPool2d) {
        a.dilation = fixed<2>(j, "dilation", what, 1);
      } else {
        a.count_include_pad = j.at("count_include_pad", what).as_bool(what + ".count_include_pad");
        a.divisor_override = int_attr(j, "divisor_override", what, 0);
      }
      return 1;
    }
    case Op::AdaptiveAvgPool2d:
      a.output_size = fixed<2>(j, "output_size", what, 1);
      return 1;
    case Op::BatchNorm:
    case Op::LayerNorm:
      a.eps = num(j, "eps", what);
      if (!(a.eps >= 0)) throw Error("[load] " + what + ".eps must be non-negative");
      a.has_weight = j.at("has_weight", what).as_bool(what + ".has_weight");
      a.has_bias = j.at("has_bias", what).as_bool(what + ".has_bias");
      if (op == Op::LayerNorm) {
        a.normalized_shape = j.at("normalized_shape", what).as_int_list(what + ".normalized_shape");
        checked_numel(a.normalized_shape, what + ".normalized_shape");
        if (a.normalized_shape.empty()) throw Error("[load] " + what + ".normalized_shape is empty");
        return 1 + a.has_weight + a.has_bias;
      }
      return 3 + a.has_weight + a.has_bias;
    case Op::Softmax:
    case Op::LogSoftmax:
    case Op::Cat:
      a.dim = int_attr(j, "dim", what, 0);
      return op == Op::Cat ? -1 : 1;
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Div:
      if (const Json* s = j.find("scalar")) {
        a.has_scalar = true;
        a.scalar = static_cast<float>(s->as_double(what + ".scalar"));
        a.reverse = j.at("reverse", what).as_bool(what + ".reverse");
        return 1;
      }
      return 2;
    case Op::Gelu: {
      const std::string& ap = j.at("approximate", what).as_string(what + ".approximate");
      if (ap == "tanh") op = Op::GeluTanh;
      else if (ap != "none") throw Error("[load] " + what + ".approximate must be 'none' or 'tanh'");
      return 1;
    }
    case Op::Elu: a.p0 = num(j, "alpha", what); a.p1 = num(j, "scale", what); return 1;
    case Op::LeakyRelu: a.p0 = num(j, "negative_slope", what); return 1;
    case Op::Softplus: a.p0 = num(j, "beta", what); a.p1 = num(j, "threshold", what); return 1;
    case Op::Hardtanh:
      a.p0 = num(j, "min_val", what);
      a.p1 = num(j, "max_val", what);
      if (!(a.p0 <= a.p1)) throw Error("[load] " + what + ": min_val must be at most max_val");
      return 1;
    case Op::Reshape:
    case Op::Full:
    case Op::Expand:
      if (op == Op::Full) a.scalar = static_cast<float>(num(j, "value", what));
      for (const Json& d : j.at("shape", what).as_array(what + ".shape")) {
        const std::vector<int64_t> ck = d.as_int_list(what + ".shape element");
        if (ck.size() != 2 || ck[0] < -kMaxDim || ck[0] > kMaxDim || ck[1] < 0 || ck[1] > (1 << 20))
          throw Error("[load] " + what + ".shape elements must be [constant, batch multiple] pairs in range");
        a.shape_c.push_back(ck[0]);
        a.shape_k.push_back(ck[1]);
      }
      if (a.shape_c.size() > 16) throw Error("[load] " + what + ".shape has too many dims");
      return op == Op::Full ? 0 : 1;
    case Op::Permute:
    case Op::Mean:
    case Op::Sum:
      a.dims = j.at("dims", what).as_int_list(what + ".dims");
      if (a.dims.size() > 16) throw Error("[load] " + what + ".dims has too many entries");
      if (op != Op::Permute) a.keepdim = j.at("keepdim", what).as_bool(what + ".keepdim");
      return 1;
    case Op::Rnn: {
      a.mode = int_attr(j, "mode", what, 0);
      if (a.mode > 3) throw Error("[load] " + what + ".mode must be 0 (tanh), 1 (relu), 2 (LSTM) or 3 (GRU)");
      a.steps = int_attr(j, "steps", what, 1);
      a.reverse = j.at("reverse", what).as_bool(what + ".reverse");
      a.has_h0 = j.at("has_h0", what).as_bool(what + ".has_h0");
      a.has_c0 = j.at("has_c0", what).as_bool(what + ".has_c0");
      a.has_bias = j.at("has_bias", what).as_bool(what + ".has_bias");
      a.has_proj = j.at("has_proj", what).as_bool(what + ".has_proj");
      if ((a.has_c0 && a.mode != 2) || (a.has_proj && a.mode != 2))
        throw Error("[load] " + what + ": c0 and a projection belong to LSTM only");
      if (const Json* p = j.find("packed")) a.packed = p->as_bool(what + ".packed");
      return 3 + a.packed + a.has_h0 + a.has_c0 + 2 * a.has_bias + a.has_proj;
    }
    case Op::Attention:
      a.causal = j.at("is_causal", what).as_bool(what + ".is_causal");
      a.has_mask = j.at("has_mask", what).as_bool(what + ".has_mask");
      a.gqa = j.at("enable_gqa", what).as_bool(what + ".enable_gqa");
      if (const Json* b = j.find("mask_bool")) a.mask_bool = b->as_bool(what + ".mask_bool");  // absent: additive
      if (a.mask_bool && !a.has_mask) throw Error("[load] " + what + ".mask_bool is set without a mask");
      a.attn_scale = num(j, "scale", what);
      if (!(a.attn_scale >= 0) || std::isinf(a.attn_scale))
        throw Error("[load] " + what + ".scale must be finite and non-negative (0: 1/sqrt(E))");
      return 3 + a.has_mask;
    case Op::Embedding:
      return 2;
    case Op::Where:
      return 3;
    case Op::Pack:
      a.batch_first = j.at("batch_first", what).as_bool(what + ".batch_first");
      a.enforce_sorted = j.at("enforce_sorted", what).as_bool(what + ".enforce_sorted");
      return 2;
    case Op::Unpack:
      a.batch_first = j.at("batch_first", what).as_bool(what + ".batch_first");
      a.scalar = static_cast<float>(num(j, "padding_value", what));
      a.total_length = int_attr(j, "total_length", what, 0);
      return 2;
    case Op::RmsNorm:
      a.eps = num(j, "eps", what);
      if (!(a.eps >= 0)) throw Error("[load] " + what + ".eps must be non-negative");
      a.has_weight = j.at("has_weight", what).as_bool(what + ".has_weight");
      a.normalized_shape = j.at("normalized_shape", what).as_int_list(what + ".normalized_shape");
      checked_numel(a.normalized_shape, what + ".normalized_shape");
      if (a.normalized_shape.empty() || a.normalized_shape.size() > 16)
        throw Error("[load] " + what + ".normalized_shape must have 1 to 16 dims");
      return 1 + a.has_weight;
    case Op::Slice: {
      const auto& dims = j.at("dims", what).as_array(what + ".dims");
      if (dims.size() > 16) throw Error("[load] " + what + ".dims has too many entries");
      for (const Json& d : dims) {
        const std::vector<int64_t> v = d.as_int_list(what + ".dims element");
        // [start, step, length (-1: whole dim), keep]
        if (v.size() != 4 || v[0] < -kMaxDim || v[0] > kMaxDim || v[1] < 1 || v[1] > kMaxDim || v[2] < -1 ||
            v[2] > kMaxDim || v[3] < 0 || v[3] > 1 || (v[3] == 0 && v[2] != 1))
          throw Error("[load] " + what + ".dims elements must be [start, step >= 1, length >= -1, keep 0/1] in range");
        a.starts.push_back(v[0]);
        a.slice_steps.push_back(v[1]);
        a.lengths.push_back(v[2]);
        a.keep.push_back(v[3] == 1);
      }
      a.new_axes = j.at("new_axes", what).as_int_list(what + ".new_axes");
      if (a.new_axes.size() > 16) throw Error("[load] " + what + ".new_axes has too many entries");
      return 1;
    }
    default:
      return 1;
  }
}

}  // namespace

float* Model::new_buffer(int64_t n) {
  const size_t bytes = (static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64 * 64;
  auto* p = static_cast<float*>(::operator new[](bytes, std::align_val_t(64)));
  buffers.emplace_back(p);
  return p;
}

std::shared_ptr<Model> load_model(const std::string& path) {
  const std::vector<unsigned char> bytes = read_file(path);
  if (bytes.size() < 8) fail(path, "file too short for a safetensors header (" + std::to_string(bytes.size()) + " bytes)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[static_cast<size_t>(i)];
  if (header_len > kMaxHeader || header_len > bytes.size() - 8)
    fail(path, "header length " + std::to_string(header_len) + " exceeds the file size " + std::to_string(bytes.size()));
  const Json header = Json::parse(reinterpret_cast<const char*>(bytes.data() + 8), header_len, path + " header");
  const unsigned char* data = bytes.data() + 8 + header_len;
  const uint64_t data_size = bytes.size() - 8 - header_len;

  // Metadata: format, version, checksum.
  const Json& meta = header.at("__metadata__", "the header");
  for (const auto& [k, v] : meta.as_object("__metadata__")) v.as_string("__metadata__." + k);
  if (meta.at("neurocore.format", "__metadata__").as_string("format") != "neurocore-model")
    fail(path, "not a neurocore model (__metadata__['neurocore.format'] is not 'neurocore-model')");
  const std::string& version = meta.at("neurocore.format_version", "__metadata__").as_string("format_version");
  if (version != std::to_string(kFormatVersion))
    fail(path, "format version '" + version + "' is not supported (this runtime reads version " +
                   std::to_string(kFormatVersion) + ")");
  const std::string& expected_sha = meta.at("neurocore.data_sha256", "__metadata__").as_string("data_sha256");
  if (sha256_hex(data, data_size) != expected_sha)
    fail(path, "checksum mismatch: the data section's SHA-256 differs from the one recorded (corrupt or truncated file)");

  // Tensors: F32 only, offsets inside the data section covering it exactly.
  struct Entry { int64_t begin, end; std::vector<int64_t> shape; };
  std::map<std::string, Entry> tensors;
  for (const auto& [name, t] : header.as_object("the header")) {
    if (name == "__metadata__") continue;
    const std::string what = "tensor '" + name + "'";
    const std::string& dtype = t.at("dtype", what).as_string(what + ".dtype");
    if (dtype != "F32") fail(path, what + " has dtype " + dtype + "; the runtime reads F32 only");
    Entry e;
    e.shape = t.at("shape", what).as_int_list(what + ".shape");
    const int64_t n = checked_numel(e.shape, what);
    const std::vector<int64_t> off = t.at("data_offsets", what).as_int_list(what + ".data_offsets");
    if (off.size() != 2 || off[0] < 0 || off[1] < off[0] || static_cast<uint64_t>(off[1]) > data_size)
      fail(path, what + " has data offsets outside the data section (" + std::to_string(data_size) + " bytes)");
    if (off[1] - off[0] != n * 4)
      fail(path, what + " of shape " + shape_str(e.shape) + " needs " + std::to_string(n * 4) + " bytes, its offsets span " +
                     std::to_string(off[1] - off[0]));
    e.begin = off[0];
    e.end = off[1];
    tensors.emplace(name, std::move(e));
  }
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (const auto& [name, e] : tensors) spans.emplace_back(e.begin, e.end);
  std::sort(spans.begin(), spans.end());
  int64_t covered = 0;
  for (const auto& [b, e] : spans) {
    if (b != covered) fail(path, "tensor data has a hole or an overlap at byte " + std::to_string(b));
    covered = e;
  }
  if (static_cast<uint64_t>(covered) != data_size) fail(path, "the data section has bytes no tensor owns");

  // Graph.
  const std::string& graph_text = meta.at("neurocore.graph", "__metadata__").as_string("graph");
  const Json graph = Json::parse(graph_text.data(), graph_text.size(), path + " graph");
  auto m = std::make_shared<Model>();
  const int64_t num_values = graph.at("num_values", "graph").as_int("graph.num_values");
  // Every value is an input, a constant or a node's output, defined once.
  size_t definitions = graph.at("inputs", "graph").as_array("graph.inputs").size() +
                       graph.at("constants", "graph").as_array("graph.constants").size();
  for (const Json& nj : graph.at("nodes", "graph").as_array("graph.nodes"))
    definitions += std::min<size_t>(3, nj.at("outputs", "graph node").as_array("graph node outputs").size());
  if (num_values < 1 || static_cast<uint64_t>(num_values) > definitions)
    fail(path, "graph.num_values (" + std::to_string(num_values) + ") doesn't match the " +
                   std::to_string(definitions) + " values the graph defines");
  m->values.resize(static_cast<size_t>(num_values));
  std::vector<bool> defined(static_cast<size_t>(num_values), false);
  auto value_id = [&](const Json& j, const std::string& what) {
    const int64_t v = j.as_int(what);
    if (v < 0 || v >= num_values) fail(path, what + " refers to value " + std::to_string(v) + ", out of range");
    return static_cast<int>(v);
  };
  auto define = [&](int v, const std::string& what) {
    if (defined[static_cast<size_t>(v)]) fail(path, what + " defines value " + std::to_string(v) + " a second time");
    defined[static_cast<size_t>(v)] = true;
  };
  m->dynamic_batch = graph.at("dynamic_batch", "graph").as_bool("graph.dynamic_batch");
  std::vector<std::vector<int64_t>> example_shapes;
  for (const Json& in : graph.at("inputs", "graph").as_array("graph.inputs")) {
    const std::string what = "graph input";
    const int v = value_id(in.at("value", what), what + ".value");
    define(v, what);
    m->values[static_cast<size_t>(v)].kind = ValueKind::Input;
    m->values[static_cast<size_t>(v)].input_index = static_cast<int>(m->input_values.size());
    m->input_values.push_back(v);
    m->input_names.push_back(in.at("name", what).as_string(what + ".name"));
    std::vector<int64_t> shape = in.at("shape", what).as_int_list(what + ".shape");
    std::vector<int64_t> example = in.at("example_shape", what).as_int_list(what + ".example_shape");
    checked_numel(example, what + " example shape");
    if (shape.size() != example.size() || shape.size() > 16) fail(path, "graph input shapes disagree");
    int dynamic_dims = 0;  // the batch dim (-1) may be any one dim of each input
    for (size_t i = 0; i < shape.size(); ++i)
      if (shape[i] != example[i] && !(shape[i] == -1 && m->dynamic_batch && ++dynamic_dims == 1))
        fail(path, "graph input shape " + shape_str(shape) + " is invalid");
    m->input_shapes.push_back(shape);
    example_shapes.push_back(example);
  }
  if (m->input_values.empty()) fail(path, "the graph has no inputs");
  if (m->input_values.size() > 64) fail(path, "the graph has too many inputs");
  for (const Json& c : graph.at("constants", "graph").as_array("graph.constants")) {
    const int v = value_id(c.at("value", "graph constant"), "graph constant value");
    define(v, "graph constant");
    const std::string& name = c.at("tensor", "graph constant").as_string("graph constant tensor");
    auto it = tensors.find(name);
    if (it == tensors.end()) fail(path, "graph constant refers to tensor '" + name + "', which the file lacks");
    Value& val = m->values[static_cast<size_t>(v)];
    val.kind = ValueKind::Constant;
    val.shape = it->second.shape;
    float* buf = m->new_buffer(numel_of(val.shape));
    std::memcpy(buf, data + it->second.begin, static_cast<size_t>(it->second.end - it->second.begin));
    val.data = buf;
  }
  const auto& nodes = graph.at("nodes", "graph").as_array("graph.nodes");
  if (nodes.size() > (1u << 20)) fail(path, "too many nodes");
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Json& nj = nodes[i];
    std::string what = "node " + std::to_string(i);
    const std::string& op = nj.at("op", what).as_string(what + ".op");
    auto it = op_names().find(op);
    if (it == op_names().end()) fail(path, what + " has unknown op '" + op + "'");
    Node n;
    n.op = it->second;
    if (const Json* mod = nj.find("module")) n.module = mod->as_string(what + ".module");
    what += " (" + op + (n.module.empty() ? "" : " in module '" + n.module + "'") + ")";
    const int arity = parse_attrs(n.op, nj.at("attrs", what), n.attrs, what);
    for (const Json& in : nj.at("inputs", what).as_array(what + ".inputs")) {
      const int v = value_id(in, what + " input");
      if (!defined[static_cast<size_t>(v)]) fail(path, what + " uses value " + std::to_string(v) + " before it is defined");
      n.inputs.push_back(v);
    }
    const size_t k = n.inputs.size();
    if ((arity >= 0 && k != static_cast<size_t>(arity)) || (arity == -2 && k != 2 && k != 3) ||
        (arity == -1 && (k < 1 || k > 1024)))
      fail(path, what + " has " + std::to_string(k) + " inputs, which the op does not take");
    const auto& outs = nj.at("outputs", what).as_array(what + ".outputs");
    // rnn: output, h_n and (LSTM) c_n; every other op: one output.
    const size_t n_out = n.op == Op::Rnn ? (n.attrs.mode == 2 ? 3 : 2) : 1;
    if (outs.size() != n_out) fail(path, what + " must have " + std::to_string(n_out) + " output(s)");
    n.output = value_id(outs[0], what + " output");
    define(n.output, what);
    for (size_t o = 1; o < n_out; ++o) {
      n.extra_outputs.push_back(value_id(outs[o], what + " output"));
      define(n.extra_outputs.back(), what);
    }
    // Weights of the layers are constants: the optimiser folds and the planner trusts them.
    auto need_const = [&](size_t idx) {
      if (idx < k && m->values[static_cast<size_t>(n.inputs[idx])].kind != ValueKind::Constant)
        fail(path, what + ": input " + std::to_string(idx) + " (a weight) must be a constant");
    };
    switch (n.op) {
      case Op::Linear: case Op::Conv2d: case Op::ConvTranspose2d: case Op::BatchNorm: case Op::LayerNorm:
      case Op::RmsNorm:
        for (size_t idx = 1; idx < k; ++idx) need_const(idx);
        break;
      case Op::Rnn:
        for (size_t idx = 1 + n.attrs.packed + n.attrs.has_h0 + n.attrs.has_c0; idx < k; ++idx) need_const(idx);
        break;
      case Op::Embedding:
        need_const(0);
        break;
      default: break;
    }
    m->nodes.push_back(std::move(n));
  }
  for (const Json& out : graph.at("outputs", "graph").as_array("graph.outputs")) {
    const int v = value_id(out.at("value", "graph output"), "graph output value");
    if (!defined[static_cast<size_t>(v)]) fail(path, "graph output refers to an undefined value");
    if (m->values[static_cast<size_t>(v)].kind != ValueKind::Computed) fail(path, "a graph output must be computed by a node");
    m->output_values.push_back(v);
    m->output_names.push_back(out.at("name", "graph output").as_string("graph output name"));
  }
  if (m->output_values.empty()) fail(path, "the graph has no outputs");

  try {
    const auto example = make_plan(*m, example_shapes);  // every shape the graph implies is consistent
    optimize(*m, *example);
    make_plan(*m, example_shapes);
  } catch (const Error& e) {
    fail(path, std::string("invalid graph: ") + e.what());
  }
  return m;
}

}  // namespace neurocore::detail
