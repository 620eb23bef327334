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
// activations (and LSTM cell states) are kept; backward runs through time the same way (dgates
// per block, a barrier, then dh_prev per block) and forms the weight gradients as single GEMMs
// over all steps. Blocks never depend on the thread count, so neither do results.
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

}  // namespace nc
