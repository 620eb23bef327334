#pragma once
// Fused gate math of the recurrent cells (RNN tanh/relu, LSTM, GRU) for `rows` batch rows of one
// time step, forward and backward, compiled per ISA. The GEMMs around them (input projection,
// recurrent product) are the caller's; these kernels make one pass over the gates. Gate order is
// PyTorch's: LSTM i, f, g, o; GRU r, z, n, each gate h wide (the caller may pass a block of h
// units of a wider layer, one row at a time). All buffers are row-major with the row widths below.
// Every element is computed by the same code wherever it sits, so splitting rows between threads
// never changes a result.
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

template <class T>
struct RnnOps {
  // Strides: ldg for gate rows (gates, gx, gh and their gradients), ldc for LSTM cell rows (c,
  // c_prev, dc), ldh for hidden-state rows (outputs, previous states and their gradients).
  // RNN: y = act(g) (tanh, or ReLU when relu).
  void (*rnn_forward)(const T* g, int64_t ldg, T* y, int64_t ldh, int64_t rows, int64_t h, bool relu);
  // The backward kernels take the gradient of a step's output in two parts, dh (from the step
  // after) and dy (from the layer's output, or null), and unless db is null add each row's
  // gradients of the pre-activations to db (the bias gradient, in the gates' layout), rows in
  // order: one pass where two more would read the gate gradients and dh again.
  // RNN: dg = (dh + dy) * act'(from the output y = act(pre)).
  void (*rnn_backward)(const T* y, const T* dh, const T* dy, int64_t ldh, T* dg, int64_t ldg, T* db, int64_t rows,
                       int64_t h, bool relu);
  // LSTM: gate pre-activations -> activations in place; c = f*c_prev + i*g (c may be c_prev);
  // hc = o * tanh(c); tanh(c) also into tanh_c unless it is null (training keeps it for backward).
  void (*lstm_forward)(T* gates, int64_t ldg, const T* c_prev, T* c, T* tanh_c, int64_t ldc, T* hc, int64_t ldh,
                       int64_t rows, int64_t h);
  // From the activations, tanh(c), c_prev and dhc + dy (gradient of o*tanh(c)): dgates = gradients
  // of the pre-activations; dc holds the gradient of c from the step after and gets that of c_prev.
  void (*lstm_backward)(const T* gates, T* dgates, int64_t ldg, const T* tanh_c, const T* c_prev, T* dc, int64_t ldc,
                        const T* dhc, const T* dy, int64_t ldh, T* db, int64_t rows, int64_t h);
  // GRU: gx = input projection + b_ih, gh = W_hh h_prev + b_hh. gx becomes the activations
  // r, z, n (n = tanh(x_n + r * gh_n)); h_out = n + z * (h_prev - n).
  void (*gru_forward)(T* gx, const T* gh, int64_t ldg, const T* h_prev, T* h_out, int64_t ldh, int64_t rows,
                      int64_t h);
  // dgx = gradients of the input-side pre-activations (summed into db), dgh those of
  // W_hh h_prev + b_hh (summed into dbh; both null or neither); dh_prev = the direct part
  // (dh + dy) * z (may alias dh; the caller adds dgh @ W_hh).
  void (*gru_backward)(const T* gates, const T* gh, T* dgx, T* dgh, int64_t ldg, const T* h_prev, const T* dh,
                       const T* dy, T* dh_prev, int64_t ldh, T* db, T* dbh, int64_t rows, int64_t h);
  // b (rows x n, row stride ldb) += a (rows x n, row stride lda): a step's output gradient joining
  // the one from the step after (LSTM with a projection: its gate kernel reads W_hr's product).
  void (*add_block)(const T* a, int64_t lda, T* b, int64_t ldb, int64_t rows, int64_t n);
};

struct RnnKernels {
  RnnOps<float> f32;
  RnnOps<double> f64;
};

NC_KERNEL_FAMILY(RnnKernels, rnn)

template <class T>
const RnnOps<T>& rnn_ops() {
  if constexpr (sizeof(T) == 4) return rnn().f32;
  else return rnn().f64;
}

}  // namespace nc::kernels
