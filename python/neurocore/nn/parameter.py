"""nn.Parameter: a leaf tensor that a Module registers as a learnable parameter."""
from .._core import Tensor
from .._creation import empty


class Parameter(Tensor):
    """A tensor that is a module parameter: assigning it to a Module attribute registers it.

    Args:
        data: the initial values (shared, not copied). Default: an empty tensor.
        requires_grad: whether the parameter gets gradients. Default: ``True``.
    """

    def __init__(self, data=None, requires_grad=True):
        super().__init__(empty(0) if data is None else data)
        self.requires_grad_(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__


class Buffer(Tensor):
    """Marks a tensor as a buffer when assigned to a Module attribute (``nn.Buffer``)."""

    def __init__(self, data, persistent=True):
        super().__init__(data)
        self.persistent = persistent
