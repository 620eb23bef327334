"""``neurocore.optim``: optimizers whose update of all parameters of a group is one fused C++ call."""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW
from .rmsprop import RMSprop
from .adagrad import Adagrad
from . import lr_scheduler
