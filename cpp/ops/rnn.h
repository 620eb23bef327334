#pragma once
// One recurrent layer in one direction over a whole (possibly packed) sequence: RNN (tanh/relu),
// LSTM (with optional projection) or GRU, with PyTorch's weight layouts and gate orders.
//
// The sequence is given as PyTorch's packed data: x is (N, input_size), the rows of step t being
// the batch_sizes[t] rows starting at sum(batch_sizes[:t]); batch_sizes is non-increasing (a
// padded batch of B sequences of length T is batch_sizes = [B] * T over x.reshape(T*B, I)).
// Forward: the input projection of all steps is one GEMM; then one thread team runs every step.
// The hidden units are split into fixed 32-unit blocks whose gate columns sit together (weights
// re-laid once per call); a thread owns whole blocks, and per step runs each block's recurrent
// product and its fused gate pass, then meets the team at one barrier. In training the gate
// activations (and LSTM c and tanh(c)) are kept; backward runs through time the same way (per
// block, its columns of dh_prev from the step after and its gate gradients, then one barrier; a
// projection adds phases), adds up the bias gradients block by block, and forms the weight
// gradients as single GEMMs over all steps (W_ih and W_hh together over [x | h_prev] where they
// share the gate gradients). Blocks never depend on the thread count, so neither do results.
#include <string>
#include <vector>

#include "core/tensor.h"

namespace nc {

enum class RnnMode { Tanh = 0, Relu = 1, Lstm = 2, Gru = 3 };

// Returns {output (N, P), h_n (B, P), c_n (B, H) for LSTM}, P = proj_size or hidden size H.
// h0 (B, P) and c0 (B, H) (LSTM only) may be undefined (zeros); b_ih, b_hh and w_hr may be
// undefined. `name` names the layer in error messages.
TensorList rnn_layer(RnnMode mode, const Tensor& x, const std::vector<int64_t>& batch_sizes, bool reverse,
                     const Tensor& h0, const Tensor& c0, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                     const Tensor& b_hh, const Tensor& w_hr, const std::string& name);

// Inference on float32 buffers with the weights laid out once, for the embedded runtime: the
// same step loop and kernels as rnn_layer (so the same results), and nothing allocated per call
// when the steps run on one thread (a team of several allocates its phase counters).
struct RnnWeights {
  RnnMode mode = RnnMode::Tanh;
  int64_t I = 0, H = 0, P = 0;
  bool proj = false;
  std::vector<float> w_ih, w_step, w_hr_t, bias, bias_hh;  // the layouts the steps read
};

// w_ih (gates*H, I), w_hh (gates*H, P); b_ih, b_hh (gates*H) or both null; w_hr (P, H) or null
// (LSTM only; without it P == H). Shapes are the caller's to check.
RnnWeights rnn_prepare(RnnMode mode, int64_t I, int64_t H, int64_t P, const float* w_ih, const float* w_hh,
                       const float* b_ih, const float* b_hh, const float* w_hr);

// Floats of scratch rnn_infer needs for an input of N rows and a batch of B.
int64_t rnn_infer_scratch(const RnnWeights& w, int64_t N, int64_t B);

// One layer in one direction. Step t (time order) reads rows [offsets[t], offsets[t] +
// batch_sizes[t]) of x (N, I) and writes those rows of y (N, P) (other rows are left alone);
// batch_sizes is non-increasing with batch_sizes[0] = B. h0 (B, P) and c0 (B, H) may be null
// (zeros); writes h_n (B, P) and, for LSTM, c_n (B, H).
void rnn_infer(const RnnWeights& w, bool reverse, int64_t T, const int64_t* batch_sizes, const int64_t* offsets,
               int64_t N, const float* x, const float* h0, const float* c0, float* y, float* h_n, float* c_n,
               float* scratch);

}  // namespace nc
