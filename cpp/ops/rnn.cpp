#include "ops/rnn.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>

#include "core/autograd.h"
#include "core/parallel.h"
#include "kernels/gemm.h"
#include "kernels/rnn.h"
#include "ops/activation.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/linalg.h"
#include "ops/math.h"

namespace nc {

namespace {

// Hidden units are processed in blocks of kUnits; a block's gate columns sit side by side
// (LSTM: i, f, g, o of units j0..j0+w), so one thread can run a block's recurrent product and
// gate math alone. The block width never depends on the thread count, so neither does a result.
constexpr int64_t kUnits = 32;
// Per-step multiply-adds below which the steps run on one thread (a team's barrier per step
// costs more than it saves, e.g. batch-1 inference).
constexpr double kMinStepWork = double(1 << 15);

struct Blocks {
  int64_t n = 0, count = 0;  // n units in blocks of kUnits
  explicit Blocks(int64_t units = 0) : n(units), count((units + kUnits - 1) / kUnits) {}
  int64_t begin(int64_t b) const { return b * kUnits; }
  int64_t size(int64_t b) const { return std::min(kUnits, n - b * kUnits); }
};

// Sizes of one layer-direction call.
struct Dims {
  RnnMode mode;
  int64_t N, I, B, T, H, P, G, ng;  // rows, input, batch, steps, hidden, output (proj or H), gate width, gates
  bool reverse, proj;
  const int64_t* bs = nullptr;   // rows of each step
  const int64_t* off = nullptr;  // first row of each step
  std::shared_ptr<const std::vector<int64_t>> steps;  // owns bs and off (tensor path; copies share it)
  Blocks hb, pb;                 // blocks of the hidden units and of the output (projection) units
  // Step processed s-th (time order, or reversed).
  int64_t step(int64_t s) const { return reverse ? T - 1 - s : s; }
  // Column of gate q of hidden unit j in the blocked gate layout.
  int64_t gate_column(int64_t q, int64_t j) const {
    const int64_t j0 = j / kUnits * kUnits;
    return j0 * ng + q * std::min(kUnits, H - j0) + (j - j0);
  }
};

// c (m x n, row stride ldc) = op(a) op(b) + beta c.
template <class T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
          T beta, T* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if constexpr (std::is_same_v<T, float>)
    kernels::gemm().f32.gemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
  else
    kernels::gemm().f64.gemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

// Rows (of `width` elements) of a gate-major matrix (PyTorch's layout, G rows) moved to the
// blocked layout, or back when `to_blocked` is false.
template <class T>
void permute_gate_rows(const Dims& d, const T* src, int64_t width, T* dst, bool to_blocked) {
  for (int64_t q = 0; q < d.ng; ++q)
    for (int64_t j = 0; j < d.H; ++j) {
      const int64_t a = q * d.H + j, b = d.gate_column(q, j);
      std::memcpy(dst + (to_blocked ? b : a) * width, src + (to_blocked ? a : b) * width, sizeof(T) * width);
    }
}

template <class T>
Tensor blocked_rows(const Dims& d, const T* src, int64_t width) {
  if (!src) return Tensor();
  Tensor out = Tensor::empty({d.G, width}, dtype_of<T>());
  permute_gate_rows(d, src, width, out.data<T>(), true);
  return out;
}

template <class T>
Tensor unblocked_rows(const Dims& d, const Tensor& blocked, int64_t width, const Shape& shape) {
  Tensor out = Tensor::empty(shape, blocked.dtype());
  permute_gate_rows(d, blocked.data<T>(), width, out.data<T>(), false);
  return out;
}

// W_hh (PyTorch's layout, G x P) as the right operand of the per-step products: block b's
// gate columns as one contiguous (P x ng*w) matrix, so each block's product streams only its
// own weights.
template <class T>
void write_step_weight(const Dims& d, const T* whh, T* o) {
  constexpr int64_t kTile = 16;  // transposed in tiles that stay in L1 on both sides
  for (int64_t b = 0; b < d.hb.count; ++b) {
    const int64_t j0 = d.hb.begin(b), w = d.hb.size(b), n = w * d.ng;
    T* ob = o + j0 * d.ng * d.P;
    for (int64_t cc = 0; cc < n; cc += kTile)
      for (int64_t pp = 0; pp < d.P; pp += kTile)
        for (int64_t c = cc; c < std::min(cc + kTile, n); ++c) {
          const T* row = whh + ((c / w) * d.H + j0 + c % w) * d.P;  // gate c / w of unit j0 + c % w
          for (int64_t p = pp; p < std::min(pp + kTile, d.P); ++p) ob[p * n + c] = row[p];
        }
  }
}

// W_hr^T (H x P): the right operand of the projection.
template <class T>
void write_projection(const Dims& d, const T* whr, T* o) {
  for (int64_t p = 0; p < d.P; ++p)
    for (int64_t j = 0; j < d.H; ++j) o[j * d.P + p] = whr[p * d.H + j];
}

// Biases in the blocked gate layout: `bias` joins the input projection (b_ih + b_hh, except GRU's
// b_hh, which sits inside r * (...)); `bias_hh` is b_hh alone (GRU).
template <class T>
void write_biases(const Dims& d, const T* bih, const T* bhh, T* bias, T* bias_hh) {
  const bool gru = d.mode == RnnMode::Gru;
  for (int64_t q = 0; q < d.ng; ++q)
    for (int64_t j = 0; j < d.H; ++j) {
      const int64_t a = q * d.H + j, c = d.gate_column(q, j);
      bias[c] = (bih ? bih[a] : T(0)) + (bhh && !gru ? bhh[a] : T(0));
      bias_hh[c] = bhh ? bhh[a] : T(0);
    }
}

template <class T>
const T* ptr(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

int team_size(const Dims& d) {
  if (omp_in_parallel()) return 1;
  if (double(d.B) * double(d.G) * double(d.P) < kMinStepWork) return 1;
  return static_cast<int>(std::min<int64_t>(get_num_threads(), d.hb.count));
}

// The predecessor state of step s (processing order): its first `have` rows are the previous
// step's outputs `prev`, the rest (reverse direction of a packed batch: sequences starting at
// this step) the initial state's rows.
template <class T>
struct PrevState {
  const T* prev;
  const T* init;
  int64_t have;
  const T* row(int64_t r, int64_t width) const { return r < have ? prev + r * width : init + r * width; }
};

template <class T>
PrevState<T> prev_state(const Dims& d, int64_t s, const T* seq, const T* init, int64_t width) {
  if (s == 0) return {init, init, 0};
  const int64_t pt = d.step(s - 1);
  return {seq + d.off[pt] * width, init, std::min(d.bs[d.step(s)], d.bs[pt])};
}

// c (rows x n, ldc) = state (rows x k) @ b (k x n, ldb) + beta c, the state in its two parts.
template <class T>
void state_product(const PrevState<T>& st, int64_t rows, int64_t k, const T* b, int64_t ldb, int64_t n, T beta, T* c,
                   int64_t ldc) {
  gemm<T>(false, false, st.have, n, k, st.prev, k, b, ldb, beta, c, ldc);
  gemm<T>(false, false, rows - st.have, n, k, st.init + st.have * k, k, b, ldb, beta, c + st.have * ldc, ldc);
}

// c = state @ b + bias (one per column): float32 adds the bias in the GEMM's store, float64 copies
// it into c first.
template <class T>
void state_product_bias(const PrevState<T>& st, int64_t rows, int64_t k, const T* b, int64_t ldb, int64_t n,
                        const T* bias, T* c, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    auto part = [&](int64_t m, const float* a, float* cp) {
      if (m > 0) kernels::gemm().f32.gemm_bias_act(false, false, m, n, k, 1.0f, a, k, b, ldb, 0.0f, cp, ldc, bias, 0);
    };
    part(st.have, st.prev, c);
    part(rows - st.have, st.init + st.have * k, c + st.have * ldc);
  } else {
    for (int64_t r = 0; r < rows; ++r) std::memcpy(c + r * ldc, bias, sizeof(T) * n);
    state_product(st, rows, k, b, ldb, n, T(1), c, ldc);
  }
}

struct Saved {
  // Blocked gate activations (N, G); LSTM c and tanh(c) (N, H) and o*tanh(c) before the projection (N, H);
  // GRU W_hh h + b_hh (N, G, blocked).
  Tensor gates, cells, tanh_cells, hcell, gh;
};

// The weights in the layouts the steps read (blocked gate rows, per-block W_hh, W_hr^T, biases).
template <class T>
struct StepWeights {
  const T* wih;      // (G, I), gate rows blocked
  const T* wstep;    // per block of units, its (P x ng*w) slice of W_hh^T
  const T* whr_t;    // (H, P); null without a projection
  const T* bias;     // (G) blocked, joins the input projection
  const T* bias_hh;  // (G) blocked, GRU's b_hh
};

// Buffers of one call: gates (N, G); hcell ((training ? N : B), H) with a projection; gh
// ((training ? N : B), G) for GRU; cells and tanh_cells (N, H) when training an LSTM.
template <class T>
struct StepBuffers {
  T* gates = nullptr;
  T* hcell = nullptr;
  T* gh = nullptr;
  T* cells = nullptr;
  T* tanh_cells = nullptr;
};

// The team of one thread: every block in order, no counters, nothing allocated.
struct SerialTeam {
  template <class F>
  void run(const F& body) { body(); }
  template <class F>
  void share(int64_t& phase, int64_t count, const F& fn) {
    ++phase;
    for (int64_t b = 0; b < count; ++b) fn(b);
  }
};

// body(team) on a team of `threads` (the serial one for a single thread).
template <class F>
void with_team(int threads, int64_t phases, const F& body) {
  if (threads <= 1) {
    SerialTeam team;
    body(team);
    return;
  }
  StepTeam team(threads, phases);
  body(team);
}

// One layer-direction over all steps: x (rows at d.off / d.bs), h0 (B, P) (never null), c0 (B, H)
// or null (LSTM: zeros); writes the steps' rows of y, and the final states.
template <class T>
void run_layer(const Dims& d, const T* x, const T* h0, const T* c0, const StepWeights<T>& w, bool training, T* y,
               T* hstate, T* cstate, const StepBuffers<T>& buf) {
  const auto& k = kernels::rnn_ops<T>();
  const int64_t N = d.N, G = d.G, H = d.H, P = d.P, B = d.B, ng = d.ng;
  const bool gru = d.mode == RnnMode::Gru, lstm = d.mode == RnnMode::Lstm, relu = d.mode == RnnMode::Relu;
  // Input projection of every step, biases included.
  T* g = buf.gates;
  if constexpr (std::is_same_v<T, float>) {  // the bias added in the GEMM's store
    kernels::gemm().f32.gemm_bias_act(false, true, N, G, d.I, 1.0f, x, d.I, w.wih, d.I, 0.0f, g, G, w.bias, 0);
  } else {
    for (int64_t r = 0; r < N; ++r) std::memcpy(g + r * G, w.bias, sizeof(T) * G);
    gemm<T>(false, true, N, G, d.I, x, d.I, w.wih, d.I, T(1), g, G);
  }
  const T* ws = w.wstep;
  if (lstm) {  // the cell state: in place, or in training the initial one beside buf.cells
    if (c0) std::memcpy(cstate, c0, sizeof(T) * B * H);
    else std::memset(cstate, 0, sizeof(T) * B * H);
  }
  with_team(team_size(d), d.T * (d.proj ? 2 : 1), [&](auto& team) {
    team.run([&] {
      int64_t phase = 0;
      for (int64_t s = 0; s < d.T; ++s) {
        const int64_t t = d.step(s), rows = d.bs[t], o = d.off[t];
        const PrevState<T> st = prev_state(d, s, y, h0, P);
        T* gt = g + o * G;
        team.share(phase, d.hb.count, [&](int64_t b) {
          const int64_t j0 = d.hb.begin(b), bw = d.hb.size(b), c0b = j0 * ng, n = bw * ng;
          const T* wb = ws + c0b * P;
          if (gru) {
            T* gh = buf.gh + (training ? o * G : 0);
            state_product_bias(st, rows, P, wb, n, n, w.bias_hh + c0b, gh + c0b, G);
            k.gru_forward(gt + c0b, gh + c0b, G, st.prev + j0, y + o * P + j0, P, st.have, bw);
            k.gru_forward(gt + st.have * G + c0b, gh + st.have * G + c0b, G, st.init + st.have * P + j0,
                          y + (o + st.have) * P + j0, P, rows - st.have, bw);
          } else {
            state_product(st, rows, P, wb, n, n, T(1), gt + c0b, G);
            if (lstm) {
              T* hc = (d.proj ? buf.hcell + (training ? o : 0) * H : y + o * P) + j0;
              const int64_t ldh = d.proj ? H : P;
              if (training) {  // c_prev read from the kept cell states (two parts, see PrevState)
                const PrevState<T> cp = prev_state(d, s, static_cast<const T*>(buf.cells), cstate, H);
                T* cells = buf.cells + o * H + j0;
                T* tc = buf.tanh_cells + o * H + j0;
                k.lstm_forward(gt + c0b, G, cp.prev + j0, cells, tc, H, hc, ldh, cp.have, bw);
                k.lstm_forward(gt + cp.have * G + c0b, G, cp.init + cp.have * H + j0, cells + cp.have * H,
                               tc + cp.have * H, H, hc + cp.have * ldh, ldh, rows - cp.have, bw);
              } else {
                k.lstm_forward(gt + c0b, G, cstate + j0, cstate + j0, nullptr, H, hc, ldh, rows, bw);
              }
            } else {
              k.rnn_forward(gt + c0b, G, y + o * P + j0, P, rows, bw, relu);
            }
          }
        });
        if (!d.proj) continue;
        // Projection: every output unit reads all of o*tanh(c), so it is a phase of its own.
        const T* hc = buf.hcell + (training ? o * H : 0);
        team.share(phase, d.pb.count, [&](int64_t b) {
          const int64_t p0 = d.pb.begin(b), bw = d.pb.size(b);
          gemm<T>(false, false, rows, bw, H, hc, H, w.whr_t + p0, P, T(0), y + o * P + p0, P);
        });
      }
    });
  });
  // Final states: each row's from the last step that has it.
  for (int64_t s = d.T - 1, done = 0; s >= 0 && done < B; --s) {
    const int64_t t = d.step(s), rows = d.bs[t];
    if (rows <= done) continue;
    std::memcpy(hstate + done * P, y + (d.off[t] + done) * P, sizeof(T) * (rows - done) * P);
    if (lstm && training)
      std::memcpy(cstate + done * H, buf.cells + (d.off[t] + done) * H, sizeof(T) * (rows - done) * H);
    done = rows;
  }
}

template <class T>
void forward(const Dims& d, const T* x, const T* h0, const T* c0, const T* wih, const T* whh, const T* bih,
             const T* bhh, const T* whr, bool training, T* y, T* hstate, T* cstate, Saved& sv) {
  const DType dt = dtype_of<T>();
  const int64_t N = d.N, G = d.G, H = d.H, P = d.P, B = d.B;
  std::vector<T> bias(G), bias_hh(G);
  write_biases(d, bih, bhh, bias.data(), bias_hh.data());
  const Tensor wih_b = blocked_rows(d, wih, d.I);
  Tensor wstep = Tensor::empty({G * P}, dt), whr_t;
  write_step_weight(d, whh, wstep.data<T>());
  if (d.proj) {
    whr_t = Tensor::empty({H, P}, dt);
    write_projection(d, whr, whr_t.data<T>());
  }
  Tensor zero_h;
  if (!h0) {
    zero_h = zeros({B, P}, dt);
    h0 = zero_h.data<T>();
  }
  Tensor gates = Tensor::empty({N, G}, dt);
  if (training && d.mode == RnnMode::Lstm) {
    sv.cells = Tensor::empty({N, H}, dt);
    sv.tanh_cells = Tensor::empty({N, H}, dt);
  }
  if (d.proj) sv.hcell = Tensor::empty({training ? N : B, H}, dt);
  if (d.mode == RnnMode::Gru) sv.gh = Tensor::empty({training ? N : B, G}, dt);
  const StepWeights<T> w{wih_b.data<T>(), wstep.data<T>(), d.proj ? whr_t.data<T>() : nullptr, bias.data(),
                         bias_hh.data()};
  StepBuffers<T> buf;
  buf.gates = gates.data<T>();
  buf.hcell = sv.hcell.defined() ? sv.hcell.data<T>() : nullptr;
  buf.gh = sv.gh.defined() ? sv.gh.data<T>() : nullptr;
  buf.cells = sv.cells.defined() ? sv.cells.data<T>() : nullptr;
  buf.tanh_cells = sv.tanh_cells.defined() ? sv.tanh_cells.data<T>() : nullptr;
  run_layer(d, x, h0, c0, w, training, y, hstate, cstate, buf);
  if (training) sv.gates = gates;
  else sv = Saved();
}

// State rows of step t's predecessor as one (rows x width) block, row stride ldo (see PrevState).
template <class T>
void prev_rows(const Dims& d, int64_t s, const T* seq, const T* init, int64_t width, T* out, int64_t ldo) {
  const PrevState<T> st = prev_state(d, s, seq, init, width);
  const int64_t rows = d.bs[d.step(s)];
  for (int64_t r = 0; r < rows; ++r) std::memcpy(out + r * ldo, st.row(r, width), sizeof(T) * width);
}

// The gradient of the stacked weights [W_ih | W_hh] in the blocked gate layout, (G, I + P), split
// into PyTorch's layouts.
template <class T>
void unblocked_split(const Dims& d, const T* dw, T* dw_ih, T* dw_hh) {
  const int64_t w = d.I + d.P;
  for (int64_t q = 0; q < d.ng; ++q)
    for (int64_t j = 0; j < d.H; ++j) {
      const int64_t a = q * d.H + j, b = d.gate_column(q, j);
      std::memcpy(dw_ih + a * d.I, dw + b * w, sizeof(T) * d.I);
      std::memcpy(dw_hh + a * d.P, dw + b * w + d.I, sizeof(T) * d.P);
    }
}

struct Grads {
  Tensor x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr;
};

template <class T>
Grads backward(const Dims& d, const T* x, const T* h0, const T* c0, const T* wih, const T* whh, const T* whr,
               const T* y, const Saved& sv, const T* gy, const T* ghn, const T* gcn, const std::vector<bool>& needs) {
  const auto& k = kernels::rnn_ops<T>();
  const DType dt = dtype_of<T>();
  const int64_t N = d.N, G = d.G, H = d.H, P = d.P, B = d.B, ng = d.ng;
  const bool gru = d.mode == RnnMode::Gru, lstm = d.mode == RnnMode::Lstm, relu = d.mode == RnnMode::Relu;
  Tensor zeros_h0, zeros_c0;
  if (!h0) {
    zeros_h0 = zeros({B, P}, dt);
    h0 = zeros_h0.data<T>();
  }
  if (lstm && !c0) {
    zeros_c0 = zeros({B, H}, dt);
    c0 = zeros_c0.data<T>();
  }
  // The right operand of the weight gradients: the previous states of every step, in the step's
  // row order, and, where W_ih and W_hh share the pre-activation gradients (all but GRU), the input
  // beside them, so that one GEMM over all steps gives both: xh = [x | h_prev] (N, I + P).
  const bool stacked = !gru && needs[3] && needs[4];
  const int64_t xw = stacked ? d.I + P : P;
  Tensor xh = Tensor::empty({N, xw}, dt);
  T* hprev = xh.data<T>() + (stacked ? d.I : 0);  // row stride xw
  for (int64_t s = 0; s < d.T; ++s) prev_rows(d, s, y, h0, P, hprev + d.off[d.step(s)] * xw, xw);
  if (stacked)
    for (int64_t r = 0; r < N; ++r) std::memcpy(xh.data<T>() + r * xw, x + r * d.I, sizeof(T) * d.I);
  // Bias gradients: column sums of the pre-activation gradients, added up block by block as the
  // steps produce them (b_hh's are b_ih's but for GRU).
  const bool bias_grad = needs[5] || needs[6];
  Tensor db = bias_grad ? zeros({G}, dt) : Tensor(), dbh = bias_grad && gru ? zeros({G}, dt) : db;
  Grads r;
  r.h0 = ghn ? Tensor::empty({B, P}, dt) : zeros({B, P}, dt);
  T* dh = r.h0.data<T>();
  if (ghn) std::memcpy(dh, ghn, sizeof(T) * B * P);
  T* dc = nullptr;
  if (lstm) {
    r.c0 = gcn ? Tensor::empty({B, H}, dt) : zeros({B, H}, dt);
    dc = r.c0.data<T>();
    if (gcn) std::memcpy(dc, gcn, sizeof(T) * B * H);
  }
  const Tensor wih_b = needs[0] ? blocked_rows(d, wih, d.I) : Tensor(), whh_b = blocked_rows(d, whh, P);
  Tensor dgx = Tensor::empty({N, G}, dt), dgh = gru ? Tensor::empty({N, G}, dt) : dgx;
  Tensor dht, dhc;  // projection: the total gradient of each step's output, and of o*tanh(c)
  if (d.proj) {
    dht = Tensor::empty({N, P}, dt);
    dhc = Tensor::empty({B, H}, dt);
  }
  // Backwards through the steps: with a projection, the output gradients (a phase: the gradient of
  // o*tanh(c) reads all output units), then the gate gradients per block of hidden units, then
  // dh_prev = dgates @ W_hh per block of output units, which reads the gates of all blocks. Without
  // one the output units are the hidden units, in the same blocks, and block b's gate gradients
  // read only block b's columns of dh: block b's dh_prev of step s + 1 and its gate gradients of
  // step s share a phase, one barrier per step.
  StepTeam team(team_size(d), d.proj ? 3 * d.T : d.T + 1);
  team.run([&] {
    int64_t phase = 0;
    auto state_grad = [&](int64_t s, int64_t b) {  // dh_prev of step s, output block b
      const int64_t t = d.step(s), p0 = d.pb.begin(b), w = d.pb.size(b);
      gemm<T>(false, false, d.bs[t], w, G, dgh.data<T>() + d.off[t] * G, G, whh_b.data<T>() + p0, P,
              gru ? T(1) : T(0), dh + p0, P);
    };
    for (int64_t s = d.T - 1; s >= 0; --s) {
      const int64_t t = d.step(s), rows = d.bs[t], o = d.off[t];
      T* dgxt = dgx.data<T>() + o * G;
      T* dght = dgh.data<T>() + o * G;
      const T* gt = sv.gates.data<T>() + o * G;
      // The output gradient joins the one from the step after.
      auto add_output_grad = [&](int64_t p0, int64_t w) {
        if (gy) k.add_block(gy + o * P + p0, P, dh + p0, P, rows, w);
        if (d.proj)
          for (int64_t r = 0; r < rows; ++r)
            std::memcpy(dht.data<T>() + (o + r) * P + p0, dh + r * P + p0, sizeof(T) * w);
      };
      auto gate_grads = [&](int64_t b) {
        const int64_t j0 = d.hb.begin(b), w = d.hb.size(b), c0b = j0 * ng;
        // The gate kernels add the output gradient (with a projection it is in dhh already) and sum
        // the bias gradients in their own pass.
        const T* dy = gy && !d.proj ? gy + o * P + j0 : nullptr;
        T* dbb = bias_grad ? db.data<T>() + c0b : nullptr;
        const T* dhh = dh;  // gradient of this block's hidden output, row stride ldh
        int64_t ldh = P;
        if (d.proj) {
          gemm<T>(false, false, rows, w, P, dh, P, whr + j0, H, T(0), dhc.data<T>() + j0, H);
          dhh = dhc.data<T>();
          ldh = H;
        }
        if (lstm) {  // c_prev read in place, its two parts as PrevState splits them
          const T* tc = sv.tanh_cells.data<T>() + o * H + j0;
          const PrevState<T> cp = prev_state(d, s, sv.cells.data<T>(), c0, H);
          k.lstm_backward(gt + c0b, dgxt + c0b, G, tc, cp.prev + j0, dc + j0, H, dhh + j0, dy, ldh, dbb, cp.have, w);
          k.lstm_backward(gt + cp.have * G + c0b, dgxt + cp.have * G + c0b, G, tc + cp.have * H,
                          cp.init + cp.have * H + j0, dc + cp.have * H + j0, H, dhh + cp.have * ldh + j0,
                          dy ? dy + cp.have * ldh : nullptr, ldh, dbb, rows - cp.have, w);
        } else if (gru) {
          k.gru_backward(gt + c0b, sv.gh.data<T>() + o * G + c0b, dgxt + c0b, dght + c0b, G, hprev + o * P + j0,
                         dh + j0, dy, dh + j0, P, dbb, bias_grad ? dbh.data<T>() + c0b : nullptr, rows,
                         w);  // GRU: xh is h_prev alone, row stride P
        } else {
          k.rnn_backward(y + o * P + j0, dh + j0, dy, P, dgxt + c0b, G, dbb, rows, w, relu);
        }
      };
      if (d.proj) {
        team.share(phase, d.pb.count, [&](int64_t b) { add_output_grad(d.pb.begin(b), d.pb.size(b)); });
        team.share(phase, d.hb.count, gate_grads);
        team.share(phase, d.pb.count, [&](int64_t b) { state_grad(s, b); });
      } else {
        team.share(phase, d.hb.count, [&](int64_t b) {
          if (s < d.T - 1) state_grad(s + 1, b);
          gate_grads(b);
        });
      }
    }
    if (!d.proj) team.share(phase, d.pb.count, [&](int64_t b) { state_grad(0, b); });
  });
  const T* dgxp = dgx.data<T>();
  const T* dghp = dgh.data<T>();
  if (needs[0]) {
    r.x = Tensor::empty({N, d.I}, dt);
    gemm<T>(false, false, N, d.I, G, dgxp, G, wih_b.data<T>(), d.I, T(0), r.x.data<T>(), d.I);
  }
  if (stacked) {
    Tensor dw = Tensor::empty({G, xw}, dt);
    gemm<T>(true, false, G, xw, N, dgxp, G, xh.data<T>(), xw, T(0), dw.data<T>(), xw);
    r.w_ih = Tensor::empty({G, d.I}, dt);
    r.w_hh = Tensor::empty({G, P}, dt);
    unblocked_split(d, dw.data<T>(), r.w_ih.data<T>(), r.w_hh.data<T>());
  } else {
    if (needs[3]) {
      Tensor dw = Tensor::empty({G, d.I}, dt);
      gemm<T>(true, false, G, d.I, N, dgxp, G, x, d.I, T(0), dw.data<T>(), d.I);
      r.w_ih = unblocked_rows<T>(d, dw, d.I, {G, d.I});
    }
    if (needs[4]) {
      Tensor dw = Tensor::empty({G, P}, dt);
      gemm<T>(true, false, G, P, N, dghp, G, hprev, xw, T(0), dw.data<T>(), P);
      r.w_hh = unblocked_rows<T>(d, dw, P, {G, P});
    }
  }
  if (needs[5]) r.b_ih = unblocked_rows<T>(d, db, 1, {G});
  if (needs[6]) r.b_hh = unblocked_rows<T>(d, dbh, 1, {G});
  if (needs[7] && d.proj) {
    r.w_hr = Tensor::empty({P, H}, dt);
    gemm<T>(true, false, P, H, N, dht.data<T>(), P, sv.hcell.data<T>(), H, T(0), r.w_hr.data<T>(), H);
  }
  return r;
}

// The layer again from differentiable ops, one step at a time: what create_graph backward
// differentiates, so that the gradient gets a graph of its own (double backward). Returns
// {output, h_n, c_n (LSTM)}, as the fused forward does.
TensorList composite_layer(const Dims& d, const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                           const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh, const Tensor& w_hr) {
  const bool gru = d.mode == RnnMode::Gru, lstm = d.mode == RnnMode::Lstm;
  const Tensor gx = linear(x, w_ih, b_ih);
  Tensor h = h0.defined() ? h0 : zeros({d.B, d.P}, x.dtype());
  Tensor c = lstm ? (c0.defined() ? c0 : zeros({d.B, d.H}, x.dtype())) : Tensor();
  TensorList ys(d.T);
  // Rows past this step's keep their state (sequences that ended, or in reverse have not begun).
  auto with_rest = [&](const Tensor& top, const Tensor& all) {
    const int64_t rows = top.shape()[0];
    return rows == d.B ? top : cat({top, narrow(all, 0, rows, d.B - rows)}, 0);
  };
  auto gate = [&](const Tensor& g, int64_t q) { return narrow(g, 1, q * d.H, d.H); };
  for (int64_t s = 0; s < d.T; ++s) {
    const int64_t t = d.step(s), rows = d.bs[t];
    const Tensor hp = narrow(h, 0, 0, rows), gxt = narrow(gx, 0, d.off[t], rows);
    const Tensor gh = linear(hp, w_hh, b_hh);
    Tensor hn;
    if (lstm) {
      const Tensor g = add(gxt, gh);
      const Tensor cn = add(mul(sigmoid(gate(g, 1)), narrow(c, 0, 0, rows)), mul(sigmoid(gate(g, 0)), tanh(gate(g, 2))));
      hn = mul(sigmoid(gate(g, 3)), tanh(cn));
      if (d.proj) hn = linear(hn, w_hr, Tensor());
      c = with_rest(cn, c);
    } else if (gru) {
      const Tensor r = sigmoid(add(gate(gxt, 0), gate(gh, 0))), z = sigmoid(add(gate(gxt, 1), gate(gh, 1)));
      const Tensor n = tanh(add(gate(gxt, 2), mul(r, gate(gh, 2))));
      hn = add(n, mul(z, sub(hp, n)));
    } else {
      const Tensor g = add(gxt, gh);
      hn = d.mode == RnnMode::Relu ? relu(g) : tanh(g);
    }
    ys[t] = hn;
    h = with_rest(hn, h);
  }
  TensorList out{cat(ys, 0), h};
  if (lstm) out.push_back(c);
  return out;
}

const char* mode_name(RnnMode m) {
  switch (m) {
    case RnnMode::Lstm: return "lstm";
    case RnnMode::Gru: return "gru";
    default: return "rnn";
  }
}

void check_shape(const Tensor& t, const Shape& want, const char* what, const std::string& name, DType dt) {
  if (!t.defined()) return;
  NC_CHECK(t.shape() == want, ValueError, "[", name, "] ", what, " has shape ", shape_str(t.shape()), ", expected ",
           shape_str(want));
  NC_CHECK(t.dtype() == dt, TypeError, "[", name, "] ", what, " is ", dtype_name(t.dtype()), " but the input is ",
           dtype_name(dt));
}

}  // namespace

TensorList rnn_layer(RnnMode mode, const Tensor& x, const std::vector<int64_t>& batch_sizes, bool reverse,
                     const Tensor& h0, const Tensor& c0, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                     const Tensor& b_hh, const Tensor& w_hr, const std::string& name_in) {
  const std::string name = name_in.empty() ? mode_name(mode) : name_in;
  NC_CHECK(is_floating(x.dtype()), TypeError, "[", name, "] input must be float32 or float64, got ",
           dtype_name(x.dtype()));
  NC_CHECK(x.dim() == 2, ValueError, "[", name, "] packed input must be 2-D (rows, features), got shape ",
           shape_str(x.shape()));
  NC_CHECK(w_ih.defined() && w_hh.defined() && w_ih.dim() == 2 && w_hh.dim() == 2, ValueError, "[", name,
           "] weight_ih and weight_hh must be 2-D");
  Dims d;
  d.mode = mode;
  d.reverse = reverse;
  d.N = x.shape()[0];
  d.I = x.shape()[1];
  const int64_t gates = mode == RnnMode::Lstm ? 4 : mode == RnnMode::Gru ? 3 : 1;
  d.G = w_ih.shape()[0];
  NC_CHECK(d.G % gates == 0 && d.G > 0, ValueError, "[", name, "] weight_ih has ", d.G, " rows, not a positive multiple of ",
           gates, " (weight_ih shape ", shape_str(w_ih.shape()), ")");
  d.H = d.G / gates;
  d.ng = gates;
  d.hb = Blocks(d.H);
  d.proj = w_hr.defined();
  NC_CHECK(!d.proj || mode == RnnMode::Lstm, ValueError, "[", name, "] only LSTM has a projection (weight_hr)");
  d.P = d.proj ? w_hr.shape()[0] : d.H;
  d.pb = Blocks(d.P);
  NC_CHECK(d.I == w_ih.shape()[1], ValueError, "[", name, "] input has ", d.I, " features, expected ", w_ih.shape()[1],
           " (input shape ", shape_str(x.shape()), ")");
  check_shape(w_ih, {d.G, d.I}, "weight_ih", name, x.dtype());
  check_shape(w_hh, {d.G, d.P}, "weight_hh", name, x.dtype());
  check_shape(b_ih, {d.G}, "bias_ih", name, x.dtype());
  check_shape(b_hh, {d.G}, "bias_hh", name, x.dtype());
  check_shape(w_hr, {d.P, d.H}, "weight_hr", name, x.dtype());
  d.T = static_cast<int64_t>(batch_sizes.size());
  NC_CHECK(d.T > 0, ValueError, "[", name, "] the sequence has no time steps");
  auto steps = std::make_shared<std::vector<int64_t>>(batch_sizes);
  steps->resize(static_cast<size_t>(2 * d.T));
  d.bs = steps->data();
  int64_t* off = steps->data() + d.T;
  d.off = off;
  d.steps = steps;
  int64_t total = 0;
  for (int64_t t = 0; t < d.T; ++t) {
    NC_CHECK(d.bs[t] > 0 && (t == 0 || d.bs[t] <= d.bs[t - 1]), ValueError, "[", name,
             "] batch_sizes must be positive and non-increasing, got ",
             shape_str(Shape(batch_sizes.begin(), batch_sizes.end())));
    off[t] = total;
    total += d.bs[t];
  }
  NC_CHECK(total == d.N, ValueError, "[", name, "] batch_sizes sum to ", total, " but the input has ", d.N,
           " rows (input shape ", shape_str(x.shape()), ")");
  d.B = d.bs[0];
  check_shape(h0, {d.B, d.P}, "h0", name, x.dtype());
  NC_CHECK(!c0.defined() || mode == RnnMode::Lstm, ValueError, "[", name, "] only LSTM has a cell state");
  check_shape(c0, {d.B, d.H}, "c0", name, x.dtype());

  const TensorList inputs{x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr};
  const bool training = needs_history(inputs);
  Tensor xc = contiguous(x), h0c = h0.defined() ? contiguous(h0) : h0, c0c = c0.defined() ? contiguous(c0) : c0;
  Tensor wih = contiguous(w_ih), whh = contiguous(w_hh), whr = d.proj ? contiguous(w_hr) : w_hr;
  Tensor bih = b_ih.defined() ? contiguous(b_ih) : b_ih, bhh = b_hh.defined() ? contiguous(b_hh) : b_hh;
  Tensor y = Tensor::empty({d.N, d.P}, x.dtype()), hn = Tensor::empty({d.B, d.P}, x.dtype());
  Tensor cn = mode == RnnMode::Lstm ? Tensor::empty({d.B, d.H}, x.dtype()) : Tensor();
  Saved sv;
  {
    NoGradGuard no_grad;
    dispatch_floating(x.dtype(), name.c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      forward<T>(d, xc.data<T>(), ptr<T>(h0c), ptr<T>(c0c), wih.data<T>(), whh.data<T>(), ptr<T>(bih), ptr<T>(bhh),
                 ptr<T>(whr), training, y.data<T>(), hn.data<T>(), cn.defined() ? cn.data<T>() : nullptr, sv);
    });
  }
  TensorList outputs{y, hn};
  if (cn.defined()) outputs.push_back(cn);
  if (training) {
    SavedTensor sx(x, false), sh0(h0c, false), sc0(c0c, false), swih(w_ih, false), swhh(w_hh, false),
        sbih(b_ih, false), sbhh(b_hh, false), swhr(w_hr, false), sy(y, true);
    set_history(name, inputs, outputs,
                [d, sx, sh0, sc0, swih, swhh, sbih, sbhh, swhr, sy, sv, name](const TensorList& g,
                                                                             const std::vector<bool>& needs) {
                  if (GradMode::is_enabled()) {
                    // create_graph: differentiate the layer rebuilt from differentiable ops.
                    const TensorList in{sx.unpack(name),   sh0.unpack(name),  sc0.unpack(name),
                                        swih.unpack(name), swhh.unpack(name), sbih.unpack(name),
                                        sbhh.unpack(name), swhr.unpack(name)};
                    const TensorList out = composite_layer(d, in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7]);
                    TensorList roots, seeds, wanted;
                    for (size_t i = 0; i < out.size() && i < g.size(); ++i)
                      if (g[i].defined()) {
                        roots.push_back(out[i]);
                        seeds.push_back(g[i]);
                      }
                    for (size_t i = 0; i < in.size(); ++i)
                      if (needs[i] && in[i].defined()) wanted.push_back(in[i]);
                    const TensorList got = grad(roots, wanted, seeds, true, true, true);
                    TensorList result(in.size());
                    for (size_t i = 0, j = 0; i < in.size(); ++i)
                      if (needs[i] && in[i].defined()) result[i] = got[j++];
                    return result;
                  }
                  Tensor x = contiguous(sx.unpack(name)), h0 = sh0.unpack(name), c0 = sc0.unpack(name);
                  Tensor wih = contiguous(swih.unpack(name)), whh = contiguous(swhh.unpack(name));
                  Tensor whr = swhr.unpack(name), y = sy.unpack(name);
                  if (whr.defined()) whr = contiguous(whr);
                  Tensor gy = g[0].defined() ? contiguous(g[0]) : g[0];
                  Tensor ghn = g[1].defined() ? contiguous(g[1]) : g[1];
                  Tensor gcn = g.size() > 2 && g[2].defined() ? contiguous(g[2]) : Tensor();
                  Grads r;
                  dispatch_floating(x.dtype(), name.c_str(), [&](auto tag) {
                    using T = typename decltype(tag)::type;
                    r = backward<T>(d, x.data<T>(), ptr<T>(h0), ptr<T>(c0), wih.data<T>(), whh.data<T>(), ptr<T>(whr),
                                    y.data<T>(), sv, ptr<T>(gy), ptr<T>(ghn), ptr<T>(gcn), needs);
                  });
                  return TensorList{r.x, needs[1] ? r.h0 : Tensor(), needs[2] ? r.c0 : Tensor(), r.w_ih, r.w_hh,
                                    r.b_ih, r.b_hh, r.w_hr};
                });
  }
  return outputs;
}

namespace {

Dims layer_dims(RnnMode mode, int64_t I, int64_t H, int64_t P, bool proj) {
  Dims d;
  d.mode = mode;
  d.reverse = false;
  d.ng = mode == RnnMode::Lstm ? 4 : mode == RnnMode::Gru ? 3 : 1;
  d.I = I;
  d.H = H;
  d.P = P;
  d.G = d.ng * H;
  d.proj = proj;
  d.hb = Blocks(H);
  d.pb = Blocks(P);
  d.N = d.B = d.T = 0;
  return d;
}

int64_t padded(int64_t n) { return (n + 15) / 16 * 16; }

}  // namespace

RnnWeights rnn_prepare(RnnMode mode, int64_t I, int64_t H, int64_t P, const float* w_ih, const float* w_hh,
                       const float* b_ih, const float* b_hh, const float* w_hr) {
  const Dims d = layer_dims(mode, I, H, P, w_hr != nullptr);
  RnnWeights w;
  w.mode = mode;
  w.I = I;
  w.H = H;
  w.P = P;
  w.proj = d.proj;
  w.w_ih.resize(static_cast<size_t>(d.G * I));
  permute_gate_rows(d, w_ih, I, w.w_ih.data(), true);
  w.w_step.resize(static_cast<size_t>(d.G * P));
  write_step_weight(d, w_hh, w.w_step.data());
  if (d.proj) {
    w.w_hr_t.resize(static_cast<size_t>(H * P));
    write_projection(d, w_hr, w.w_hr_t.data());
  }
  w.bias.resize(static_cast<size_t>(d.G));
  w.bias_hh.resize(static_cast<size_t>(d.G));
  write_biases(d, b_ih, b_hh, w.bias.data(), w.bias_hh.data());
  return w;
}

int64_t rnn_infer_scratch(const RnnWeights& w, int64_t N, int64_t B) {
  const int64_t G = static_cast<int64_t>(w.bias.size());
  return padded(N * G) + padded(B * w.P) + (w.proj ? padded(B * w.H) : 0) + (w.mode == RnnMode::Gru ? padded(B * G) : 0);
}

void rnn_infer(const RnnWeights& w, bool reverse, int64_t T, const int64_t* batch_sizes, const int64_t* offsets,
               int64_t N, const float* x, const float* h0, const float* c0, float* y, float* h_n, float* c_n,
               float* scratch) {
  Dims d = layer_dims(w.mode, w.I, w.H, w.P, w.proj);
  d.reverse = reverse;
  d.N = N;
  d.T = T;
  d.B = T > 0 ? batch_sizes[0] : 0;
  d.bs = batch_sizes;
  d.off = offsets;
  if (T <= 0 || d.B <= 0) return;
  StepBuffers<float> buf;
  float* at = scratch;
  buf.gates = at;
  at += padded(N * d.G);
  float* zero_h = at;
  at += padded(d.B * d.P);
  if (d.proj) {
    buf.hcell = at;
    at += padded(d.B * d.H);
  }
  if (d.mode == RnnMode::Gru) buf.gh = at;
  if (!h0) {
    std::memset(zero_h, 0, sizeof(float) * d.B * d.P);
    h0 = zero_h;
  }
  const StepWeights<float> sw{w.w_ih.data(), w.w_step.data(), w.proj ? w.w_hr_t.data() : nullptr, w.bias.data(),
                              w.bias_hh.data()};
  run_layer(d, x, h0, c0, sw, false, y, h_n, c_n, buf);
}

}  // namespace nc
