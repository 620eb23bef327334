"""Worker of test_fuzz_api.py: runs fuzz cases [start, stop) of a seed and reports each on stdout.

Each case is drawn from its own generator, numpy.random.default_rng((seed, case)), so any case can
be rerun alone: ``python fuzz_worker.py SEED CASE CASE+1 -v``. Before a case runs the worker prints
``CASE n``; after it, ``OK n`` or ``BAD n <what differs>``. A crash leaves a ``CASE n`` without its
answer, which is how the parent finds the case that killed the process.

The oracle is PyTorch: both libraries run the same call on the same data; both must succeed with
equal shapes, dtypes and values (NaN where PyTorch has NaN), or both must raise.
"""
import sys
import traceback

import numpy as np
import torch

import neurocore as nc

torch.set_num_threads(1)

DTYPES = {"float32": (np.float32, nc.float32, torch.float32), "float64": (np.float64, nc.float64, torch.float64),
          "int64": (np.int64, nc.int64, torch.int64), "bool": (np.bool_, nc.bool, torch.bool)}
ERRORS = (RuntimeError, ValueError, TypeError, IndexError, MemoryError, OverflowError)


class Case:
    """Draws one input tensor: a shape, a dtype, values with NaN/Inf, a layout (strided views)."""

    def __init__(self, rng):
        self.rng = rng

    def shape(self, max_dims=4, max_size=5):
        nd = int(self.rng.integers(0, max_dims + 1))
        return tuple(int(self.rng.choice([0, 1, 2, 3, max_size])) if self.rng.random() < 0.2
                     else int(self.rng.integers(1, max_size + 1)) for _ in range(nd))

    def values(self, shape, dtype):
        n = int(np.prod(shape)) if shape else 1
        if dtype == "bool":
            return np.asarray(self.rng.random(n).reshape(shape) < 0.5)
        if dtype == "int64":
            return np.asarray(self.rng.integers(-5, 6, size=n).reshape(shape).astype(np.int64))
        v = self.rng.normal(0, 2, size=n)
        if n and self.rng.random() < 0.3:  # edge values
            k = int(self.rng.integers(1, n + 1))
            v[self.rng.integers(0, n, size=k)] = self.rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e-30], size=k)
        return np.asarray(v.reshape(shape).astype(DTYPES[dtype][0]))

    def array(self, dtype=None, shape=None):
        dtype = dtype or str(self.rng.choice(list(DTYPES)))
        shape = self.shape() if shape is None else shape
        a = self.values(shape, dtype)
        layout = self.rng.integers(0, 4) if a.ndim else 0
        if layout == 1:  # a transposed view of a contiguous array
            a = np.ascontiguousarray(a.T).T
        elif layout == 2:  # every other element of a bigger array
            big = self.values(tuple(2 * s for s in shape), dtype)
            big[tuple(slice(None, None, 2) for _ in shape)] = a
            a = big[tuple(slice(None, None, 2) for _ in shape)]
        elif layout == 3:  # negative strides
            a = np.ascontiguousarray(a[tuple(slice(None, None, -1) for _ in shape)])[tuple(slice(None, None, -1) for _ in shape)]
        return a

    def dim(self, ndim):
        return int(self.rng.integers(-max(ndim, 1), max(ndim, 1)))


def both(arrays, layout):
    """The same inputs as neurocore and torch tensors (neurocore's through the layout under test)."""
    ours, theirs = [], []
    for a in arrays:
        if isinstance(a, np.ndarray):
            if layout == "swapped":  # the same values stored big-endian: nc.tensor converts them
                t = nc.tensor(a.astype(a.dtype.newbyteorder(">")))
            else:
                t = nc.tensor(a) if layout == "copy" else nc.as_tensor(np.array(a, order="C"))
            if layout == "view" and a.ndim >= 2:  # exercise strided tensors: a transposed view, transposed back
                t = nc.as_tensor(np.ascontiguousarray(np.swapaxes(a, 0, 1))).transpose(0, 1)
            ours.append(t)
            theirs.append(torch.tensor(np.array(a, order="C")))  # (ascontiguousarray makes 0-d 1-d)
        else:
            ours.append(a)
            theirs.append(a)
    return ours, theirs


def draw(case):
    """(name, inputs, neurocore function, torch function) of one fuzz case."""
    c, rng = case, case.rng
    kind = int(rng.integers(0, 11))
    if kind == 0:
        name = str(rng.choice(["exp", "log", "sqrt", "abs", "neg", "tanh", "sigmoid", "relu", "floor", "ceil",
                               "sin", "cos", "reciprocal", "square", "sign", "log1p", "expm1", "rsqrt"]))
        a = c.array(dtype=str(rng.choice(["float32", "float64"])))
        return name, [a], lambda x: getattr(x, name)(), lambda x: getattr(x, name)()
    if kind == 1:
        name = str(rng.choice(["add", "sub", "mul", "div", "maximum", "minimum", "eq", "lt", "ge", "ne"]))
        shape = c.shape(3, 4)
        other = tuple(s if rng.random() < 0.7 else 1 for s in shape[int(rng.integers(0, len(shape) + 1)):])
        dt = str(rng.choice(["float32", "float64", "int64"]))
        a, b = c.array(dt, shape), c.array(str(rng.choice([dt, "float32", "int64"])), other)
        if name == "div" and dt == "int64":
            name = "mul"
        return name, [a, b], lambda x, y: getattr(nc, name)(x, y), lambda x, y: getattr(torch, name)(x, y)
    if kind == 2:
        name = str(rng.choice(["sum", "mean", "amax", "amin", "argmax", "argmin"]))
        a = c.array(dtype=str(rng.choice(["float32", "float64"])))
        d = c.dim(a.ndim) if rng.random() < 0.7 else None
        keep = bool(rng.random() < 0.5)
        if name in ("argmax", "argmin") or d is not None:
            return f"{name}(dim={d}, keepdim={keep})", [a], lambda x: getattr(x, name)(d, keepdim=keep), \
                lambda x: getattr(x, name)(d, keepdim=keep)
        return name, [a], lambda x: getattr(x, name)(), lambda x: getattr(x, name)()
    if kind == 3:
        a = c.array()
        op = int(rng.integers(0, 6))
        if op == 0:
            dims = tuple(int(d) for d in rng.permutation(a.ndim))
            return f"permute{dims}", [a], lambda x: x.permute(dims), lambda x: x.permute(dims)
        if op == 1:
            dims = tuple(c.dim(a.ndim) for _ in range(int(rng.integers(0, a.ndim + 1))))
            return f"flip{dims}", [a], lambda x: x.flip(dims), lambda x: x.flip(dims)
        if op == 2:
            d0, d1 = c.dim(a.ndim), c.dim(a.ndim)
            return f"transpose({d0},{d1})", [a], lambda x: x.transpose(d0, d1).reshape(-1), \
                lambda x: x.transpose(d0, d1).reshape(-1)
        if op == 3:
            reps = tuple(int(r) for r in rng.integers(0, 3, size=a.ndim + int(rng.integers(0, 2))))
            return f"repeat{reps}", [a], lambda x: x.repeat(*reps), lambda x: x.repeat(*reps)
        if op == 4:
            d = c.dim(a.ndim)
            return f"unsqueeze({d})+flatten", [a], lambda x: x.unsqueeze(d).flatten(), lambda x: x.unsqueeze(d).flatten()
        d = c.dim(a.ndim) if rng.random() < 0.5 else None
        return f"squeeze({d})", [a], lambda x: x.squeeze(d) if d is not None else x.squeeze(), \
            lambda x: x.squeeze(d) if d is not None else x.squeeze()
    if kind == 4:
        a = c.array(dtype="float32")
        d = c.dim(a.ndim)
        n = int(rng.integers(-1, 5))
        if rng.random() < 0.5:
            return f"chunk({n},{d})", [a], lambda x: list(x.chunk(n, d)), \
                lambda x: list(x.chunk(n, d))
        size = a.shape[d] if a.ndim else 1
        idx = rng.integers(-1, size + 1, size=int(rng.integers(0, 4)))
        return f"index_select({d},{idx.tolist()})", [a], \
            lambda x: nc.index_select(x, d, nc.tensor(idx, dtype=nc.int64)), \
            lambda x: torch.index_select(x, d, torch.tensor(idx, dtype=torch.long))
    if kind == 5:
        a = c.array(dtype=str(rng.choice(["float32", "float64"])))
        lo = float(rng.choice([-1.0, 0.0, np.nan, -np.inf]))
        hi = float(rng.choice([1.0, 2.0, np.nan, np.inf]))
        if rng.random() < 0.5:
            return f"clamp({lo},{hi})", [a], lambda x: x.clamp(lo, hi), lambda x: x.clamp(lo, hi)
        d = c.dim(a.ndim)
        name = str(rng.choice(["softmax", "log_softmax"]))
        return f"{name}({d})", [a], lambda x: getattr(x, name)(d), lambda x: getattr(x, name)(d)
    if kind == 6:
        shape = c.shape(3, 4)
        a, m = c.array(shape=shape), c.array("bool", shape)
        v = rng.choice([0, 1, 2.5, True])
        v = bool(v) if isinstance(v, np.bool_) else float(v) if isinstance(v, float) else int(v)
        return f"masked_fill({v!r})", [a, m], lambda x, y: x.masked_fill(y, v), lambda x, y: x.masked_fill(y, v)
    if kind == 7:
        a = c.array(dtype=str(rng.choice(["float32", "float64", "int64"])))
        if a.ndim == 0:
            a = a.reshape(1)
        d = c.dim(a.ndim)
        size = a.shape[d]
        idx_shape = tuple(int(rng.integers(0, s + 1)) for s in a.shape)
        idx = rng.integers(-1, size + 1, size=idx_shape).astype(np.int64)
        return f"gather({d})", [a, idx], lambda x, i: nc.gather(x, d, i), lambda x, i: torch.gather(x, d, i)
    if kind == 9:  # in-place ops through views: expanded (overlapping) targets must raise, others match
        a = c.array(dtype=str(rng.choice(["float32", "float64"])))
        view = int(rng.integers(0, 4)) if a.ndim else 0
        op = int(rng.integers(0, 5))
        views = [lambda x: x, lambda x: x.transpose(0, -1), lambda x: x[..., ::2],
                 lambda x: x.unsqueeze(0).expand(2, *x.shape)]
        ops = [lambda v: v.add_(1), lambda v: v.mul_(2), lambda v: v.clamp_(-1, 1), lambda v: v.fill_(3),
               lambda v: v.copy_(v.flip(-1) if v.ndim else v)]

        def run(x):
            ops[op](views[view](x))
            return x
        return f"inplace(view {view}, op {op})", [a], run, lambda x: run(x.clone())
    if kind == 10:  # gradients of unary ops in float64
        name = str(rng.choice(["exp", "tanh", "sigmoid", "abs", "relu", "sin", "square", "neg"]))
        a = c.array(dtype="float64")

        def grad(x):
            x = x.detach().clone().requires_grad_(True)
            y = getattr(x, name)()
            (y * y).sum().backward()
            return x.grad
        return f"grad {name}", [a], grad, grad
    # factories with sizes that may be negative, empty or huge
    sizes = tuple(int(rng.choice([-1, 0, 1, 3, 2**20, 2**31, 2**62])) for _ in range(int(rng.integers(1, 4))))
    name = str(rng.choice(["zeros", "ones", "empty"]))
    if np.prod([float(s) for s in sizes]) > 2**28 and all(s >= 0 for s in sizes):  # valid but too big to fill here
        return f"{name}{sizes}", [], lambda: nc.zeros(*sizes).shape if 0 in sizes else None, \
            lambda: torch.zeros(*sizes).shape if 0 in sizes else None
    return f"{name}{sizes}", [], lambda: getattr(nc, name)(*sizes).shape, lambda: getattr(torch, name)(*sizes).shape


def same(ours, theirs):
    """None when neurocore's answer equals torch's, else what differs."""
    if isinstance(theirs, (list, tuple)) and not isinstance(theirs, torch.Size):
        if len(ours) != len(theirs):
            return f"{len(ours)} results, torch {len(theirs)}"
        for o, t in zip(ours, theirs):
            d = same(o, t)
            if d:
                return d
        return None
    if theirs is None or isinstance(theirs, torch.Size):
        return None if (ours is None and theirs is None) or tuple(ours) == tuple(theirs) else f"{ours} vs {theirs}"
    t = theirs.detach().numpy()
    o = ours.numpy()
    if o.shape != t.shape:
        return f"shape {o.shape} vs torch {t.shape}"
    if o.dtype != t.dtype:
        return f"dtype {o.dtype} vs torch {t.dtype}"
    if o.dtype.kind == "f":
        tol = dict(rtol=2e-5, atol=1e-6) if o.dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
        if not np.allclose(o, t, equal_nan=True, **tol):
            return f"values {o.ravel()[:6]} vs torch {t.ravel()[:6]}"
    elif not np.array_equal(o, t):
        return f"values {o.ravel()[:6]} vs torch {t.ravel()[:6]}"
    return None


def run_case(seed, i, verbose=False):
    rng = np.random.default_rng((seed, i))
    name, inputs, ours_fn, torch_fn = draw(Case(rng))
    layout = str(rng.choice(["copy", "share", "view", "swapped"]))
    try:
        with np.errstate(all="ignore"):
            ours_in, torch_in = both(inputs, layout)
    except ERRORS as e:
        return f"{name}: neurocore refused the input ({type(e).__name__}: {e})"
    try:
        theirs = torch_fn(*torch_in)
        torch_error = None
    except Exception as e:  # noqa: BLE001 - torch's error types vary
        torch_error = e
    try:
        ours = ours_fn(*ours_in)
        our_error = None
    except ERRORS as e:
        our_error = e
    except Exception as e:  # noqa: BLE001 - an unexpected exception type is a finding
        return f"{name}: unexpected {type(e).__name__}: {e}"
    if verbose:
        print(name, layout, [getattr(a, "shape", a) for a in inputs], "ours:", our_error or ours,
              "torch:", torch_error or theirs)
    if torch_error is not None and our_error is not None:
        return None
    if torch_error is not None:
        return f"{name}: torch raises ({str(torch_error)[:80]}) but neurocore returned"
    if our_error is not None:
        return f"{name}: neurocore raises ({type(our_error).__name__}: {str(our_error)[:100]}) but torch returned"
    d = same(ours, theirs)
    return f"{name} [{layout}]: {d}" if d else None


def main():
    seed, start, stop = (int(v) for v in sys.argv[1:4])
    verbose = "-v" in sys.argv
    for i in range(start, stop):
        print(f"CASE {i}", flush=True)
        try:
            bad = run_case(seed, i, verbose)
        except Exception:  # noqa: BLE001 - a failure of the harness itself is reported, not hidden
            bad = "harness error: " + traceback.format_exc().replace("\n", " | ")
        print(f"BAD {i} {' '.join(bad.split())}" if bad else f"OK {i}", flush=True)


if __name__ == "__main__":
    main()
