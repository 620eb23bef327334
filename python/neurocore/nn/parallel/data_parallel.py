from ..module import Module


class DataParallel(Module):
    """PyTorch's single-process multi-GPU wrapper. On the CPU there is one device, whose cores the
    kernels already use, so this runs `module` unchanged; ``module`` and the ``module.``-prefixed
    ``state_dict`` keys are as in PyTorch."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        for d in list(device_ids or []) + ([output_device] if output_device is not None else []):
            if str(d) not in ("cpu", "-1"):
                raise RuntimeError(f"[DataParallel] device {d!r} is not available: neurocore runs on the CPU only")
        self.module = module

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


def data_parallel(module, inputs, device_ids=None, output_device=None, dim=0, module_kwargs=None):
    """PyTorch's functional DataParallel: ``module(inputs)`` on the one device there is."""
    for d in list(device_ids or []) + ([output_device] if output_device is not None else []):
        if str(d) not in ("cpu", "-1"):
            raise RuntimeError(f"[data_parallel] device {d!r} is not available: neurocore runs on the CPU only")
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    return module(*inputs, **(module_kwargs or {}))
