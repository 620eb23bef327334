#include "ops/rnn.h"

#include <cstring>
#include <type_traits>

#include "core/autograd.h"
#include "core/parallel.h"
#include "kernels/gemm.h"
#include "kernels/rnn.h"
#include "ops/copy.h"
#include "ops/creation.h"

namespace nc {

namespace {

// Sizes of one layer-direction call.
struct Dims {
  RnnMode mode;
  int64_t N, I, B, T, H, P, G;  // rows, input, batch, steps, hidden, output (proj or H), gate width
  bool reverse, proj;
  std::vector<int64_t> bs, off;  // rows and first row of each step
  // Step processed s-th (time order, or reversed).
  int64_t step(int64_t s) const { return reverse ? T - 1 - s : s; }
};

// c (m x n, row stride ldc) = op(a) op(b) + beta c.
template <class T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
          T beta, T* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if constexpr (std::is_same_v<T, float>)
    kernels::gemm().sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
  else
    kernels::gemm().dgemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

// dst (cols x rows) = src (rows x cols)^T.
template <class T>
void transpose_into(const T* src, int64_t rows, int64_t cols, T* dst) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
}

// A weight W (n x k, row-major) as the right operand W^T of the per-step products. Below 8 rows
// (GEMM's dot-product path) W is read in place, contiguous along k; otherwise W^T is formed once
// per call so every step reads it row-major (the unpacked small-matrix path).
template <class T>
struct StepWeight {
  Tensor keep;        // W^T (k x n) when formed
  const T* w = nullptr;
  bool transposed = false;  // w is W^T (row stride n), else W (row stride k)
};

template <class T>
StepWeight<T> step_weight(const T* w, int64_t n, int64_t k, int64_t max_rows) {
  StepWeight<T> s;
  if (max_rows < 8) {
    s.w = w;
    return s;
  }
  Tensor wt = Tensor::empty({k, n}, dtype_of<T>());
  T* p = static_cast<T*>(wt.raw_data());
  transpose_into(w, n, k, p);
  s.keep = wt;
  s.w = p;
  s.transposed = true;
  return s;
}

// c (rows x n) = a (rows x k) @ W^T + beta * c (beta 0 or 1). Few rows and little work (batch-1
// inference): plain dot products on this thread, since a thread team per step costs more than
// the step and stalls whenever a core is busy elsewhere.
template <class T>
void step_product(int64_t rows, int64_t n, int64_t k, const T* a, const StepWeight<T>& w, T beta, T* c) {
  if (!w.transposed && rows * n * k <= (int64_t(1) << 18)) {
    if (beta == T(0)) std::memset(c, 0, sizeof(T) * rows * n);
    kernels::rnn_ops<T>().step_dots(a, rows, k, w.w, n, c);
  } else if (w.transposed) {
    gemm<T>(false, false, rows, n, k, a, k, w.w, n, beta, c, n);
  } else {
    gemm<T>(false, true, rows, n, k, a, k, w.w, k, beta, c, n);
  }
}

// Runs fn(r0, r1) over row blocks of `rows` rows of `width` elements (elementwise work only, so
// the split never changes a result).
template <class F>
void for_rows(int64_t rows, int64_t width, const F& fn) {
  parallel_for(0, rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(width, 1)), fn);
}

template <class T>
const T* ptr(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// State rows of step t's predecessor (in processing order) as one (rows x width) block: rows
// the previous step also ran come from `seq` (per-step states), the others (reverse direction of
// a packed batch: sequences starting at this step) from `init`.
template <class T>
void prev_rows(const Dims& d, int64_t s, const T* seq, const T* init, int64_t width, T* out) {
  const int64_t t = d.step(s), rows = d.bs[t];
  int64_t have = 0;
  if (s > 0) {
    const int64_t pt = d.step(s - 1);
    have = std::min(rows, d.bs[pt]);
    std::memcpy(out, seq + d.off[pt] * width, sizeof(T) * have * width);
  }
  std::memcpy(out + have * width, init + have * width, sizeof(T) * (rows - have) * width);
}

struct Saved {
  Tensor gates, cells, hcell, gh;  // activations (N, G); LSTM c (N, H), o*tanh(c) before projection; GRU W_hh h + b_hh
};

template <class T>
void forward(const Dims& d, const T* x, const T* h0, const T* c0, const T* wih, const T* whh, const T* bih,
             const T* bhh, const T* whr, bool training, T* y, T* hstate, T* cstate, Saved& sv) {
  const auto& k = kernels::rnn_ops<T>();
  const DType dt = dtype_of<T>();
  const int64_t N = d.N, G = d.G, H = d.H, P = d.P, B = d.B;
  const bool gru = d.mode == RnnMode::Gru, lstm = d.mode == RnnMode::Lstm;
  // Input projection of every step, biases included (b_hh too, except GRU's, which sits inside r * (...)).
  Tensor gates = Tensor::empty({N, G}, dt);
  T* g = gates.data<T>();
  for (int64_t j = 0; j < G; ++j) g[j] = (bih ? bih[j] : T(0)) + (bhh && !gru ? bhh[j] : T(0));
  for (int64_t r = 1; r < N; ++r) std::memcpy(g + r * G, g, sizeof(T) * G);
  gemm<T>(false, true, N, G, d.I, x, d.I, wih, d.I, T(1), g, G);
  const StepWeight<T> rec = step_weight(whh, G, P, B), out_proj = d.proj ? step_weight(whr, P, H, B) : StepWeight<T>();
  if (h0) std::memcpy(hstate, h0, sizeof(T) * B * P);
  else std::memset(hstate, 0, sizeof(T) * B * P);
  if (lstm) {
    if (c0) std::memcpy(cstate, c0, sizeof(T) * B * H);
    else std::memset(cstate, 0, sizeof(T) * B * H);
  }
  if (training && lstm) sv.cells = Tensor::empty({N, H}, dt);
  if (d.proj) sv.hcell = Tensor::empty({training ? N : B, H}, dt);
  if (gru) sv.gh = Tensor::empty({training ? N : B, G}, dt);
  for (int64_t s = 0; s < d.T; ++s) {
    const int64_t t = d.step(s), rows = d.bs[t], o = d.off[t];
    T* gt = g + o * G;
    T* yt = y + o * P;
    if (gru) {
      T* gh = sv.gh.data<T>() + (training ? o * G : 0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < G; ++j) gh[r * G + j] = bhh ? bhh[j] : T(0);
      step_product(rows, G, P, hstate, rec, T(1), gh);
      for_rows(rows, G, [&](int64_t a, int64_t b) {
        k.gru_forward(gt + a * G, gh + a * G, hstate + a * P, yt + a * P, b - a, H);
      });
    } else {
      step_product(rows, G, P, hstate, rec, T(1), gt);
      if (lstm) {
        T* hc = d.proj ? sv.hcell.data<T>() + (training ? o * H : 0) : yt;
        for_rows(rows, G, [&](int64_t a, int64_t b) {
          k.lstm_forward(gt + a * G, cstate + a * H, hc + a * H, b - a, H);
        });
        if (training) std::memcpy(sv.cells.data<T>() + o * H, cstate, sizeof(T) * rows * H);
        if (d.proj) step_product(rows, P, H, hc, out_proj, T(0), yt);
      } else {
        for_rows(rows, G, [&](int64_t a, int64_t b) {
          k.rnn_forward(gt + a * G, b - a, H, d.mode == RnnMode::Relu);
        });
        std::memcpy(yt, gt, sizeof(T) * rows * H);
      }
    }
    std::memcpy(hstate, yt, sizeof(T) * rows * P);
  }
  if (training) sv.gates = gates;
  else sv = Saved();
}

// Column sums of a (rows x cols) in row order: the same on any thread count.
template <class T>
void column_sums(const T* a, int64_t rows, int64_t cols, T* out) {
  parallel_for(0, cols, 64, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) out[c] = T(0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = c0; c < c1; ++c) out[c] += a[r * cols + c];
  });
}

struct Grads {
  Tensor x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr;
};

template <class T>
Grads backward(const Dims& d, const T* x, const T* h0, const T* c0, const T* wih, const T* whh, const T* whr,
               const T* y, const Saved& sv, const T* gy, const T* ghn, const T* gcn, const std::vector<bool>& needs) {
  const auto& k = kernels::rnn_ops<T>();
  const DType dt = dtype_of<T>();
  const int64_t N = d.N, G = d.G, H = d.H, P = d.P, B = d.B;
  const bool gru = d.mode == RnnMode::Gru, lstm = d.mode == RnnMode::Lstm;
  Tensor zeros_h0, zeros_c0;
  if (!h0) {
    zeros_h0 = zeros({B, P}, dt);
    h0 = zeros_h0.data<T>();
  }
  if (lstm && !c0) {
    zeros_c0 = zeros({B, H}, dt);
    c0 = zeros_c0.data<T>();
  }
  // Previous states of every step, in the step's row order: the right operand of dW_hh.
  Tensor hprev = Tensor::empty({N, P}, dt), cprev;
  for (int64_t s = 0; s < d.T; ++s) prev_rows(d, s, y, h0, P, hprev.data<T>() + d.off[d.step(s)] * P);
  if (lstm) {
    cprev = Tensor::empty({N, H}, dt);
    for (int64_t s = 0; s < d.T; ++s)
      prev_rows(d, s, sv.cells.data<T>(), c0, H, cprev.data<T>() + d.off[d.step(s)] * H);
  }
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
  Tensor dgx = Tensor::empty({N, G}, dt), dgh = gru ? Tensor::empty({N, G}, dt) : dgx;
  Tensor dht, dhc;  // projection: the total gradient of each step's output, and of o*tanh(c)
  if (d.proj) {
    dht = Tensor::empty({N, P}, dt);
    dhc = Tensor::empty({B, H}, dt);
  }
  for (int64_t s = d.T - 1; s >= 0; --s) {
    const int64_t t = d.step(s), rows = d.bs[t], o = d.off[t];
    if (gy)
      for (int64_t i = 0; i < rows * P; ++i) dh[i] += gy[o * P + i];
    T* dgxt = dgx.data<T>() + o * G;
    T* dght = dgh.data<T>() + o * G;
    const T* gt = sv.gates.data<T>() + o * G;
    if (lstm) {
      const T* dhct = dh;
      if (d.proj) {
        std::memcpy(dht.data<T>() + o * P, dh, sizeof(T) * rows * P);
        gemm<T>(false, false, rows, H, P, dh, P, whr, H, T(0), dhc.data<T>(), H);
        dhct = dhc.data<T>();
      }
      const T* ct = sv.cells.data<T>() + o * H;
      const T* cpt = cprev.data<T>() + o * H;
      for_rows(rows, G, [&](int64_t a, int64_t b) {
        k.lstm_backward(gt + a * G, ct + a * H, cpt + a * H, dhct + a * H, dc + a * H, dgxt + a * G, b - a, H);
      });
    } else if (gru) {
      const T* ght = sv.gh.data<T>() + o * G;
      const T* hpt = hprev.data<T>() + o * P;
      for_rows(rows, G, [&](int64_t a, int64_t b) {
        k.gru_backward(gt + a * G, ght + a * G, hpt + a * P, dh + a * P, dgxt + a * G, dght + a * G, dh + a * P, b - a, H);
      });
    } else {
      k.rnn_backward(y + o * P, dh, dgxt, rows, H, d.mode == RnnMode::Relu);
    }
    gemm<T>(false, false, rows, P, G, dght, G, whh, P, gru ? T(1) : T(0), dh, P);
  }
  const T* dgxp = dgx.data<T>();
  const T* dghp = dgh.data<T>();
  if (needs[0]) {
    r.x = Tensor::empty({N, d.I}, dt);
    gemm<T>(false, false, N, d.I, G, dgxp, G, wih, d.I, T(0), r.x.data<T>(), d.I);
  }
  if (needs[3]) {
    r.w_ih = Tensor::empty({G, d.I}, dt);
    gemm<T>(true, false, G, d.I, N, dgxp, G, x, d.I, T(0), r.w_ih.data<T>(), d.I);
  }
  if (needs[4]) {
    r.w_hh = Tensor::empty({G, P}, dt);
    gemm<T>(true, false, G, P, N, dghp, G, hprev.data<T>(), P, T(0), r.w_hh.data<T>(), P);
  }
  if (needs[5]) {
    r.b_ih = Tensor::empty({G}, dt);
    column_sums(dgxp, N, G, r.b_ih.data<T>());
  }
  if (needs[6]) {
    r.b_hh = Tensor::empty({G}, dt);
    column_sums(dghp, N, G, r.b_hh.data<T>());
  }
  if (needs[7] && d.proj) {
    r.w_hr = Tensor::empty({P, H}, dt);
    gemm<T>(true, false, P, H, N, dht.data<T>(), P, sv.hcell.data<T>(), H, T(0), r.w_hr.data<T>(), H);
  }
  return r;
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
  d.proj = w_hr.defined();
  NC_CHECK(!d.proj || mode == RnnMode::Lstm, ValueError, "[", name, "] only LSTM has a projection (weight_hr)");
  d.P = d.proj ? w_hr.shape()[0] : d.H;
  NC_CHECK(d.I == w_ih.shape()[1], ValueError, "[", name, "] input has ", d.I, " features, expected ", w_ih.shape()[1],
           " (input shape ", shape_str(x.shape()), ")");
  check_shape(w_ih, {d.G, d.I}, "weight_ih", name, x.dtype());
  check_shape(w_hh, {d.G, d.P}, "weight_hh", name, x.dtype());
  check_shape(b_ih, {d.G}, "bias_ih", name, x.dtype());
  check_shape(b_hh, {d.G}, "bias_hh", name, x.dtype());
  check_shape(w_hr, {d.P, d.H}, "weight_hr", name, x.dtype());
  d.T = static_cast<int64_t>(batch_sizes.size());
  NC_CHECK(d.T > 0, ValueError, "[", name, "] the sequence has no time steps");
  d.bs = batch_sizes;
  d.off.resize(d.T);
  int64_t total = 0;
  for (int64_t t = 0; t < d.T; ++t) {
    NC_CHECK(d.bs[t] > 0 && (t == 0 || d.bs[t] <= d.bs[t - 1]), ValueError, "[", name,
             "] batch_sizes must be positive and non-increasing, got ", shape_str(Shape(d.bs.begin(), d.bs.end())));
    d.off[t] = total;
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
        swhr(w_hr, false), sy(y, true);
    set_history(name, inputs, outputs,
                [d, sx, sh0, sc0, swih, swhh, swhr, sy, sv, name](const TensorList& g, const std::vector<bool>& needs) {
                  NC_CHECK(!GradMode::is_enabled(), RuntimeError, "[", name,
                           "] double backward (create_graph=True) through a recurrent layer is not supported");
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

}  // namespace nc
