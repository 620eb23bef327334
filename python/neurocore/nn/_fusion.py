"""Inference fusion inside Sequential.

With autograd off, a convolution or a Linear layer directly followed by a ReLU runs as one kernel
call: the ReLU is applied in the convolution's or the GEMM's store instead of in a second pass over
the output, as inference engines fuse them, and Dropout in eval mode (the identity) is not called
at all. Only plain modules take part (exact classes, no hooks), so what a user can observe does not
change; with autograd on, every module runs as usual.

At batch 1 the Python around the kernels (a module call, argument resolution and checks per layer)
cost a third of a small CNN's forward. So a Sequential run under no_grad first compiles its modules
into a plan: a tuple of steps, each naming the C++ op and its already resolved arguments (stride,
per-side padding, pooling geometry, whether a ReLU is fused), and then runs the steps in one C++
call (cpp/bindings/bind_inference_plan.cpp). What can change between calls is handled so that the
plan never answers for a stale model:
  * the module list is compared by identity on every call (a replaced, added or removed layer);
  * any attribute assignment on any Module (``conv.stride = 2``, ``pool.kernel_size = 3``,
    ``model.train()``, ``relu.inplace = True``) bumps ``module._attribute_version`` and the plan is
    rebuilt;
  * forward hooks and pre-hooks are checked on every call (a hooked module runs through its
    ``__call__``, so its hooks fire);
  * weights and biases are read from the module's parameter registry on every call, so a
    reassigned, reloaded or converted (``.double()``) parameter is the one used;
  * the input's rank is part of the plan (an unbatched image or a rank a layer refuses runs the
    plain module, which gives the usual error naming the layer and the shapes).
Geometry given as a list (mutable in place) is not compiled: that module runs through its own
forward on every call.
"""
import threading
import weakref

from .. import _core
from .._core import Tensor
from ..autograd import _anomaly_enabled
from . import module as _module
from ._conv_functional import _conv_args, _pool_args
from .activation import ReLU
from .conv import Conv1d, Conv2d
from .dropout import Dropout
from .linear import Flatten, Identity, Linear, _weight_and_bias
from .pooling import MaxPool1d, MaxPool2d


def _plain(module):
    return not module._forward_hooks and not module._forward_pre_hooks


def _fuses(first, second):
    return type(first) in (Conv1d, Conv2d, Linear) and type(second) is ReLU and _plain(first) and _plain(second)


def _linear_relu(linear, input):
    """relu(linear(input)) as one call: the same GEMM with the ReLU in its store (same values)."""
    weight, bias = _weight_and_bias(linear)
    return _core._linear_act(input, weight, bias, "relu")


def _is_identity(module):
    return (type(module) is Identity or (type(module) is Dropout and not module.training)) and _plain(module)


# Set for its thread by a model tracer (nc.export, nc.onnx), which records the layers' ops in the
# order they are written (its optimiser fuses a convolution with the ReLU after it).
_tracing = threading.local()


def pool_before_relu():
    """True when a ReLU followed by a max pooling may run after it (see _run_modules): autograd on
    and no tracer recording the layers' ops in their written order. keras.Sequential asks too."""
    return _core.is_grad_enabled() and not getattr(_tracing, "on", False)


def _pool_first(first, second):
    """True for a plain ReLU followed by a plain max pooling (without indices): they commute."""
    return (type(first) is ReLU and type(second) in (MaxPool1d, MaxPool2d) and not second.return_indices
            and _plain(first) and _plain(second))


def _run_modules(modules, input):
    """The plain path: each module called in turn (Conv/Linear + ReLU pairs fused when autograd is off).

    With autograd on, a ReLU followed by a max pooling runs after it: max_pool(relu(x)) equals
    relu(max_pool(x)) value for value (max commutes with the monotone ReLU; a NaN propagates
    through both), and so do their gradients (where the window's maximum is <= 0 both give 0), but
    the ReLU and its backward then pass over the pooled quarter of the elements instead of all.
    """
    if _core.is_grad_enabled():
        reorder = pool_before_relu()
        i, n = 0, len(modules)
        while i < n:
            module = modules[i]
            if reorder and type(module) is ReLU and i + 1 < n and _pool_first(module, modules[i + 1]):
                input = module(modules[i + 1](input))
                i += 2
            else:
                input = module(input)
                i += 1
        return input
    i, n = 0, len(modules)
    while i < n:
        if _is_identity(modules[i]):
            i += 1
        elif i + 1 < n and _fuses(modules[i], modules[i + 1]):
            first = modules[i]
            input = _linear_relu(first, input) if type(first) is Linear else first._conv_forward(input, relu=True)
            i += 2
        else:
            input = modules[i](input)
            i += 1
    return input


# ---- compiled plans -----------------------------------------------------------------------------

# Step kinds, numbered as the C++ runner's (bind_inference_plan.cpp's Kind).
_CALL, _CONV, _LINEAR, _LINEAR_RELU, _MAX_POOL, _FLATTEN, _RELU, _RELU_ = range(8)


def _geometry(value):
    """True when `value` cannot change without an attribute assignment (an int or a tuple of ints)."""
    return type(value) is int or (type(value) is tuple and all(type(v) is int for v in value))


def _conv_step(conv, relu, rank):
    """(step, output rank) for a Conv2d, or None when it must run through its own forward."""
    params = conv._parameters
    weight = params.get("weight")
    if rank != 4 or weight is None or "bias" not in params or weight.dim() != 4:
        return None
    stride, padding, dilation, groups = conv.stride, conv.padding, conv.dilation, conv.groups
    if not (_geometry(stride) and _geometry(dilation) and type(groups) is int
            and (_geometry(padding) or padding == "valid")):
        return None  # 'same' padding depends on the weight's shape, which may change; lists may mutate
    op = type(conv).__name__
    stride, pads, dilation = _conv_args(stride, padding, dilation, None, 2, op)
    return (_CONV, params, stride, pads, dilation, groups, op, relu), 4


def _max_pool_step(pool, rank):
    args = (pool.kernel_size, pool.stride, pool.padding, pool.dilation)
    if rank not in (3, 4) or pool.return_indices or not all(_geometry(a) for a in args):
        return None
    k, s, p, d = _pool_args(*args, 2, "MaxPool2d")
    return (_MAX_POOL, k, s, p, d, bool(pool.ceil_mode), "MaxPool2d"), rank


def _flatten_step(flatten, rank):
    start, end = flatten.start_dim, flatten.end_dim
    if rank is None or type(start) is not int or type(end) is not int or not rank:
        return None
    s, e = start % rank if -rank <= start < rank else None, end % rank if -rank <= end < rank else None
    if s is None or e is None or s > e:
        return None  # out of range: the module's own call raises the op's error
    return (_FLATTEN, start, end), rank - (e - s)


def _linear_step(linear, relu, rank):
    params = linear._parameters
    if params.get("weight") is None or "bias" not in params:
        return None
    return (_LINEAR_RELU if relu else _LINEAR, params), rank


def _compile(modules, rank):
    """The steps running `modules` on an input of rank `rank` under no_grad, and the hook registries
    of the modules whose calls the steps replace (checked before every run)."""
    steps, watched = [], []
    i, n = 0, len(modules)
    while i < n:
        m = modules[i]
        kind = type(m)
        plain = _plain(m)
        relu = i + 1 < n and type(modules[i + 1]) is ReLU and _plain(modules[i + 1])
        compiled = None
        if plain and (kind is Identity or (kind is Dropout and not m.training)):
            watched.append(m)
            i += 1
            continue
        if plain and kind is Conv2d:
            compiled = _conv_step(m, relu, rank)
        elif plain and kind is Linear:
            compiled = _linear_step(m, relu, rank)
        elif plain and kind is MaxPool2d:
            compiled = _max_pool_step(m, rank)
        elif plain and kind is Flatten:
            compiled = _flatten_step(m, rank)
        elif plain and kind is ReLU:
            compiled = (_RELU_ if m.inplace else _RELU,), rank
        if compiled is not None:
            step, rank = compiled
            steps.append(step)
            watched.append(m)
            if relu and kind in (Conv2d, Linear):  # the ReLU ran in the layer's store
                watched.append(modules[i + 1])
                i += 1
            i += 1
            continue
        # Anything else runs through its own call (hooks, Conv1d, custom modules), fused with a
        # following ReLU as the plain path does.
        if i + 1 < n and _fuses(m, modules[i + 1]):
            steps.append((_CALL, _FusedPair(m)))  # calls neither module: a hook added later must be seen
            watched += (m, modules[i + 1])
            i += 2
        else:
            steps.append((_CALL, m))
            i += 1
        rank = None  # unknown after a module the plan does not model
    hooks = tuple(d for w in watched for d in (w._forward_hooks, w._forward_pre_hooks))
    return tuple(steps), hooks


class _FusedPair:
    """A Conv1d/Conv2d/Linear and the ReLU after it, called as the plain path fuses them."""
    __slots__ = ("layer",)

    def __init__(self, layer):
        self.layer = layer

    def __call__(self, input):
        layer = self.layer
        return _linear_relu(layer, input) if type(layer) is Linear else layer._conv_forward(input, relu=True)


class _Plan:
    __slots__ = ("modules", "version", "rank", "run", "hooks", "uses", "misses", "plain_calls")


# id(Sequential) -> (weak reference to it, its _Plan); kept outside the module so that pickling,
# deepcopy and state_dict never see it, and dropped when the Sequential is collected.
_PLANS = {}

# A model whose own forward assigns attributes (a counter, a cached tensor) moves the attribute
# version on every call, so its plans would be compiled on every call and used once, costing more
# than they save. After _UNSTABLE plans in a row used only once, the next _PLAIN_CALLS calls take
# the plain path, then compiling is tried again.
_UNSTABLE, _PLAIN_CALLS = 3, 64


def _forget(key):
    return lambda _ref: _PLANS.pop(key, None)


def _compiled(owner, modules, rank, misses):
    """A new plan for `owner`, replacing its old one."""
    plan = _Plan()
    plan.modules, plan.version, plan.rank = modules, _module._attribute_version[0], rank
    steps, plan.hooks = _compile(modules, rank)
    plan.run = _core._InferencePlan(steps)  # runs the steps in one C++ call
    plan.uses, plan.misses, plan.plain_calls = 0, misses, _PLAIN_CALLS if misses >= _UNSTABLE else 0
    key = id(owner)
    _PLANS[key] = (weakref.ref(owner, _forget(key)), plan)
    return plan


def run_sequence(owner, modules, input):
    """Applies `modules` (a tuple: the children of `owner`, a Sequential) in order to `input`,
    through the compiled plan when autograd is off."""
    if _core.is_grad_enabled() or _anomaly_enabled[0] or not isinstance(input, Tensor):
        return _run_modules(modules, input)
    rank = input.dim()
    entry = _PLANS.get(id(owner))
    if entry is None or entry[0]() is not owner:
        plan = _compiled(owner, modules, rank, 0)
    else:
        plan = entry[1]
        if plan.plain_calls:
            plan.plain_calls -= 1
            if plan.plain_calls:
                return _run_modules(modules, input)
            plan = _compiled(owner, modules, rank, _UNSTABLE - 1)  # try again: one more miss resumes the plain calls
        elif (plan.version != _module._attribute_version[0] or plan.rank != rank or plan.modules != modules
              or any(plan.hooks)):
            plan = _compiled(owner, modules, rank, plan.misses + 1 if plan.uses <= 1 else 0)
    plan.uses += 1
    return plan.run(input)
