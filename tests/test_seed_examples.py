"""The seed guide's code samples that need only this issue's features, run with neurocore.

The guide's NumPy forward/backward propagation is used as an oracle for neurocore's autograd,
and its PyTorch snippets run with only the import changed.
"""
import numpy as np

import neurocore as torch  # the guide's PyTorch samples, import line changed
from neurocore import nn


# --- the guide's NumPy code, verbatim apart from the missing helpers it assumes ---------------------
def relu(x):
    return np.maximum(0, x)


def relu_derivative(a):
    return (a > 0).astype(a.dtype)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def forward_propagation(X, weights, biases):
    activations = [X]
    for i in range(len(weights)):
        z = np.dot(activations[-1], weights[i]) + biases[i]
        if i < len(weights) - 1:
            a = relu(z)
        else:
            a = softmax(z)
        activations.append(a)
    return activations


def backpropagation(y_true, activations, weights):
    m = y_true.shape[0]
    gradients_w = []
    gradients_b = []
    delta = activations[-1] - y_true
    for i in range(len(weights) - 1, -1, -1):
        dW = np.dot(activations[i].T, delta) / m
        db = np.sum(delta, axis=0) / m
        gradients_w.insert(0, dW)
        gradients_b.insert(0, db)
        if i > 0:
            delta = np.dot(delta, weights[i].T) * relu_derivative(activations[i])
    return gradients_w, gradients_b


def test_guide_backpropagation_matches_autograd():
    rng = np.random.default_rng(0)
    sizes = [8, 16, 12, 5]
    weights = [rng.normal(0, 0.5, (a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0, 0.1, b) for b in sizes[1:]]
    X = rng.normal(size=(10, 8))
    labels = rng.integers(0, 5, 10)
    y_true = np.eye(5)[labels]
    gw, gb = backpropagation(y_true, forward_propagation(X, weights, biases), weights)

    # The same network in neurocore, differentiated by autograd (cross-entropy = softmax + log loss).
    tw = [torch.tensor(w, requires_grad=True) for w in weights]
    tb = [torch.tensor(b, requires_grad=True) for b in biases]
    h = torch.tensor(X)
    for i, (w, b) in enumerate(zip(tw, tb)):
        h = h @ w + b
        if i < len(tw) - 1:
            h = torch.relu(h)
    loss = nn.functional.cross_entropy(h, torch.tensor(labels))
    loss.backward()
    for mine, theirs in zip(tw + tb, gw + gb):
        np.testing.assert_allclose(mine.grad.numpy(), theirs, rtol=1e-10, atol=1e-12)
    # The guide's gradient-descent update, applied with neurocore tensors under no_grad.
    with torch.no_grad():
        for w, g in zip(tw, gw):
            w -= 0.1 * torch.tensor(g)
    np.testing.assert_allclose(tw[0].detach().numpy(), weights[0] - 0.1 * gw[0])


def test_guide_losses_and_activations():
    x = np.linspace(-3, 3, 13)
    t = torch.tensor(x)
    np.testing.assert_allclose(torch.relu(t).numpy(), np.maximum(0, x))
    np.testing.assert_allclose(torch.sigmoid(t).numpy(), 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(torch.tanh(t).numpy(), np.tanh(x), rtol=1e-12)
    y_true, y_pred = np.array([0.0, 1.0, 2.0]), np.array([0.1, 0.8, 2.5])
    np.testing.assert_allclose(nn.MSELoss()(torch.tensor(y_pred), torch.tensor(y_true)).item(),
                               np.mean((y_true - y_pred) ** 2))


def test_guide_regularisation_snippets():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Dropout(p=0.5), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), weight_decay=1e-4)
    x, y = torch.randn(16, 784), torch.randint(0, 10, (16,))
    loss_fn = nn.CrossEntropyLoss()
    model.eval()
    before = loss_fn(model(x), y).item()
    model.train()
    for _ in range(10):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    model.eval()
    assert loss_fn(model(x), y).item() < 0.5 * before
