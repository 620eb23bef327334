# Source: https://github.com/pytorch/examples/blob/77f55b912142e11fcfdf5b530231fb9c52f181e8/regression/main.py
# Commit: 77f55b912142e11fcfdf5b530231fb9c52f181e8 (pytorch/examples). Licence: BSD 3-Clause
# (Copyright (c) 2017, Pytorch contributors).
# Changes (each marked "CHANGED"): the random target polynomial and batches come from a NumPy
# generator (so both libraries see the same numbers); the module-level training loop is a
# function with a batch limit that returns the losses; the final prints are left out.
from itertools import count

import numpy as np  # CHANGED
import torch
import torch.nn.functional as F

POLY_DEGREE = 4
_rng = np.random.default_rng(0)  # CHANGED: torch.randn -> a NumPy generator
W_target = torch.from_numpy(_rng.standard_normal((POLY_DEGREE, 1)).astype(np.float32)) * 5
b_target = torch.from_numpy(_rng.standard_normal(1).astype(np.float32)) * 5


def make_features(x):
    """Builds features i.e. a matrix with columns [x, x^2, x^3, x^4]."""
    x = x.unsqueeze(1)
    return torch.cat([x ** i for i in range(1, POLY_DEGREE+1)], 1)


def f(x):
    """Approximated function."""
    return x.mm(W_target) + b_target.item()


def poly_desc(W, b):
    """Creates a string description of a polynomial."""
    result = 'y = '
    for i, w in enumerate(W):
        result += '{:+.2f} x^{} '.format(w, i + 1)
    result += '{:+.2f}'.format(b[0])
    return result


def get_batch(batch_size=32):
    """Builds a batch i.e. (x, f(x)) pair."""
    random = torch.from_numpy(_rng.standard_normal(batch_size).astype(np.float32))  # CHANGED
    x = make_features(random)
    y = f(x)
    return x, y


# Define model
fc = torch.nn.Linear(W_target.size(0), 1)


def fit(max_batches):  # CHANGED: the module-level loop, limited to max_batches
    losses = []
    for batch_idx in count(1):
        # Get data
        batch_x, batch_y = get_batch()

        # Reset gradients
        fc.zero_grad()

        # Forward pass
        output = F.smooth_l1_loss(fc(batch_x), batch_y)
        loss = output.item()
        losses.append(loss)  # CHANGED

        # Backward pass
        output.backward()

        # Apply gradients
        for param in fc.parameters():
            param.data.add_(-0.1 * param.grad)

        # Stop criterion
        if loss < 1e-3 or batch_idx == max_batches:  # CHANGED: batch limit
            break
    return losses, poly_desc(fc.weight.view(-1), fc.bias)  # CHANGED
