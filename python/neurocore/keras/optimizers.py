"""Keras optimizers with Keras 3's defaults and update formulas, on neurocore's fused C++ steps.

- Adam (lr 1e-3, beta_1 0.9, beta_2 0.999, epsilon 1e-7): Keras divides by sqrt(v) + epsilon with
  the bias correction folded into the step size; PyTorch's formula divides by
  sqrt(v / (1 - beta_2^t)) + eps. The two agree when eps = epsilon / sqrt(1 - beta_2^t), which is
  what is passed to the fused Adam step each iteration.
- SGD (lr 1e-2, momentum 0, nesterov False): Keras keeps m = momentum * m - lr * g; PyTorch's
  buffer b satisfies m = -lr * b while lr is constant, and when lr changes the buffers are
  rescaled by old_lr / new_lr so the two stay equal.
- RMSprop (lr 1e-3, rho 0.9, epsilon 1e-7): Keras puts epsilon inside the square root, so it is
  computed here with a few whole-tensor ops per weight.
- weight_decay (all optimizers; AdamW default 0.004) is decoupled: w -= lr * weight_decay * w.
"""
import math

from .. import _core
from .._tensor import no_grad
from ..nn.utils import clip_grad_norm_


class Optimizer:
    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name=None, **kwargs):
        if isinstance(learning_rate, (int, float)) and learning_rate < 0:
            raise ValueError(f"[{type(self).__name__}] learning_rate must be >= 0, got {learning_rate}")
        self._learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self.built = False
        self._variables = []
        self._slots = {}

    @property
    def learning_rate(self):
        lr = self._learning_rate
        return float(lr(self.iterations)) if callable(lr) else float(lr)

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = float(value)

    lr = learning_rate

    def build(self, variables):
        self._variables = list(variables)
        self.built = True

    def _slot(self, p, key):
        table = self._slots.setdefault(key, {})
        if id(p) not in table:
            table[id(p)] = _core._full(tuple(p.shape), 0, p.dtype)
        return table[id(p)]

    @property
    def variables(self):
        """The optimizer's state tensors (Keras counts them, plus iterations and learning_rate, as
        'Optimizer params' in summary())."""
        return [t for table in self._slots.values() for t in table.values()]

    def _slot_names(self):
        return ()

    def optimizer_param_count(self):
        """(count, bytes) of the state Keras 3 would hold: iterations (int64), learning_rate
        (float32) and the per-weight slots."""
        per_weight = len(self._slot_names())
        n = sum(int(p.numel()) for p in self._variables) * per_weight
        return n + 2, n * 4 + 8 + 4

    def apply(self, params):
        """One update of every parameter that has a gradient."""
        if not self.built:
            self.build(params)
        params = [p for p in params if p.grad is not None]
        if not params:
            return
        with no_grad():
            if self.clipvalue is not None:
                for p in params:
                    p.grad.clamp_(-self.clipvalue, self.clipvalue)
            if self.clipnorm is not None:
                for p in params:
                    clip_grad_norm_([p], self.clipnorm)
            if self.global_clipnorm is not None:
                clip_grad_norm_(params, self.global_clipnorm)
            lr = self.learning_rate  # a schedule sees the iterations done so far, as in Keras
            self.iterations += 1
            self._update(params, [p.grad for p in params], lr)

    def apply_gradients(self, grads_and_vars):
        pairs = list(grads_and_vars)
        for g, v in pairs:
            v.grad = g
        self.apply([v for _, v in pairs])

    def _decay(self, params, lr):
        if self.weight_decay:
            for p in params:
                p.mul_(1.0 - lr * self.weight_decay)

    def get_config(self):
        return {"name": self.name, "learning_rate": self.learning_rate, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Adam(Optimizer):
    """Args: learning_rate (0.001), beta_1 (0.9), beta_2 (0.999), epsilon (1e-7), amsgrad (False),
    weight_decay (None)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def _slot_names(self):
        return ("m", "v", "v_hat") if self.amsgrad else ("m", "v")

    def _update(self, params, grads, lr):
        t = self.iterations
        eps = self.epsilon / math.sqrt(1.0 - self.beta_2 ** t)
        m = [self._slot(p, "m") for p in params]
        v = [self._slot(p, "v") for p in params]
        v_hat = [self._slot(p, "v_hat") if self.amsgrad else None for p in params]
        _core._adam_step(params, grads, m, v, v_hat, [t] * len(params), lr, self.beta_1, self.beta_2, eps,
                         float(self.weight_decay or 0.0), self.amsgrad, False, True)

    def get_config(self):
        return dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                    amsgrad=self.amsgrad)


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.004)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs)


class SGD(Optimizer):
    """Args: learning_rate (0.01), momentum (0.0), nesterov (False), weight_decay (None)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if momentum < 0 or momentum > 1:
            raise ValueError(f"[SGD] momentum must be in [0, 1], got {momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self._last_lr = None

    def _slot_names(self):
        return ("momentum",) if self.momentum else ()

    def _update(self, params, grads, lr):
        self._decay(params, lr)
        table = self._slots.setdefault("momentum", {})
        bufs = [table.get(id(p)) for p in params]
        if self.momentum and self._last_lr not in (None, lr) and lr > 0:
            for b in bufs:
                if b is not None:
                    b.mul_(self._last_lr / lr)
        self._last_lr = lr
        out = _core._sgd_step(params, grads, bufs, lr, self.momentum, 0.0, 0.0, self.nesterov and self.momentum > 0,
                              False)
        if self.momentum:
            for p, b in zip(params, out):
                table[id(p)] = b

    def get_config(self):
        return dict(super().get_config(), momentum=self.momentum, nesterov=self.nesterov)


class RMSprop(Optimizer):
    """Args: learning_rate (0.001), rho (0.9), momentum (0.0), epsilon (1e-7), centered (False)."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def _slot_names(self):
        return ("velocity",) + (("momentum",) if self.momentum else ()) + (("average_gradient",) if self.centered
                                                                             else ())

    def _update(self, params, grads, lr):
        self._decay(params, lr)
        rho = self.rho
        for p, g in zip(params, grads):
            v = self._slot(p, "velocity")
            v.mul_(rho).add_(g * g * (1.0 - rho))
            denom = v
            if self.centered:
                a = self._slot(p, "average_gradient")
                a.mul_(rho).add_(g * (1.0 - rho))
                denom = v - a * a
            increment = g * lr / (denom + self.epsilon).sqrt()
            if self.momentum:
                m = self._slot(p, "momentum")
                m.mul_(self.momentum).add_(increment)
                p.sub_(m)
            else:
                p.sub_(increment)

    def get_config(self):
        return dict(super().get_config(), rho=self.rho, momentum=self.momentum, epsilon=self.epsilon,
                    centered=self.centered)


_BY_NAME = {"adam": Adam, "adamw": AdamW, "sgd": SGD, "rmsprop": RMSprop}


def get(identifier):
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"[compile] unknown optimizer {identifier!r}; expected one of {sorted(_BY_NAME)} or a "
                     "keras.optimizers.Optimizer")


def serialize(opt):
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


def deserialize(config):
    classes = {"Adam": Adam, "AdamW": AdamW, "SGD": SGD, "RMSprop": RMSprop}
    return classes[config["class_name"]].from_config(config["config"])
