// Python binding of the raw GEMM kernels: neurocore._core._gemm(trans_a, trans_b, alpha, a, b,
// beta, c) computes c = alpha * op(a) @ op(b) + beta * c in place (float32 or float64);
// _gemm_prepacked does the same through pack_b + gemm_prepacked (with an optional per-column
// bias and ReLU), the path of pre-packed weights.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>

#include "kernels/gemm.h"

namespace py = pybind11;

namespace {

std::string shape_str(const py::array& x) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < x.ndim(); ++i) s << (i ? ", " : "") << x.shape(i);
  s << (x.ndim() == 1 ? ",)" : ")");
  return s.str();
}

[[noreturn]] void fail(const std::string& what, const py::array& a, const py::array& b,
                       const py::array& c) {
  throw py::value_error("[gemm] " + what + ": a" + shape_str(a) + " b" + shape_str(b) + " c" +
                        shape_str(c) + " dtypes " + std::string(py::str(a.dtype())) + "/" +
                        std::string(py::str(b.dtype())) + "/" + std::string(py::str(c.dtype())));
}

// Row stride in elements of a 2-D array whose columns are contiguous (unit column stride).
int64_t row_stride(const py::array& x, const char* name, const py::array& a, const py::array& b,
                   const py::array& c) {
  const py::ssize_t item = x.itemsize();
  if (x.size() == 0) return std::max<py::ssize_t>(1, x.shape(1));  // never read
  if (x.shape(1) > 1 && x.strides(1) != item)
    fail(std::string(name) + " must have unit column stride", a, b, c);
  if (x.shape(0) > 1) {
    if (x.strides(0) % item != 0 || x.strides(0) < item * std::max<py::ssize_t>(1, x.shape(1)))
      fail(std::string(name) + " has an unsupported row stride", a, b, c);
    return x.strides(0) / item;
  }
  return std::max<py::ssize_t>(1, x.shape(1));
}

template <class T>
const nc::kernels::GemmFns<T>& fns() {
  if constexpr (sizeof(T) == 4) return nc::kernels::gemm().f32;
  else return nc::kernels::gemm().f64;
}

// op(b) packed once (pack_b), then c = act(alpha * op(a) @ packed + beta * c + bias).
template <class T>
void run_prepacked(bool ta, bool tb, double alpha, const py::array& a, const py::array& b, double beta,
                   py::array& c, const py::object& bias, bool relu) {
  const int64_t m = c.shape(0), n = c.shape(1), k = ta ? a.shape(0) : a.shape(1);
  const int64_t lda = row_stride(a, "a", a, b, c), ldb = row_stride(b, "b", a, b, c);
  const int64_t ldc = row_stride(c, "c", a, b, c);
  const T* pbias = nullptr;
  py::array_t<T, py::array::c_style | py::array::forcecast> bias_arr;
  if (!bias.is_none()) {
    bias_arr = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(bias);
    if (!bias_arr || bias_arr.ndim() != 1 || bias_arr.shape(0) != n) fail("bias must be 1-D with n elements", a, b, c);
    pbias = bias_arr.data();
  }
  const auto& g = fns<T>();
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(g.packed_b_elems(k, n), 16)) * sizeof(T);
  std::unique_ptr<T, decltype(&std::free)> packed(static_cast<T*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)),
                                                  &std::free);
  if (!packed) throw std::bad_alloc();
  py::gil_scoped_release release;
  g.pack_b(tb, k, n, static_cast<const T*>(b.data()), ldb, packed.get());
  g.gemm_prepacked(ta, m, n, k, static_cast<T>(alpha), static_cast<const T*>(a.data()), lda, packed.get(),
                   static_cast<T>(beta), static_cast<T*>(c.mutable_data()), ldc, pbias, relu ? 1 : 0);
}

template <class T>
void run(bool ta, bool tb, double alpha, const py::array& a, const py::array& b, double beta,
         py::array& c) {
  const int64_t m = c.shape(0), n = c.shape(1), k = ta ? a.shape(0) : a.shape(1);
  const int64_t lda = row_stride(a, "a", a, b, c), ldb = row_stride(b, "b", a, b, c);
  const int64_t ldc = row_stride(c, "c", a, b, c);
  const T* pa = static_cast<const T*>(a.data());
  const T* pb = static_cast<const T*>(b.data());
  T* pc = static_cast<T*>(c.mutable_data());
  const auto& g = nc::kernels::gemm();
  py::gil_scoped_release release;
  if constexpr (sizeof(T) == 4)
    g.f32.gemm(ta, tb, m, n, k, static_cast<float>(alpha), pa, lda, pb, ldb, static_cast<float>(beta),
            pc, ldc);
  else
    g.f64.gemm(ta, tb, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
}

}  // namespace

namespace nc::py_bindings {

void bind_gemm(py::module_& m) {
  // The checks both entries share; true for float32.
  const auto check = [](bool trans_a, bool trans_b, const py::array& a, const py::array& b, const py::array& c) {
    if (a.ndim() != 2 || b.ndim() != 2 || c.ndim() != 2) fail("arrays must be 2-D", a, b, c);
    const bool f32 = a.dtype().is(py::dtype::of<float>());
    const bool f64 = a.dtype().is(py::dtype::of<double>());
    if (!(f32 || f64) || !b.dtype().is(a.dtype()) || !c.dtype().is(a.dtype()))
      fail("dtypes must all be float32 or all float64", a, b, c);
    if (!c.writeable()) fail("c must be writeable", a, b, c);
    const py::ssize_t m = trans_a ? a.shape(1) : a.shape(0);
    const py::ssize_t ka = trans_a ? a.shape(0) : a.shape(1);
    const py::ssize_t kb = trans_b ? b.shape(1) : b.shape(0);
    const py::ssize_t n = trans_b ? b.shape(0) : b.shape(1);
    if (ka != kb || c.shape(0) != m || c.shape(1) != n)
      fail("shape mismatch (trans_a=" + std::to_string(trans_a) +
               ", trans_b=" + std::to_string(trans_b) + ")",
           a, b, c);
    return f32;
  };
  m.def(
      "_gemm",
      [check](bool trans_a, bool trans_b, double alpha, py::array a, py::array b, double beta, py::array c) {
        if (check(trans_a, trans_b, a, b, c))
          run<float>(trans_a, trans_b, alpha, a, b, beta, c);
        else
          run<double>(trans_a, trans_b, alpha, a, b, beta, c);
      },
      py::arg("trans_a"), py::arg("trans_b"), py::arg("alpha"), py::arg("a"), py::arg("b"),
      py::arg("beta"), py::arg("c"),
      "c = alpha * op(a) @ op(b) + beta * c in place; float32 or float64; rows may be strided.");
  m.def(
      "_gemm_prepacked",
      [check](bool trans_a, bool trans_b, double alpha, py::array a, py::array b, double beta, py::array c,
              py::object bias, bool relu) {
        if (check(trans_a, trans_b, a, b, c))
          run_prepacked<float>(trans_a, trans_b, alpha, a, b, beta, c, bias, relu);
        else
          run_prepacked<double>(trans_a, trans_b, alpha, a, b, beta, c, bias, relu);
      },
      py::arg("trans_a"), py::arg("trans_b"), py::arg("alpha"), py::arg("a"), py::arg("b"), py::arg("beta"),
      py::arg("c"), py::arg("bias") = py::none(), py::arg("relu") = false,
      "As _gemm, through a packed copy of op(b) (pack_b + gemm_prepacked); bias per column, then ReLU.");
}

}  // namespace nc::py_bindings
