#pragma once
// Fused gate math of the recurrent cells (RNN tanh/relu, LSTM, GRU) for `rows` batch rows of one
// time step, forward and backward, compiled per ISA. The GEMMs around them (input projection,
// recurrent product) are the caller's; these kernels make one pass over the gates. Gate order is
// PyTorch's: LSTM i, f, g, o; GRU r, z, n. All buffers are row-major with the row widths below.
// Every element is computed by the same code wherever it sits, so splitting rows between threads
// never changes a result.
#include <cstdint>

namespace nc::kernels {

template <class T>
struct RnnOps {
  // c (rows x n) += a (rows x k) @ w^T for w (n x k) row-major, on the calling thread: the
  // per-step product of few-row batches (batch-1 inference), whose work is too small to share.
  void (*step_dots)(const T* a, int64_t rows, int64_t k, const T* w, int64_t n, T* c);
  // RNN: g (rows x h) = act(g) in place (tanh, or ReLU when relu).
  void (*rnn_forward)(T* g, int64_t rows, int64_t h, bool relu);
  // dg (rows x h) = dh * act'(from the output y = act(pre)).
  void (*rnn_backward)(const T* y, const T* dh, T* dg, int64_t rows, int64_t h, bool relu);
  // LSTM: gates (rows x 4h) pre-activations -> activations in place; c (rows x h) holds c_prev
  // and gets c = f*c_prev + i*g; hc (rows x h) = o * tanh(c).
  void (*lstm_forward)(T* gates, T* c, T* hc, int64_t rows, int64_t h);
  // From the activations, c, c_prev and dhc (gradient of o*tanh(c)): dgates (rows x 4h) =
  // gradients of the pre-activations; dc (rows x h) holds the gradient of c from the step after
  // and gets the gradient of c_prev.
  void (*lstm_backward)(const T* gates, const T* c, const T* c_prev, const T* dhc, T* dc, T* dgates, int64_t rows,
                        int64_t h);
  // GRU: gx (rows x 3h) = input projection + b_ih, gh (rows x 3h) = W_hh h_prev + b_hh. gx becomes
  // the activations r, z, n (n = tanh(x_n + r * gh_n)); h_out = n + z * (h_prev - n).
  void (*gru_forward)(T* gx, const T* gh, const T* h_prev, T* h_out, int64_t rows, int64_t h);
  // dgx (rows x 3h) = gradients of the input-side pre-activations, dgh (rows x 3h) those of
  // W_hh h_prev + b_hh; dh_prev (rows x h) = the direct part dh * z (the caller adds dgh @ W_hh).
  void (*gru_backward)(const T* gates, const T* gh, const T* h_prev, const T* dh, T* dgx, T* dgh, T* dh_prev,
                       int64_t rows, int64_t h);
};

struct RnnKernels {
  RnnOps<float> f32;
  RnnOps<double> f64;
};

namespace generic { extern const RnnKernels rnn_table; }
namespace avx2 { extern const RnnKernels rnn_table; }

const RnnKernels& rnn();

template <class T>
const RnnOps<T>& rnn_ops() {
  if constexpr (sizeof(T) == 4) return rnn().f32;
  else return rnn().f64;
}

}  // namespace nc::kernels
