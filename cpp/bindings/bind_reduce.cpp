// Bindings of the reduce op family.
#include "bindings/common.h"

namespace nc::py_bindings {

void bind_reduce(py::module_& m, TensorClass& cls) {}

}  // namespace nc::py_bindings
