#pragma once
// neurocore embedded inference: run a model exported with `neurocore.export.save` from C++.
//
//   neurocore::Session session("model.ncm");
//   std::vector<float> pixels(1 * 1 * 28 * 28);
//   neurocore::Tensor input(pixels.data(), {1, 1, 28, 28});      // a view, no copy
//   std::vector<neurocore::Tensor> out = session.run({input});
//   const float* logits = out[0].data();                           // out[0].shape() == {1, 10}
//
// Loading verifies the whole file (checksum, format version, every tensor's dtype, shape and
// offsets, the graph's ops, attributes and shapes) before anything runs; it never executes code
// from the file. `run` may be called from many threads at once on one session: the weights are
// immutable after load and each call works in its own arena. Errors are neurocore::Error.
// Integer inputs (Embedding indices, a packed sequence's lengths: "int64" in the file's metadata)
// are passed as float32 values holding the integers, bool inputs (attention masks: "bool") as 0/1. The dynamic batch dim (-1 in input_shapes()) may be any one
// dim of each input (a sequence-first LSTM's (T, B, F) input and (layers, B, H) state: dim 1).
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace neurocore {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A float32 tensor: either a view over memory the caller owns, or (outputs) owning its data.
class Tensor {
 public:
  Tensor() = default;
  Tensor(float* data, std::vector<int64_t> shape);
  Tensor(const float* data, std::vector<int64_t> shape);  // read-only view (inputs)
  static Tensor owning(std::vector<int64_t> shape);

  float* data() { return data_; }
  const float* data() const { return data_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t numel() const;

 private:
  std::shared_ptr<float[]> owner_;
  float* data_ = nullptr;
  std::vector<int64_t> shape_;
};

namespace detail { struct Model; }

class Session {
 public:
  explicit Session(const std::string& path);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Runs the model; outputs own their data.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) const;
  // Runs the model into caller-owned outputs of the right shapes (see output_shapes): after the
  // first call for a given input shape nothing is allocated.
  void run(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) const;
  // Output shapes for the given input shapes (validates them).
  std::vector<std::vector<int64_t>> output_shapes(const std::vector<std::vector<int64_t>>& input_shapes) const;

  const std::vector<std::string>& input_names() const;
  const std::vector<std::string>& output_names() const;
  // Declared input shapes; -1 marks the dynamic batch dimension.
  const std::vector<std::vector<int64_t>>& input_shapes() const;
  // Threads each run of this session uses (n <= 0: the process-wide setting, the default). Other
  // sessions and the rest of the process keep their own setting.
  void set_num_threads(int n);
  int num_threads() const;
  // Number of nodes after load-time optimisation (folding, fusion), and a one-line-per-node listing.
  size_t num_nodes() const;
  std::string describe() const;

 private:
  std::shared_ptr<detail::Model> model_;
};

}  // namespace neurocore
