"""``neurocore.nn.utils``: gradient clipping, parameter/vector conversion and (``nn.utils.rnn``)
packed sequences."""
from .clip_grad import (clip_grad_norm_, clip_grad_norm, clip_grad_value_, parameters_to_vector,  # noqa: F401
                        vector_to_parameters)
from . import rnn  # noqa: F401
