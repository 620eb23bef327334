#include "ops/scan.h"

#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"
#include "ops/copy.h"
#include "ops/elementwise.h"
#include "ops/math.h"
#include "ops/reduce.h"

namespace nc {

namespace {

template <class T> struct Acc { using type = T; };
template <> struct Acc<float> { using type = double; };

// x viewed as (outer, n, inner) around dim: lines along dim are strided by `inner`.
struct Lines {
  int64_t outer = 1, n = 1, inner = 1;
};

Lines lines_of(const Shape& shape, int64_t dim) {
  Lines l;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < dim) l.outer *= shape[d];
    else if (d == dim) l.n = shape[d];
    else l.inner *= shape[d];
  }
  return l;
}

enum class ScanOp { Sum, Prod };

// Scans every line of contiguous x along dim into out (same shape and dtype). Each line keeps
// its accumulators over `inner` consecutive elements, so memory is walked in order.
template <class T>
void scan_lines(const T* x, T* out, const Lines& l, ScanOp op, bool reverse) {
  using A = typename Acc<T>::type;
  parallel_for(0, l.outer, std::max<int64_t>(1, 32768 / std::max<int64_t>(l.n * l.inner, 1)), [&](int64_t b, int64_t e) {
    std::vector<A> acc(l.inner);
    for (int64_t o = b; o < e; ++o) {
      std::fill(acc.begin(), acc.end(), op == ScanOp::Sum ? A(0) : A(1));
      for (int64_t s = 0; s < l.n; ++s) {
        const int64_t j = reverse ? l.n - 1 - s : s;
        const T* xi = x + (o * l.n + j) * l.inner;
        T* oi = out + (o * l.n + j) * l.inner;
        for (int64_t i = 0; i < l.inner; ++i) {
          acc[i] = op == ScanOp::Sum ? A(acc[i] + A(xi[i])) : A(acc[i] * A(xi[i]));
          oi[i] = static_cast<T>(acc[i]);
        }
      }
    }
  });
}

Tensor scan(const Tensor& x, int64_t dim, ScanOp op, bool reverse, const char* name) {
  NC_CHECK(x.dtype() != DType::Bool, TypeError, "[", name, "] convert a bool tensor to int64 first");
  const int64_t d = x.dim() == 0 ? 0 : wrap_dim(dim, x.dim(), name);
  if (x.dim() == 0) wrap_dim(dim, 0, name);
  Tensor xc = contiguous(detach(x));
  Tensor out = Tensor::empty(x.shape(), x.dtype(), name);
  const Lines l = x.dim() == 0 ? Lines{} : lines_of(x.shape(), d);
  dispatch_numeric(x.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    scan_lines<T>(xc.data<T>(), out.data<T>(), l, op, reverse);
  });
  return out;
}

// d cumprod / dx for lines with zeros, from the definition: grad_i = sum_{j >= i} g_j prod_{k <= j, k != i} x_k.
// Before the first zero z of a line the quotient form out_j / x_i serves; at z the product skips
// x_z; past z every term holds x_z = 0.
template <class T>
void cumprod_grad_lines(const T* x, const T* g, T* gx, const Lines& l) {
  using A = typename Acc<T>::type;
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t i = 0; i < l.inner; ++i) {
      auto at = [&](int64_t j) { return (o * l.n + j) * l.inner + i; };
      int64_t z = l.n;
      for (int64_t j = 0; j < l.n; ++j)
        if (x[at(j)] == T(0)) { z = j; break; }
      // Before z: grad_i = (sum_{i <= j < z} g_j out_j) / x_i.
      A tail = 0, prefix = 1;
      std::vector<A> out(l.n);
      for (int64_t j = 0; j < l.n; ++j) { prefix *= A(x[at(j)]); out[j] = prefix; }
      for (int64_t j = z - 1; j >= 0; --j) {
        tail += A(g[at(j)]) * out[j];
        gx[at(j)] = static_cast<T>(tail / A(x[at(j)]));
      }
      if (z < l.n) {
        // At z: sum_{j >= z} g_j * prod_{k < z} x_k * prod_{z < k <= j} x_k.
        A before = z > 0 ? out[z - 1] : A(1), run = before, total = A(g[at(z)]) * before;
        for (int64_t j = z + 1; j < l.n; ++j) {
          run *= A(x[at(j)]);
          total += A(g[at(j)]) * run;
        }
        gx[at(z)] = static_cast<T>(total);
        for (int64_t j = z + 1; j < l.n; ++j) gx[at(j)] = T(0);
      }
    }
}

}  // namespace

Tensor cumsum(const Tensor& x, int64_t dim, bool reverse) {
  Tensor out = scan(x, dim, ScanOp::Sum, reverse, "cumsum");
  if (needs_history({x})) {
    set_history("cumsum", {x}, {out}, [dim, reverse](const TensorList& g, const std::vector<bool>&) {
      return TensorList{cumsum(g[0], dim, !reverse)};
    });
  }
  return out;
}

Tensor cumprod(const Tensor& x, int64_t dim) {
  Tensor out = scan(x, dim, ScanOp::Prod, false, "cumprod");
  if (needs_history({x})) {
    SavedTensor sx(x, false), so(out, true);
    set_history("cumprod", {x}, {out}, [sx, so, dim](const TensorList& g, const std::vector<bool>&) {
      Tensor xv = sx.unpack("cumprod"), ov = so.unpack("cumprod");
      Tensor has_zero = any(compare(Compare::Eq, detach(xv), scalar_tensor(Scalar(0.0), xv.dtype())), {}, false);
      if (!*has_zero.data<bool>())  // differentiable form (so double backward works)
        return TensorList{div(cumsum(mul(g[0], ov), dim, true), xv)};
      Tensor xc = contiguous(detach(xv)), gc = contiguous(detach(g[0]));
      Tensor gx = Tensor::empty(xc.shape(), xc.dtype(), "cumprod");
      const Lines l = xc.dim() == 0 ? Lines{} : lines_of(xc.shape(), wrap_dim(dim, xc.dim(), "cumprod"));
      dispatch_floating(xc.dtype(), "cumprod", [&](auto tag) {
        using T = typename decltype(tag)::type;
        cumprod_grad_lines<T>(xc.data<T>(), gc.data<T>(), gx.data<T>(), l);
      });
      return TensorList{gx};
    });
  }
  return out;
}

}  // namespace nc
