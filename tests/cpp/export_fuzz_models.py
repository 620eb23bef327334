"""Writes the models .ci/sanitize fuzzes the C++ loader with (tests/cpp/test_runtime_loader.cpp):
an MLP, a CNN with BatchNorm (folded at load), an LSTM, a packed-sequence GRU and a Transformer
encoder layer with a bool key-padding mask, small so that thousands of mutated copies load quickly.
    python export_fuzz_models.py OUT_DIR"""
import sys
from pathlib import Path

import numpy as np

import neurocore as nc
from neurocore import nn
from neurocore.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class PaddedEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)

    def forward(self, x, pad):
        return self.layer(x, src_key_padding_mask=pad)


class PackedGru(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 5, batch_first=True, bidirectional=True)

    def forward(self, x, lengths):
        out, h = self.gru(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        return pad_packed_sequence(out, batch_first=True, total_length=3)[0], h


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    nc.manual_seed(0)
    rng = np.random.default_rng(0)
    x = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    models = {
        "mlp": (nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)), (x(2, 6),)),
        "cnn_bn": (nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(4 * 3 * 3, 5)), (x(2, 1, 8, 8),)),
        "lstm": (nn.LSTM(4, 6, num_layers=2, batch_first=True), (x(2, 3, 4),)),
        "packed": (PackedGru(), (x(2, 3, 4), np.array([2, 3]))),
        "transformer": (PaddedEncoder(), (x(2, 5, 8), np.array([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]], dtype=bool))),
    }
    for name, (model, inputs) in models.items():
        model.eval()
        nc.export.save(model, out / f"{name}.ncm", inputs)
        print(out / f"{name}.ncm")


if __name__ == "__main__":
    main(sys.argv[1])
