"""ONNX both ways, on the shipped MNIST 5k digits.

1. PyTorch -> ONNX -> neurocore: a PyTorch CNN is exported with torch.onnx.export, loaded with
   nc.onnx.load (its weights become nn.Parameters under PyTorch's state_dict names), checked against
   PyTorch's outputs, and fine-tuned here with neurocore.optim.
2. neurocore -> ONNX -> ONNX Runtime: the fine-tuned model, and a model built with neurocore.nn, are
   exported with nc.onnx.export (dynamic batch axis) and run by ONNX Runtime, which must agree.

Needs `pip install onnx onnxruntime` (and torch for step 1, which is skipped without it). Run:
    python examples/onnx_roundtrip.py [--steps 150]
"""
import argparse
import io
import os
import tempfile
import warnings

import numpy as np

import neurocore as nc
from neurocore import nn, optim
from neurocore.datasets import load_mnist_5k, train_test_split


def digits():
    X, y = load_mnist_5k()
    X = (X / 255.0).reshape(-1, 1, 28, 28).astype(np.float32)
    return train_test_split(X, y, test_size=1000, seed=0)


def accuracy(logits, y):
    return float(np.mean(np.asarray(logits).argmax(axis=1) == y))


def fine_tune(model, X, y, steps, lr=1e-3, batch_size=64):
    opt = optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    model.train()
    for step in range(steps):
        idx = rng.integers(0, len(X), batch_size)
        opt.zero_grad()
        loss = loss_fn(model(nc.tensor(X[idx])), nc.tensor(y[idx]))
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"  step {step:4d}  loss {loss.item():.4f}")
    model.eval()


def onnxruntime_outputs(path, feeds):
    import onnxruntime as ort
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def pytorch_to_neurocore(X_train, y_train, X_test, y_test, steps, folder):
    try:
        import torch
    except ImportError:
        print("1. PyTorch is not installed: skipping the PyTorch -> neurocore direction")
        return None
    print("1. PyTorch -> ONNX -> neurocore")
    torch.manual_seed(0)
    tnn = torch.nn
    net = tnn.Sequential(tnn.Conv2d(1, 16, 3, padding=1), tnn.BatchNorm2d(16), tnn.ReLU(), tnn.MaxPool2d(2),
                         tnn.Conv2d(16, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                         tnn.Linear(32 * 7 * 7, 64), tnn.ReLU(), tnn.Dropout(0.2), tnn.Linear(64, 10)).eval()
    path = os.path.join(folder, "torch_cnn.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(net, (torch.from_numpy(X_test[:2]),), path, dynamo=False, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                          do_constant_folding=False)  # keep BatchNorm a node, so it trains here
    model = nc.onnx.load(path)
    print(f"  loaded {model.extra_repr()}")
    print(f"  parameters: {[name for name, _ in model.named_parameters()]}")
    with torch.no_grad():
        expected = net(torch.from_numpy(X_test[:100])).numpy()
    with nc.no_grad():
        got = model(X_test[:100]).numpy()
    print(f"  max |neurocore - PyTorch| on 100 images: {np.abs(got - expected).max():.2e}")
    with nc.no_grad():
        print(f"  held-out accuracy before fine-tuning (random weights): {accuracy(model(X_test).numpy(), y_test):.3f}")
    fine_tune(model, X_train, y_train, steps)
    with nc.no_grad():
        print(f"  held-out accuracy after {steps} Adam steps in neurocore: "
              f"{accuracy(model(X_test).numpy(), y_test):.3f}")
    tuned = os.path.join(folder, "torch_cnn_tuned.onnx")
    nc.onnx.export(model, None, tuned)  # the loaded graph, written back with the trained weights
    ort = onnxruntime_outputs(tuned, {"image": X_test})
    print(f"  ONNX Runtime on the fine-tuned file: accuracy {accuracy(ort, y_test):.3f}, max |ORT - neurocore| "
          f"{np.abs(ort - model(X_test).detach().numpy()).max():.2e}")
    return model


def neurocore_to_onnxruntime(X_train, y_train, X_test, y_test, steps, folder):
    print("2. neurocore -> ONNX -> ONNX Runtime")
    nc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 5 * 5, 64), nn.ReLU(), nn.Linear(64, 10))
    fine_tune(model, X_train, y_train, steps)
    path = os.path.join(folder, "neurocore_cnn.onnx")
    nc.onnx.export(model, nc.tensor(X_test[:1]), path, input_names=["image"], output_names=["logits"],
                   dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17)
    ort = onnxruntime_outputs(path, {"image": X_test})
    with nc.no_grad():
        ours = model(nc.tensor(X_test)).numpy()
    print(f"  exported {os.path.getsize(path) / 1024:.0f} KiB; ONNX Runtime accuracy {accuracy(ort, y_test):.3f}, "
          f"neurocore {accuracy(ours, y_test):.3f}, max |ORT - neurocore| {np.abs(ort - ours).max():.2e}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=150)
    args = p.parse_args()
    X_train, X_test, y_train, y_test = digits()
    with tempfile.TemporaryDirectory() as folder:
        pytorch_to_neurocore(X_train, y_train, X_test, y_test, args.steps, folder)
        neurocore_to_onnxruntime(X_train, y_train, X_test, y_test, args.steps, folder)


if __name__ == "__main__":
    main()
