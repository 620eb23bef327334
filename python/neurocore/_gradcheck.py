"""``nc.autograd.gradcheck`` / ``gradgradcheck`` with PyTorch's signatures and semantics.

gradcheck compares, for every input that requires grad and every differentiable output, the
Jacobian that backward computes (one vector-Jacobian product per output element) with central
finite differences ``(f(x + eps) - f(x - eps)) / (2 eps)``; an element passes when
``|analytical - numerical| <= atol + rtol * |numerical|``. It also checks that backward is
reentrant (the same gradients twice, within ``nondet_tol``), that outputs which do not require
grad have a zero numerical Jacobian, and optionally the gradients' dtypes. ``fast_mode`` is
accepted and runs the full check. Use float64 inputs: float32 differences are too coarse.
"""
import warnings

import numpy as np

from . import _core
from ._tensor import tensor

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """Raised by gradcheck and gradgradcheck when a check fails (``raise_exception=True``)."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _is_tensor(x):
    return isinstance(x, _core.Tensor)


def _outputs(fn, args):
    return tuple(o for o in _as_tuple(fn(*args)))


def _numpy(t):
    return t.detach().numpy().astype(np.float64).reshape(-1)


def _numerical_jacobians(fn, inputs, checked, out_count, eps):
    """For each checked input index: a list (per output) of (numel_in, numel_out) matrices."""
    jacobians = {}
    for i in checked:
        x = inputs[i]
        base = x.detach().numpy().copy()
        flat = base.reshape(-1)
        columns = [[] for _ in range(out_count)]
        for j in range(flat.size):
            values = []
            for delta in (-eps, eps):
                perturbed = flat.copy()
                perturbed[j] += delta
                arg = tensor(perturbed.reshape(base.shape), dtype=x.dtype, requires_grad=x.requires_grad)
                args = tuple(arg if k == i else a for k, a in enumerate(inputs))
                values.append([_numpy(o) for o in _outputs(fn, args) if _is_tensor(o)])
            for o in range(out_count):
                columns[o].append((values[1][o] - values[0][o]) / (2 * eps))
        jacobians[i] = [np.stack(col) if col else np.zeros((0, 0)) for col in columns]
    return jacobians


def _analytical_jacobians(outputs, inputs, checked, check_grad_dtypes):
    """Same layout as the numerical Jacobians, from one backward per output element."""
    jac = {i: [np.zeros((inputs[i].numel(), o.numel())) for o in outputs] for i in checked}
    targets = [inputs[i] for i in checked]
    for o_idx, out in enumerate(outputs):
        if not out.requires_grad:
            continue
        for k in range(out.numel()):
            seed = np.zeros(out.numel())
            seed[k] = 1.0
            grads = _core._autograd_grad([out], targets, [tensor(seed.reshape(tuple(out.shape)), dtype=out.dtype)],
                                         True, False, True)
            for i, g in zip(checked, grads):
                if g is None:
                    continue
                if check_grad_dtypes and g.dtype != inputs[i].dtype:
                    raise GradcheckError("Gradient has dtype mismatch")
                if tuple(g.shape) != tuple(inputs[i].shape):
                    raise GradcheckError(f"Gradient has incorrect shape: got {tuple(g.shape)}, expected "
                                         f"{tuple(inputs[i].shape)}")
                jac[i][o_idx][:, k] = _numpy(g)
    return jac


def _fmt(m):
    return repr(tensor(m))


def _gradcheck(func, inputs, eps, atol, rtol, nondet_tol, check_grad_dtypes):
    checked = [i for i, x in enumerate(inputs) if _is_tensor(x) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of them "
                         "have requires_grad=True.")
    for i in checked:
        if inputs[i].dtype != _core.dtype.float64:
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating point or complex. "
                          "This check will likely fail if all the inputs are not of double precision floating point "
                          "or complex. ")
    outputs = [o for o in _outputs(func, inputs) if _is_tensor(o)]
    numerical = _numerical_jacobians(func, inputs, checked, len(outputs), eps)
    for o_idx, out in enumerate(outputs):
        if not out.requires_grad:  # a non-differentiable output must not move either
            for i in checked:
                if np.any(numerical[i][o_idx] != 0):
                    raise GradcheckError(f"Numerical gradient for function expected to be zero (output {o_idx} does "
                                         f"not require grad, but changes with input {i})")
    diff_outputs = [o for o in outputs if o.requires_grad]
    if not diff_outputs:
        return True
    analytical = _analytical_jacobians(outputs, inputs, checked, check_grad_dtypes)
    again = _analytical_jacobians(outputs, inputs, checked, check_grad_dtypes)
    for i in checked:
        for o_idx, out in enumerate(outputs):
            if not out.requires_grad:
                continue
            a, n = analytical[i][o_idx], numerical[i][o_idx]
            if not np.all(np.abs(a - n) <= atol + rtol * np.abs(n)):
                raise GradcheckError(f"Jacobian mismatch for output {o_idx} with respect to input {i},\n"
                                     f"numerical:{_fmt(n)}\nanalytical:{_fmt(a)}\n")
            if np.abs(a - again[i][o_idx]).max(initial=0.0) > nondet_tol:
                raise GradcheckError("Backward is not reentrant, i.e., running backward with same input and "
                                     "grad_output multiple times gives different values, although analytical "
                                     "gradient matches numerical gradient.The tolerance for nondeterminism was "
                                     f"{nondet_tol}.")
    return True


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, nondet_tol=0.0,
              check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
              check_batched_forward_grad=False, check_forward_ad=False, check_backward_ad=True, fast_mode=False,
              masked=None):
    """True if the gradients computed by backward for the inputs that require grad match finite
    differences; otherwise raises :class:`GradcheckError` (``raise_exception=False``: returns False).

    Args:
        func: takes the inputs, returns a tensor or a tuple of tensors.
        inputs: a tensor or a tuple of arguments (tensors that require grad are checked).
        eps: finite-difference step. Default: ``1e-6``. atol: Default: ``1e-5``. rtol: Default: ``1e-3``.
        raise_exception: Default: ``True``. nondet_tol: allowed difference between two backward
            runs. Default: ``0.0``. check_grad_dtypes: Default: ``False``.
        The other keywords of PyTorch's signature are accepted; the forward-mode and batched checks
        they enable do not exist here.
    """
    inputs = _as_tuple(inputs)
    try:
        return _gradcheck(func, inputs, eps, atol, rtol, nondet_tol, check_grad_dtypes)
    except GradcheckError:
        if raise_exception:
            raise
        return False


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  gen_non_contig_grad_outputs=False, raise_exception=True, nondet_tol=0.0, check_undefined_grad=True,
                  check_grad_dtypes=False, check_batched_grad=False, check_fwd_over_rev=False, check_rev_over_rev=True,
                  fast_mode=False, masked=False):
    """gradcheck of the gradients: checks the second derivatives of `func` by running gradcheck on
    ``(inputs, grad_outputs) -> autograd.grad(func(inputs), inputs, grad_outputs, create_graph=True)``.
    `grad_outputs` default to random values in [-1, 1) drawn from neurocore's generator (float64,
    requiring grad)."""
    inputs = _as_tuple(inputs)
    if grad_outputs is None:
        outs = [o for o in _outputs(func, inputs) if _is_tensor(o) and o.requires_grad]
        grad_outputs = tuple((_core._uniform_(_core._empty(tuple(o.shape), o.dtype), -1.0, 1.0)).requires_grad_(True)
                             for o in outs)
    grad_outputs = _as_tuple(grad_outputs)
    n_grads = len(grad_outputs)
    diff_idx = [i for i, x in enumerate(inputs) if _is_tensor(x) and x.requires_grad]

    def first_derivatives(*args):
        input_args, seeds = args[:-n_grads], args[-n_grads:]
        outs = [o for o in _outputs(func, input_args) if _is_tensor(o) and o.requires_grad]
        grads = _core._autograd_grad(outs, [input_args[i] for i in diff_idx], list(seeds), True, True, True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_derivatives, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, nondet_tol=nondet_tol, check_grad_dtypes=check_grad_dtypes)
