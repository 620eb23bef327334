// Bindings of the shape op family.
#include "bindings/common.h"

namespace nc::py_bindings {

void bind_shape(py::module_& m, TensorClass& cls) {}

}  // namespace nc::py_bindings
