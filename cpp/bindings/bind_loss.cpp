// Bindings of the loss op family.
#include "bindings/common.h"

namespace nc::py_bindings {

void bind_loss(py::module_& m, TensorClass& cls) {}

}  // namespace nc::py_bindings
