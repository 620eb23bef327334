"""Base of the optimizers whose update is NumPy array arithmetic instead of a fused C++ kernel
(Adadelta, Adamax, NAdam, RAdam): each parameter's update runs in the parameter's dtype, in the
order of operations of PyTorch's single-tensor implementation, on NumPy views of the state
tensors; the new values are copied into the parameter with one ``copy_`` (which bumps its version
counter, so autograd notices a parameter changed under a saved graph)."""

from .._tensor import from_numpy, no_grad
from .optimizer import Optimizer


def lerp_(start, end, weight):
    """``start.lerp_(end, weight)`` with PyTorch's two-sided formula (exact at both ends)."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


class ArrayOptimizer(Optimizer):
    _state_keys = ()  # per-parameter state tensors shaped like the parameter, created as zeros

    def _update_group(self, group, params, grads):
        steps = self._advance_step(params)
        with no_grad():
            for p, grad, step in zip(params, grads, steps):
                states = [self._state_tensor(p, key).detach().numpy() for key in self._state_keys]
                x = p.detach().numpy().copy()
                g = grad.detach().numpy()
                if group["maximize"]:
                    g = -g
                self._update(group, p, x, g, states, step)
                p.detach().copy_(from_numpy(x))

    def _update(self, group, param, x, grad, states, step):
        """Updates the parameter values `x` and the `states` arrays in place."""
        raise NotImplementedError

