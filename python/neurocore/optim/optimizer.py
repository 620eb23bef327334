"""Optimizer base class: owns parameter groups, state, zero_grad and state_dict; each optimizer
only creates its per-parameter state and makes one fused C++ call per group."""
import collections
import math

import numpy as np

from .._core import Tensor
from .._tensor import enable_grad, tensor


class _RequiredParameter:
    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = collections.defaultdict(dict)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group):
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        else:
            params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        group = dict(param_group, params=params)
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def step(self, closure=None):
        """Updates every parameter that has a gradient; returns closure() when given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads = [], []
            for p in group["params"]:  # reads each .grad once (every read makes a Python wrapper)
                g = p.grad
                if g is not None:
                    params.append(p)
                    grads.append(g)
            if params:
                self._update_group(group, params, grads)
        return loss

    def _update_group(self, group, params, grads):
        raise NotImplementedError

    def _state_tensor(self, p, key, fill=0.0):
        """The per-parameter state tensor `key`, created like p filled with `fill` on first use."""
        st = self.state[p]
        if key not in st:
            st[key] = tensor(np.full(tuple(p.shape), fill), dtype=p.dtype)
        return st[key]

    def _advance_step(self, params):
        steps = []
        for p in params:
            st = self.state[p]
            st["step"] = st.get("step", 0) + 1
            steps.append(int(st["step"]))
        return steps

    # --- state_dict in PyTorch's layout: parameters are numbered in group order -------------------
    def state_dict(self):
        index = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {k: (tensor(float(v)) if k == "step" else v.clone() if isinstance(v, Tensor) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for mine, theirs in zip(self.param_groups, groups):
            if len(mine["params"]) != len(theirs["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                                 "optimizer's group")
        id_map = {}
        for mine, theirs in zip(self.param_groups, groups):
            id_map.update(zip(theirs["params"], mine["params"]))
            for k, v in theirs.items():
                if k != "params":
                    mine[k] = v
        self.state = collections.defaultdict(dict)
        for idx, st in state_dict["state"].items():
            p = id_map[int(idx)]
            self.state[p] = {k: self._load_value(k, v, p) for k, v in st.items()}

    @staticmethod
    def _load_value(key, value, param):
        if key == "step":
            step = float(value.item() if hasattr(value, "item") else value)
            # A negative, fractional or infinite step count would feed bias corrections such as
            # 1 - beta ** step silently wrong values (a zero or negative divisor).
            if not (math.isfinite(step) and step >= 0 and step == int(step)):
                raise ValueError(f"[load_state_dict] optimizer state 'step' must be a non-negative integer, got {step}")
            return int(step)
        if isinstance(value, Tensor):
            return value.to(param.dtype).clone()
        if hasattr(value, "detach") or isinstance(value, np.ndarray):  # torch tensor or NumPy array
            arr = value.detach().cpu().numpy() if hasattr(value, "detach") else value
            return tensor(np.array(arr, order="C"), dtype=param.dtype)  # (ascontiguousarray makes 0-d 1-d)
        return value

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)


def _check(cond, message):
    if not cond:
        raise ValueError(message)


def _check_lr(lr):
    _check(lr >= 0.0, f"Invalid learning rate: {lr}")
