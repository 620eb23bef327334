"""An LSTM forecaster of the yearly sunspot numbers (shipped with neurocore, 1700-2008).

Each sample is a window of the previous `window` years; the model predicts the next year. Train on
target years before 1950, report the RMSE over the years from 1950 on, beside the persistence
baseline (next year = this year). Run:
    python examples/sunspots_lstm.py [--epochs 400]
"""
import argparse

import numpy as np

import neurocore as nc
from neurocore import nn, optim


class Forecaster(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):  # x (batch, window, 1)
        out, _ = self.lstm(x)
        return self.head(out[:, -1, :]).squeeze(-1)


def windows(series, years, window):
    X = np.stack([series[i:i + window] for i in range(len(series) - window)])[:, :, None]
    return X.astype(np.float32), series[window:].astype(np.float32), years[window:]


def train(epochs=400, window=12, hidden=32, lr=1e-2, seed=0, verbose=True):
    years, values = nc.datasets.load_sunspots()
    scale = float(values[years < 1950].max())  # train-period statistics only
    X, y, target_years = windows(values / scale, years, window)
    train_rows, test_rows = target_years < 1950, target_years >= 1950
    Xtr, ytr = nc.tensor(X[train_rows]), nc.tensor(y[train_rows])
    Xte = nc.tensor(X[test_rows])
    nc.manual_seed(seed)
    model = Forecaster(hidden)
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.MSELoss()
    for epoch in range(1, epochs + 1):
        model.train()
        opt.zero_grad()
        loss = loss_fn(model(Xtr), ytr)
        loss.backward()
        opt.step()
        sched.step()
        if verbose and epoch % 100 == 0:
            print(f"epoch {epoch:4d}  train MSE (scaled) {loss.item():.5f}")
    model.eval()
    with nc.no_grad():
        pred = model(Xte).numpy() * scale
    truth = y[test_rows] * scale
    rmse = float(np.sqrt(np.mean((pred - truth) ** 2)))
    persistence = float(np.sqrt(np.mean((X[test_rows][:, -1, 0] * scale - truth) ** 2)))
    if verbose:
        print(f"test years {int(target_years[test_rows][0])}-{int(target_years[test_rows][-1])}: "
              f"LSTM RMSE {rmse:.2f}, persistence RMSE {persistence:.2f} "
              f"({100 * (1 - rmse / persistence):.1f}% better)")
    return rmse, persistence


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=400)
    train(epochs=parser.parse_args().epochs)
