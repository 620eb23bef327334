"""``neurocore.optim``: optimizers with PyTorch's names, defaults and state_dicts. SGD, Adam(W),
RMSprop and Adagrad update all parameters of a group in one fused C++ call; Adadelta, Adamax,
NAdam and RAdam update with NumPy array arithmetic in PyTorch's order of operations; LBFGS is a
port of PyTorch's."""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW
from .rmsprop import RMSprop
from .adagrad import Adagrad
from .adadelta import Adadelta
from .adamax import Adamax
from .nadam import NAdam
from .radam import RAdam
from .lbfgs import LBFGS
from . import lr_scheduler, swa_utils
