"""Loads a program file twice, once on PyTorch and once through the shim on neurocore, and moves
weights between the two."""
import contextlib
import importlib.util
import os

import numpy as np

from torch_shim import torch_is_neurocore

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name, backend):
    """The program module `name` (a file in this folder) with ``torch`` bound to `backend`."""
    path = os.path.join(HERE, name + ".py")
    ctx = torch_is_neurocore() if backend == "neurocore" else contextlib.nullcontext()
    with ctx:
        spec = importlib.util.spec_from_file_location(f"program_{name}_{backend}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def both(name):
    import torch
    torch.set_num_threads(1)
    # The programs' models start from PyTorch's random initialisation (copied into neurocore's),
    # from a fixed seed, so that a run never depends on a fresh draw (NEUROCORE_PROGRAMS_SEED picks
    # another). The comparisons are tight for training runs (Adam/Adadelta at large learning rates
    # amplify float32 rounding differences: a parameter whose gradient is near 0 moves by about
    # +-lr either way), and some draws cross them: of seeds 0-8 under the three kernel builds,
    # 0 (nanoGPT logits 2.6e-5 apart), 1 (DCGAN), 2 (nanoGPT, generic build) and 7 (DCGAN, generic)
    # did; of 300 draws of the MNIST CNN alone one did (losses 4.5e-4 apart). The session-start
    # build crossed on seeds 0 and 1 as well: the sensitivity is the comparisons', not a regression.
    torch.manual_seed(int(os.environ.get("NEUROCORE_PROGRAMS_SEED", "3")))
    return load(name, "torch"), load(name, "neurocore")


def copy_weights(src_module, dst_module, dst_lib):
    """dst_module.load_state_dict(src_module.state_dict()) across the two libraries."""
    state = {k: dst_lib.tensor(np.array(v.detach().numpy())) for k, v in src_module.state_dict().items()}
    dst_module.load_state_dict(state)


def to_numpy(x):
    return np.asarray(x.detach().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
