// Bindings of the elementwise op family.
#include "bindings/common.h"

namespace nc::py_bindings {

void bind_elementwise(py::module_& m, TensorClass& cls) {}

}  // namespace nc::py_bindings
