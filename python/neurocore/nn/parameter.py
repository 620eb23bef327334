"""``nn.Parameter``: a tensor that a Module registers as a learnable parameter."""
from .. import _core
from .._core import Tensor
from .._tensor import get_default_dtype


class Parameter(Tensor):
    """A Tensor that, assigned as a Module attribute, is added to the module's parameters.

    The Parameter object is an alias of `data` (it shares storage) with its own autograd identity:
    it is the leaf whose ``.grad`` backward fills. Ops on a Parameter return plain Tensors.

    Args:
        data (Tensor): the initial values. Default: an empty float tensor.
        requires_grad (bool): whether gradients are recorded. Default: ``True``.
    """

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = _core._empty((0,), get_default_dtype())
        if not isinstance(data, Tensor):
            raise TypeError(f"[Parameter] expected a Tensor as data, got {type(data).__name__}")
        super().__init__(data)
        if requires_grad and not self.dtype.is_floating_point:
            raise RuntimeError("[Parameter] only Tensors of floating point dtype can require gradients")
        self.requires_grad_(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    # Pickling and deepcopy come from neurocore.serialization (Tensor.__reduce_ex__ rebuilds the subclass).


class Buffer(Tensor):
    """Marks a tensor as a buffer when assigned as a Module attribute (``self.x = nn.Buffer(t)``).

    Args:
        data (Tensor): the buffer's value (shared, not copied).
        persistent (bool): whether it appears in ``state_dict``. Default: ``True``.
    """

    def __init__(self, data, persistent=True):
        if not isinstance(data, Tensor):
            raise TypeError(f"[Buffer] expected a Tensor, got {type(data).__name__}")
        super().__init__(data)
        self.persistent = persistent
