#include "ops/elementwise.h"

#include <optional>
#include <utility>

#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/elementwise_impl.h"
#include "kernels/elementwise.h"

namespace nc {

static int category(DType d) { return dtype_category(d); }

DType result_type(const Tensor& a, const Tensor& b) {
  const bool a0 = a.dim() == 0, b0 = b.dim() == 0;
  if (a0 != b0) {
    const Tensor& dimmed = a0 ? b : a;
    const Tensor& zero_dim = a0 ? a : b;
    return category(zero_dim.dtype()) <= category(dimmed.dtype()) ? dimmed.dtype() : zero_dim.dtype();
  }
  return promote_types(a.dtype(), b.dtype());
}

// A number next to a float16/bfloat16 tensor is kept in float32: PyTorch computes x * 3.3 with 3.3
// in float, not rounded to 16 bits first (the tensor's dtype still decides the result's).
Tensor scalar_tensor(Scalar s, DType like) {
  DType dt = result_type(like, s);
  return full({}, s, is_storage_dtype(dt) && is_float_type(dt) ? DType::Float32 : dt);
}

namespace {

enum class Arith { Add, Sub, Mul, Div };

const char* arith_name(Arith op) {
  switch (op) {
    case Arith::Add: return "add";
    case Arith::Sub: return "sub";
    case Arith::Mul: return "mul";
    default: return "div";
  }
}

// How a broadcast operand v meets the dense output shape: after dropping size-1 dims, the dims
// where v varies must be one block, laid out contiguously in v. The output is then
// (outer, mid, inner) with v[m] at every (o, m, i): a row vector when inner == 1, one value per
// row of `inner` elements otherwise. mid == 1 is a scalar.
struct Broadcast {
  int64_t outer = 1, mid = 1, inner = 1;
};

std::optional<Broadcast> broadcast_pattern(const Tensor& v, const Shape& shape, const char* name) {
  const Shape st = broadcast_strides(v, shape, name);
  const int64_t nd = static_cast<int64_t>(shape.size());
  int64_t first = -1, last = -1;
  for (int64_t d = 0; d < nd; ++d)
    if (shape[d] > 1 && st[d] != 0) {
      if (first < 0) first = d;
      last = d;
    }
  Broadcast b;
  if (first < 0) {
    for (int64_t s : shape) b.outer *= s;
    return b;
  }
  int64_t expected = 1;
  for (int64_t d = last; d >= first; --d) {
    if (shape[d] == 1) continue;
    if (st[d] != expected) return std::nullopt;  // broadcast inside the block, or a gap in memory
    expected *= shape[d];
  }
  for (int64_t d = 0; d < first; ++d) b.outer *= shape[d];
  for (int64_t d = first; d <= last; ++d) b.mid *= shape[d];
  for (int64_t d = last + 1; d < nd; ++d) b.inner *= shape[d];
  return b;
}

// The per-ISA kernels for float operands of dtype dt when one operand is contiguous with the
// output's shape and the other is the same, a scalar, or a broadcast vector (see Broadcast).
// Writes into `out` (allocated when undefined; it may be a itself, for in-place ops) and returns
// it, or returns an undefined tensor when the general strided path is needed.
Tensor arith_fast(Arith op, const Tensor& a, const Tensor& b, DType dt, Tensor out = Tensor()) {
  if (dt != DType::Float32 && dt != DType::Float64) return Tensor();
  const char* name = arith_name(op);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  auto dense = [&](const Tensor& t) { return t.dtype() == dt && t.is_contiguous() && t.shape() == shape; };
  const bool v_left = !dense(a);
  const Tensor& d = v_left ? b : a;
  const Tensor& v = v_left ? a : b;
  if (!dense(d)) return Tensor();
  std::optional<Broadcast> bc;
  if (!dense(v)) {
    bc = broadcast_pattern(v, shape, name);
    if (!bc) return Tensor();
  }
  if (out.defined() && (!dense(out) || overlaps(out, v))) return Tensor();
  Tensor vc = as_compute(v, dt);  // converts only a broadcast operand, never a dense one
  if (!out.defined()) out = Tensor::empty(shape, dt);
  const auto kop = static_cast<kernels::BinaryOp>(static_cast<int>(op));
  const int64_t numel = out.numel();
  dispatch_floating(dt, name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* dp = d.data<T>();
    const T* vp = vc.data<T>();
    T* o = out.data<T>();
    const auto k = [] {
      if constexpr (std::is_same_v<T, float>) return kernels::elementwise().f32;
      else return kernels::elementwise().f64;
    }();
    if (!bc || bc->mid == 1) {  // same shapes, or a scalar
      const int64_t sv = bc ? 0 : 1;
      parallel_for(0, numel, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
        if (v_left) k.binary(kop, vp + lo * sv, sv, dp + lo, 1, o + lo, hi - lo);
        else k.binary(kop, dp + lo, 1, vp + lo * sv, sv, o + lo, hi - lo);
      });
      return 0;
    }
    // Rows of `cols` elements: v runs along each row (inner == 1) or holds one value per row.
    const bool per_row = bc->inner > 1;
    const int64_t cols = per_row ? bc->inner : bc->mid, vlen = bc->mid;
    // Element ranges (not whole rows) go to threads, so that a few long rows still split; a
    // range starts and ends with partial rows.
    parallel_for(0, numel, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
      while (lo < hi) {
        const int64_t r = lo / cols, j = lo % cols;
        int64_t rows = 1, n = std::min(cols - j, hi - lo);
        if (j == 0 && hi - lo >= cols) {
          rows = (hi - lo) / cols;
          n = cols;
        }
        k.binary_rows(kop, dp + lo, per_row ? vp : vp + j, vlen, r, per_row, v_left, o + lo, rows, n);
        lo += rows == 1 ? n : rows * cols;
      }
    });
    return 0;
  });
  return out;
}

Tensor arith_forward(Arith op, const Tensor& a, const Tensor& b, DType dt) {
  const char* name = arith_name(op);
  if (Tensor fast = arith_fast(op, a, b, dt); fast.defined()) return fast;
  if (dt == DType::Bool && op != Arith::Mul && op != Arith::Add)
    throw TypeError(cat_str("[", name, "] not supported for two bool tensors; use logical ops"));
  if (dt == DType::Bool) dt = DType::Int64;  // torch: bool + bool is bool (logical or); we promote
  if (is_storage_dtype(dt)) return to_dtype(arith_forward(op, a, b, compute_dtype(dt)), dt);  // no kernel of its own
  return dispatch_numeric(dt, name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (op) {
      case Arith::Add: return map2<T, T>(a, b, dt, name, [](T x, T y) { return x + y; });
      case Arith::Sub: return map2<T, T>(a, b, dt, name, [](T x, T y) { return x - y; });
      case Arith::Mul: return map2<T, T>(a, b, dt, name, [](T x, T y) { return x * y; });
      default: return map2<T, T>(a, b, dt, name, [](T x, T y) { return x / y; });
    }
  });
}

DType arith_dtype(Arith op, const Tensor& a, const Tensor& b) {
  DType dt = result_type(a, b);
  if (op == Arith::Div && !is_float_type(dt)) dt = DType::Float32;
  return dt;
}

Tensor arith(Arith op, const Tensor& a, const Tensor& b) {
  DType dt = arith_dtype(op, a, b);
  Tensor out = arith_forward(op, a, b, dt);
  if (needs_history({a, b})) {
    Shape as = a.shape(), bs = b.shape();
    DType ad = a.dtype(), bd = b.dtype();
    SavedTensor sa, sb;
    if (op == Arith::Mul || op == Arith::Div) {
      sa = SavedTensor(a, false);
      sb = SavedTensor(b, false);
    }
    set_history(arith_name(op), {a, b}, {out},
                [op, as, bs, ad, bd, sa, sb](const TensorList& g, const std::vector<bool>& needs) {
                  TensorList r(2);
                  const char* name = arith_name(op);
                  switch (op) {
                    case Arith::Add:
                      if (needs[0]) r[0] = reduce_grad(g[0], as, ad);
                      if (needs[1]) r[1] = reduce_grad(g[0], bs, bd);
                      break;
                    case Arith::Sub:
                      if (needs[0]) r[0] = reduce_grad(g[0], as, ad);
                      if (needs[1]) r[1] = reduce_grad(neg(g[0]), bs, bd);
                      break;
                    case Arith::Mul:
                      if (needs[0]) r[0] = reduce_grad(mul(g[0], sb.unpack(name)), as, ad);
                      if (needs[1]) r[1] = reduce_grad(mul(g[0], sa.unpack(name)), bs, bd);
                      break;
                    case Arith::Div: {
                      Tensor gb = div(g[0], sb.unpack(name));  // d(a/b)/da = 1/b
                      if (needs[0]) r[0] = reduce_grad(gb, as, ad);
                      if (needs[1]) r[1] = reduce_grad(neg(mul(gb, div(sa.unpack(name), sb.unpack(name)))), bs, bd);  // -g*a/b^2
                      break;
                    }
                  }
                  return r;
                });
  }
  return out;
}

void arith_inplace(Arith op, const Tensor& a, const Tensor& b) {
  const char* name = arith_name(op);
  DType dt = arith_dtype(op, a, b);
  if (category(dt) > category(a.dtype()))
    throw TypeError(cat_str("[", name, "_] result type ", dtype_name(dt), " can't be cast to the in-place output's dtype ",
                            dtype_name(a.dtype())));
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  if (shape != a.shape())
    throw ValueError(cat_str("[", name, "_] output with shape ", shape_str(a.shape()),
                             " doesn't match the broadcast shape ", shape_str(shape)));
  prepare_inplace(a, name, {b});
  bool record = needs_history({a, b});
  // The value before the write, which only the Mul/Div gradients need.
  const bool keep_old = record && (op == Arith::Mul || op == Arith::Div);
  Tensor a_old = keep_old ? clone(detach(a)) : Tensor();
  // Straight into a when the kernels apply (and b cannot change under the write); otherwise
  // into a new tensor that is then copied.
  if (!(a.dtype() == dt && arith_fast(op, a, b, dt, a).defined())) copy_raw(a, arith_forward(op, a, b, dt));
  a.bump_version();
  if (record) {
    // Same gradients as the out-of-place op on the old value of a.
    Shape bs = b.shape();
    DType bd = b.dtype();
    SavedTensor sa(a_old, false), sb(b, false);
    set_history(std::string(name) + "_", {a, b}, {a},
                [op, bs, bd, sa, sb](const TensorList& g, const std::vector<bool>& needs) {
                  Tensor x = sa.unpack("inplace"), y = sb.unpack("inplace");
                  TensorList r(2);
                  Tensor ga, gb;
                  switch (op) {
                    case Arith::Add: ga = g[0]; gb = g[0]; break;
                    case Arith::Sub: ga = g[0]; gb = neg(g[0]); break;
                    case Arith::Mul: ga = mul(g[0], y); gb = mul(g[0], x); break;
                    case Arith::Div: ga = div(g[0], y); gb = neg(div(mul(g[0], x), mul(y, y))); break;
                  }
                  if (needs[0]) r[0] = ga;
                  if (needs[1]) r[1] = reduce_grad(gb, bs, bd);
                  return r;
                });
  }
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return arith(Arith::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return arith(Arith::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return arith(Arith::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return arith(Arith::Div, a, b); }
void add_(const Tensor& a, const Tensor& b) { arith_inplace(Arith::Add, a, b); }
void sub_(const Tensor& a, const Tensor& b) { arith_inplace(Arith::Sub, a, b); }
void mul_(const Tensor& a, const Tensor& b) { arith_inplace(Arith::Mul, a, b); }
void div_(const Tensor& a, const Tensor& b) { arith_inplace(Arith::Div, a, b); }

Tensor neg(const Tensor& a) {
  if (is_storage_dtype(a.dtype())) return to_dtype(neg(to_dtype(a, compute_dtype(a.dtype()))), a.dtype());
  Tensor out = dispatch_numeric(a.dtype(), "neg", [&](auto tag) {
    using T = typename decltype(tag)::type;
    return map1<T, T>(a, a.dtype(), [](T x) { return -x; });
  });
  if (needs_history({a}))
    set_history("neg", {a}, {out}, [](const TensorList& g, const std::vector<bool>&) { return TensorList{neg(g[0])}; });
  return out;
}

}  // namespace nc
