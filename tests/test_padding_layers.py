"""Padding layers (Zero/Constant/Reflection/Replication/Circular, 1d-3d) against PyTorch: values and
gradients in float32/64, batched and unbatched input, reprs, finite differences and errors."""
import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from helpers import check_op, gradcheck, rand, require_torch

CASES = [  # (layer, args, input shape)
    ("ZeroPad1d", ((1, 2),), (2, 3, 4)), ("ZeroPad2d", (2,), (1, 2, 3, 3)), ("ZeroPad2d", ((1, 0, -1, 2),), (2, 4, 3)),
    ("ZeroPad3d", ((1, 0, 0, 2, 1, 1),), (1, 1, 2, 3, 2)), ("ConstantPad1d", (2, 3.5), (3, 4)),
    ("ConstantPad2d", ((0, 1, 2, 1), -1.0), (1, 2, 3, 2)), ("ConstantPad3d", (1, 0.25), (2, 2, 2, 2)),
    ("ReflectionPad1d", ((3, 1),), (2, 3, 5)), ("ReflectionPad1d", (2,), (2, 4)),
    ("ReflectionPad2d", ((1, 2, 2, 0),), (2, 2, 3, 4)), ("ReflectionPad2d", (1,), (3, 2, 2)),
    ("ReflectionPad3d", (1,), (1, 2, 2, 3, 2)), ("ReplicationPad1d", ((0, 4),), (2, 3, 2)),
    ("ReplicationPad2d", ((2, 1, 0, 3),), (1, 2, 3, 3)), ("ReplicationPad2d", (2,), (2, 1, 2)),
    ("ReplicationPad3d", ((1, 0, 2, 1, 0, 1),), (1, 1, 2, 2, 3)), ("CircularPad1d", ((2, 1),), (2, 3, 4)),
    ("CircularPad2d", ((1, 1, 2, 0),), (1, 2, 3, 3)), ("CircularPad3d", (1,), (1, 2, 2, 2, 2)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,args,shape", CASES)
def test_padding_layers_vs_torch(name, args, shape, dtype):
    torch = require_torch()
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    assert ours.state_dict() == {} and len(theirs.state_dict()) == 0
    check_op(lambda t, x: theirs(x), lambda nc, x: ours(x), [rand(shape, seed=1)], dtype)


def test_padding_gradcheck():
    x = rand((1, 2, 3, 3), seed=2)
    gradcheck(lambda x: nn.ReflectionPad2d((2, 1, 1, 2))(x) * 1.5 + nn.ReplicationPad2d((1, 2, 2, 1))(x), [x])


def test_padding_errors():
    with pytest.raises(ValueError, match=r"\[ReflectionPad2d\] padding must be an int or a tuple of 4 ints"):
        nn.ReflectionPad2d((1, 2))
    with pytest.raises(RuntimeError, match=r"padding size should be less than.*\(1, 2, 3\)"):
        nn.ReflectionPad1d(3)(nc.zeros(1, 2, 3))
    with pytest.raises(ValueError, match=r"CircularPad2d.*3D or 4D.*\(2, 3\)"):
        nn.CircularPad2d(1)(nc.zeros(2, 3))
    with pytest.raises(NotImplementedError, match=r"replicate padding of 2 dims.*\(5, 3, 2, 2, 2\)"):
        nn.ReplicationPad2d(1)(nc.zeros(5, 3, 2, 2, 2))


def test_new_module_paths_match_torch():
    torch = require_torch()  # noqa: F841 - torch.nn.modules.* are imported below
    import importlib
    import neurocore.nn.modules as ncm
    for sub in ["padding", "pixelshuffle", "instancenorm", "normalization", "dropout", "activation"]:
        mine = importlib.import_module(f"neurocore.nn.modules.{sub}")
        theirs = importlib.import_module(f"torch.nn.modules.{sub}")
        assert mine.__all__, sub
        for name in mine.__all__:
            assert hasattr(theirs, name), f"torch.nn.modules.{sub} has no {name}"
            assert getattr(mine, name) is getattr(nn, name) is getattr(ncm, name)
