"""nc.save / nc.load and pickling of tensors."""
import copy
import pickle

import numpy as np
import pytest

import neurocore as nc


def test_save_load_roundtrip(tmp_path):
    t = nc.tensor(np.arange(6.0).reshape(2, 3))
    w = nc.tensor([1.0, 2.0], requires_grad=True)
    state = {"t": t, "w": w, "nested": [nc.tensor([1, 2, 3]), {"b": nc.tensor([True, False])}], "step": 3}
    path = tmp_path / "ckpt.nc"
    nc.save(state, path)
    back = nc.load(path)
    np.testing.assert_array_equal(back["t"].numpy(), t.numpy())
    assert back["w"].requires_grad and back["w"].is_leaf
    assert back["nested"][0].dtype == nc.int64 and back["nested"][1]["b"].dtype == nc.bool
    assert back["step"] == 3


def test_save_of_view_saves_its_own_data(tmp_path):
    base = nc.tensor(np.arange(12.0).reshape(3, 4))
    view = base.t()
    nc.save(view, tmp_path / "v")
    np.testing.assert_array_equal(nc.load(tmp_path / "v").numpy(), base.numpy().T)


def test_deepcopy_and_pickle_are_independent():
    t = nc.tensor([1.0, 2.0])
    c = copy.deepcopy(t)
    c.add_(1.0)
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])
    p = pickle.loads(pickle.dumps(t))
    np.testing.assert_array_equal(p.numpy(), [1.0, 2.0])


def test_nonleaf_pickle_raises_and_untrusted_load_refused(tmp_path):
    x = nc.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\[save\]"):
        pickle.dumps(x * 2)
    path = tmp_path / "evil"
    with open(path, "wb") as f:
        pickle.dump(print, f)
    with pytest.raises(pickle.UnpicklingError, match=r"\[load\]"):
        nc.load(path)
