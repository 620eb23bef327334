#pragma once
// Element types and the dispatch helpers that turn a run-time dtype into a C++ type.
//
// Compute dtypes: bool, int64, float32, float64 (every op has kernels for them). Storage dtypes:
// uint8, int8, int16, int32, float16, bfloat16: tensors of them are made, converted (.to()),
// copied, viewed, indexed and turned into NumPy arrays; arithmetic reads them as int64 (integers)
// or float32 (floats) and rounds the result back to the storage dtype where PyTorch's result
// type is one.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/half.h"

namespace nc {

// The first four keep their values (saved files and the runtime use them); new ones follow.
enum class DType : uint8_t { Bool, Int64, Float32, Float64, UInt8, Int8, Int16, Int32, Float16, BFloat16 };

inline size_t itemsize(DType t) {
  switch (t) {
    case DType::Bool: return 1;
    case DType::Int64: return 8;
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::UInt8: return 1;
    case DType::Int8: return 1;
    case DType::Int16: return 2;
    case DType::Int32: return 4;
    case DType::Float16: return 2;
    case DType::BFloat16: return 2;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Bool: return "bool";
    case DType::Int64: return "int64";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::UInt8: return "uint8";
    case DType::Int8: return "int8";
    case DType::Int16: return "int16";
    case DType::Int32: return "int32";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
  }
  return "?";
}

// The floating-point dtypes with kernels (float32, float64): what every op that checks for a
// float tensor before reading it as float or double asks.
inline bool is_floating(DType t) { return t == DType::Float32 || t == DType::Float64; }
// Any floating-point dtype, the 16-bit storage ones included (promotion, requires_grad).
inline bool is_float_type(DType t) { return is_floating(t) || t == DType::Float16 || t == DType::BFloat16; }
// A dtype without kernels of its own (see the file comment).
inline bool is_storage_dtype(DType t) { return t > DType::Float64; }
// The dtype ops compute a storage dtype in: int64 for integers, float32 for 16-bit floats.
inline DType compute_dtype(DType t) {
  if (!is_storage_dtype(t)) return t;
  return is_float_type(t) ? DType::Float32 : DType::Int64;
}
// 0 bool, 1 integer, 2 floating point.
inline int dtype_category(DType t) { return t == DType::Bool ? 0 : is_float_type(t) ? 2 : 1; }

// PyTorch's promotion: bool < integers (by width) < 16-bit floats < float32 < float64, where
// uint8 with int8 gives int16 and float16 with bfloat16 gives float32.
inline DType promote_types(DType a, DType b) {
  if (a == b) return a;
  auto rank = [](DType t) {
    switch (t) {
      case DType::Bool: return 0;
      case DType::UInt8: case DType::Int8: return 1;
      case DType::Int16: return 2;
      case DType::Int32: return 3;
      case DType::Int64: return 4;
      case DType::Float16: case DType::BFloat16: return 5;
      case DType::Float32: return 6;
      case DType::Float64: return 7;
    }
    return 0;
  };
  const int ra = rank(a), rb = rank(b);
  if (ra == rb) return ra == 1 ? DType::Int16 : DType::Float32;  // {uint8, int8}, {float16, bfloat16}
  return ra > rb ? a : b;
}

template <class T> struct TypeTag { using type = T; };
template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<bool>() { return DType::Bool; }
template <> constexpr DType dtype_of<int64_t>() { return DType::Int64; }
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::UInt8; }
template <> constexpr DType dtype_of<int8_t>() { return DType::Int8; }
template <> constexpr DType dtype_of<int16_t>() { return DType::Int16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::Int32; }
template <> constexpr DType dtype_of<Half>() { return DType::Float16; }
template <> constexpr DType dtype_of<BFloat16>() { return DType::BFloat16; }

[[noreturn]] inline void throw_no_kernel(DType dt, const char* op) {
  throw TypeError(cat_str("[", op, "] not supported for dtype ", dtype_name(dt),
                          is_storage_dtype(dt) ? " (a storage dtype: convert it with .to(), e.g. .float(), first)" : ""));
}

// dispatch_floating(dt, "op", [&](auto tag) { using T = typename decltype(tag)::type; ... });
template <class F>
decltype(auto) dispatch_floating(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::Float32: return f(TypeTag<float>{});
    case DType::Float64: return f(TypeTag<double>{});
    default:
      if (is_float_type(dt)) throw_no_kernel(dt, op);
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
    default: throw_no_kernel(dt, op);
  }
}

// The compute dtypes (bool, int64, float32, float64).
template <class F>
decltype(auto) dispatch_all(DType dt, F&& f, const char* op = "op") {
  switch (dt) {
    case DType::Float32: return f(TypeTag<float>{});
    case DType::Float64: return f(TypeTag<double>{});
    case DType::Int64: return f(TypeTag<int64_t>{});
    case DType::Bool: return f(TypeTag<bool>{});
    default: throw_no_kernel(dt, op);
  }
}

// Every dtype, storage dtypes included: for ops that only move or convert elements.
template <class F>
decltype(auto) dispatch_storage(DType dt, F&& f) {
  switch (dt) {
    case DType::Float32: return f(TypeTag<float>{});
    case DType::Float64: return f(TypeTag<double>{});
    case DType::Int64: return f(TypeTag<int64_t>{});
    case DType::UInt8: return f(TypeTag<uint8_t>{});
    case DType::Int8: return f(TypeTag<int8_t>{});
    case DType::Int16: return f(TypeTag<int16_t>{});
    case DType::Int32: return f(TypeTag<int32_t>{});
    case DType::Float16: return f(TypeTag<Half>{});
    case DType::BFloat16: return f(TypeTag<BFloat16>{});
    default: return f(TypeTag<bool>{});
  }
}

// Converts between any two element types (16-bit floats go through float; a float to bool is
// "nonzero", as in PyTorch).
template <class D, class S>
inline D convert_element(S v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (std::is_same_v<S, Half> || std::is_same_v<S, BFloat16>) {
    return convert_element<D>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<D, bool>) {
    return v != S(0);
  } else {
    return static_cast<D>(v);
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
  if (is_float_type(tensor)) return tensor;
  if (s.kind == DType::Float64) return DType::Float32;
  if (tensor != DType::Bool) return tensor;  // int32 tensor + 2 stays int32
  return s.kind;
}

}  // namespace nc
