"""``nc.device`` and the device arguments of factories, ``Tensor.to`` and ``Module.to``.

neurocore runs on the CPU only. A device object can name any of PyTorch's device types (code
builds ``torch.device("cuda")`` to compare against), but asking for a tensor or module on anything
other than the CPU raises at once instead of silently running on the CPU.
"""
from . import _core

_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga", "maia",
                 "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")


class device:
    """A device name as in ``torch.device``: ``device("cpu")``, ``device("cpu:0")``,
    ``device("cpu", 0)`` or ``device(other_device)``. ``type`` is the device type, ``index`` the
    ordinal or None. Equal when type and index are equal (``device("cpu") != device("cpu:0")``, as in
    PyTorch). Only ``type == "cpu"`` can hold tensors."""

    __slots__ = ("_type", "_index")

    def __init__(self, type, index=None):  # noqa: A002 - PyTorch's argument name
        if isinstance(type, device):
            if index is not None:
                raise TypeError("device(): a device object takes no index")
            self._type, self._index = type._type, type._index
            return
        if isinstance(type, int) and not isinstance(type, bool):
            # torch.device(0) names the current accelerator's device 0; there is none here.
            raise RuntimeError(f"[device] device({type}) names accelerator {type}, but neurocore runs on the CPU "
                               "only (use device('cpu'))")
        if not isinstance(type, str):
            raise TypeError(f"device() received an invalid combination of arguments: got {type!r}")
        name, sep, ordinal = type.partition(":")
        if name not in _DEVICE_TYPES:
            raise RuntimeError(f"Expected one of {', '.join(_DEVICE_TYPES)} device type at start of device "
                               f"string: {type}")
        if sep:
            if not ordinal.isdigit() or index is not None:
                raise RuntimeError(f"Invalid device string: '{type}'")
            index = int(ordinal)
        if index is not None:
            index = int(index)
            if index < 0:
                raise RuntimeError("Device index must not be negative")
        self._type, self._index = name, index

    type = property(lambda self: self._type)
    index = property(lambda self: self._index)

    def __eq__(self, other):
        return isinstance(other, device) and (self._type, self._index) == (other._type, other._index)

    def __hash__(self):
        return hash((self._type, self._index))

    def __str__(self):
        return self._type if self._index is None else f"{self._type}:{self._index}"

    def __repr__(self):
        index = "" if self._index is None else f", index={self._index}"
        return f"device(type='{self._type}'{index})"

    def __reduce__(self):
        return device, (str(self),)

    # ``with nc.device("cpu"):`` sets the default device of factories in PyTorch; the CPU already is.
    def __enter__(self):
        _check_device(self, "device")
        return self

    def __exit__(self, *exc):
        return False


CPU = device("cpu")


def _device_type(dev):
    """The type string of a device argument: a str, a device, or a torch.device-like object."""
    if isinstance(dev, device):
        return dev.type
    kind = getattr(dev, "type", None)
    if isinstance(kind, str):
        return kind
    if isinstance(dev, str):
        return dev.partition(":")[0]
    return None


def _check_device(dev, op):
    """Accepts the CPU (None, "cpu", "cpu:0", a device or torch.device-like object of type "cpu");
    any other device raises instead of giving a tensor that silently stays on the CPU."""
    if dev is None:
        return
    if isinstance(dev, int) and not isinstance(dev, bool):
        raise RuntimeError(f"[{op}] device {dev} (accelerator {dev}) is not available: neurocore runs on the CPU "
                           "only (use device='cpu')")
    kind = _device_type(dev)
    if kind is None:
        raise TypeError(f"[{op}] device must be a str or neurocore.device, got {type(dev).__name__}")
    if kind != "cpu":
        if isinstance(dev, str):
            device(dev)  # an unknown device string gets PyTorch's message
        raise RuntimeError(f"[{op}] device {str(dev)!r} is not available: neurocore runs on the CPU only "
                           "(use device='cpu')")
    if isinstance(dev, str):
        device(dev)  # "cpu:x" is malformed


def _is_device_arg(a):
    return isinstance(a, (str, device, int)) and not isinstance(a, bool) or isinstance(getattr(a, "type", None), str)


def _parse_to(args, kwargs, op):
    """(dtype or None, copy) from the arguments of ``Tensor.to``/``Module.to``:
    ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)``, keywords ``device``, ``dtype``,
    ``non_blocking``, ``copy``, ``memory_format``. Checks the device."""
    kwargs = dict(kwargs)
    dtype = kwargs.pop("dtype", None)
    dev = kwargs.pop("device", None)
    copy = bool(kwargs.pop("copy", False))
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"[{op}] unexpected keyword arguments {sorted(kwargs)}")
    # A trailing positional bool is non_blocking (and a second one copy), as in PyTorch.
    bools = [a for a in args if isinstance(a, bool)]
    args = [a for a in args if not isinstance(a, bool)]
    if len(bools) > 1:
        copy = copy or bools[1]
    for a in args:
        if isinstance(a, _core.dtype):
            dtype = a
        elif isinstance(a, _core.Tensor):
            dtype = a.dtype
        elif _is_device_arg(a):
            dev = a
        elif a is not None:
            dtype = a  # a NumPy dtype or type, checked by the caller
    _check_device(dev, op)
    return dtype, copy


def _tensor_device(self):
    return CPU


def _cuda_device(index):
    return "cuda" if index is None else index if isinstance(index, (str, device)) else f"cuda:{index}"


def _tensor_cuda(self, device=None, non_blocking=False, memory_format=None):
    _check_device(_cuda_device(device), "Tensor.cuda")


def _tensor_get_device(self):
    return -1  # PyTorch's answer for a CPU tensor


def _install():
    T = _core.Tensor
    T.device = property(_tensor_device)
    T.is_cpu = property(lambda self: True)
    T.is_cuda = property(lambda self: False)
    T.is_xpu = property(lambda self: False)
    T.is_mps = property(lambda self: False)
    T.is_meta = property(lambda self: False)
    T.cuda = _tensor_cuda
    T.get_device = _tensor_get_device
    T.pin_memory = lambda self, device=None: self
    T.is_pinned = lambda self, device=None: False


_install()


def set_default_device(dev):
    """Factories' default device. Only the CPU (or None) is accepted."""
    _check_device(dev, "set_default_device")


def get_default_device():
    return CPU
