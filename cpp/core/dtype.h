#pragma once
// Element types and the dispatch helpers that turn a run-time dtype into a C++ type.
#include <cstdint>
#include <string>

#include "core/error.h"

namespace nc {

// Ordered by promotion rank: a binary op between two tensors produces the higher of the two.
enum class DType : uint8_t { Bool, Int64, Float32, Float64 };

inline size_t itemsize(DType t) {
  switch (t) {
    case DType::Bool: return 1;
    case DType::Int64: return 8;
    case DType::Float32: return 4;
    case DType::Float64: return 8;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Bool: return "bool";
    case DType::Int64: return "int64";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
  }
  return "?";
}

inline bool is_floating(DType t) { return t == DType::Float32 || t == DType::Float64; }
inline DType promote_types(DType a, DType b) { return a > b ? a : b; }

template <class T> struct TypeTag { using type = T; };
template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<bool>() { return DType::Bool; }
template <> constexpr DType dtype_of<int64_t>() { return DType::Int64; }
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }

// dispatch_floating(dt, "op", [&](auto tag) { using T = typename decltype(tag)::type; ... });
template <class F>
decltype(auto) dispatch_floating(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::Float32: return f(TypeTag<float>{});
    case DType::Float64: return f(TypeTag<double>{});
    default:
      throw TypeError(cat_str("[", op, "] expected a floating-point tensor (float32 or float64), got ",
                              dtype_name(dt)));
  }
}

// Float and int64 (arithmetic types).
template <class F>
decltype(auto) dispatch_numeric(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::Float32: return f(TypeTag<float>{});
    case DType::Float64: return f(TypeTag<double>{});
    case DType::Int64: return f(TypeTag<int64_t>{});
    default:
      throw TypeError(cat_str("[", op, "] not supported for dtype ", dtype_name(dt)));
  }
}

template <class F>
decltype(auto) dispatch_all(DType dt, F&& f) {
  switch (dt) {
    case DType::Float32: return f(TypeTag<float>{});
    case DType::Float64: return f(TypeTag<double>{});
    case DType::Int64: return f(TypeTag<int64_t>{});
    default: return f(TypeTag<bool>{});
  }
}

// A Python number passed to an op: remembers whether it was written as an integer or a bool,
// which decides the result dtype (int64 tensor + 2 -> int64, + 2.5 -> float32).
struct Scalar {
  double value = 0;
  DType kind = DType::Float64;  // Bool, Int64 or Float64
  Scalar() = default;
  Scalar(double v) : value(v), kind(DType::Float64) {}
  static Scalar integer(int64_t v) { Scalar s(static_cast<double>(v)); s.kind = DType::Int64; return s; }
  static Scalar boolean(bool v) { Scalar s(v ? 1.0 : 0.0); s.kind = DType::Bool; return s; }
};

// Result dtype of tensor (op) scalar, following PyTorch: the tensor's dtype wins within a
// category; a float scalar turns an integer/bool tensor into float32.
inline DType result_type(DType tensor, const Scalar& s) {
  if (is_floating(tensor)) return tensor;
  if (s.kind == DType::Float64) return DType::Float32;
  return promote_types(tensor, s.kind);
}

}  // namespace nc
