// Bindings of the optim op family.
#include "bindings/common.h"

namespace nc::py_bindings {

void bind_optim(py::module_& m, TensorClass& cls) {}

}  // namespace nc::py_bindings
