// C ABI over neurocore::Session: exceptions become return codes and messages.
#include <cstring>
#include <exception>

#include "neurocore/runtime.h"
#include "neurocore_runtime.h"

struct nc_session {
  neurocore::Session session;
};

namespace {

void set_error(char* err, size_t len, const char* msg) {
  if (!err || len == 0) return;
  std::strncpy(err, msg, len - 1);
  err[len - 1] = '\0';
}

std::vector<std::vector<int64_t>> shapes_of(const nc_session* s, const int64_t* const* shapes, const int* ranks) {
  std::vector<std::vector<int64_t>> out;
  const size_t n = s->session.input_names().size();
  if (n && (!shapes || !ranks)) throw neurocore::Error("[run] input shapes are missing");
  for (size_t i = 0; i < n; ++i) {
    if (ranks[i] < 0 || ranks[i] > 16 || (ranks[i] > 0 && !shapes[i])) throw neurocore::Error("[run] invalid input rank");
    out.emplace_back(shapes[i], shapes[i] + ranks[i]);
  }
  return out;
}

}  // namespace

extern "C" {

nc_session* nc_session_open(const char* path, char* err, size_t err_len) {
  try {
    if (!path) throw neurocore::Error("[load] path is null");
    return new nc_session{neurocore::Session(path)};
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
  } catch (...) {
    set_error(err, err_len, "[load] unknown error");
  }
  return nullptr;
}

void nc_session_close(nc_session* session) { delete session; }

int nc_session_num_inputs(const nc_session* s) { return s ? static_cast<int>(s->session.input_names().size()) : -1; }
int nc_session_num_outputs(const nc_session* s) { return s ? static_cast<int>(s->session.output_names().size()) : -1; }
int nc_session_set_num_threads(nc_session* s, int n) {
  if (!s) return -1;
  s->session.set_num_threads(n);
  return 0;
}

int nc_session_output_shape(const nc_session* s, const int64_t* const* input_shapes, const int* input_ranks, int index,
                            int64_t* shape, int max_rank, char* err, size_t err_len) {
  try {
    if (!s) throw neurocore::Error("[run] session is null");
    const auto outs = s->session.output_shapes(shapes_of(s, input_shapes, input_ranks));
    if (index < 0 || static_cast<size_t>(index) >= outs.size()) throw neurocore::Error("[run] output index out of range");
    const auto& o = outs[static_cast<size_t>(index)];
    if (static_cast<int>(o.size()) > max_rank || (!shape && !o.empty())) throw neurocore::Error("[run] max_rank too small");
    for (size_t i = 0; i < o.size(); ++i) shape[i] = o[i];
    return static_cast<int>(o.size());
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
  }
  return -1;
}

int nc_session_run(const nc_session* s, const float* const* inputs, const int64_t* const* input_shapes,
                   const int* input_ranks, float* const* outputs, const int64_t* output_capacity, char* err,
                   size_t err_len) {
  try {
    if (!s || !inputs || !outputs || !output_capacity) throw neurocore::Error("[run] null argument");
    const auto shapes = shapes_of(s, input_shapes, input_ranks);
    std::vector<neurocore::Tensor> in;
    for (size_t i = 0; i < shapes.size(); ++i) in.emplace_back(inputs[i], shapes[i]);
    auto out_shapes = s->session.output_shapes(shapes);
    std::vector<neurocore::Tensor> out;
    for (size_t i = 0; i < out_shapes.size(); ++i) {
      neurocore::Tensor t(outputs[i], out_shapes[i]);
      if (t.numel() > output_capacity[i])
        throw neurocore::Error("[run] output " + std::to_string(i) + " needs " + std::to_string(t.numel()) +
                               " floats, its buffer holds " + std::to_string(output_capacity[i]));
      out.push_back(std::move(t));
    }
    s->session.run(in, out);
    return 0;
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
  }
  return -1;
}

}  // extern "C"
