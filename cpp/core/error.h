#pragma once
// Exceptions of the core. The bindings turn them into Python exceptions: ValueError (bad shapes
// or values), TypeError (bad dtypes), IndexError (indices out of range), RuntimeError (autograd
// misuse), MemoryError (allocation failed). Messages start with "[op]" and name the shapes involved.
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/shape.h"

namespace nc {

struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct TypeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct IndexError : std::out_of_range {
  using std::out_of_range::out_of_range;
};
struct RuntimeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A size that is valid but cannot be allocated (Python's MemoryError).
struct MemoryError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline std::string shape_str(const DimVector& shape) {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  if (shape.size() == 1) s << ",";
  s << ")";
  return s.str();
}

template <class... Args>
std::string cat_str(const Args&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}

}  // namespace nc

// NC_CHECK(cond, ValueError, "[op] message ", value, ...): throws nc::ValueError when !cond.
#define NC_CHECK(cond, Kind, ...) \
  do {                              \
    if (!(cond)) throw ::nc::Kind(::nc::cat_str(__VA_ARGS__)); \
  } while (0)
