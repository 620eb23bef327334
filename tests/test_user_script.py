"""A typical PyTorch training script with only the import lines changed."""
import numpy as np

import neurocore as torch
import neurocore.nn as nn
import neurocore.nn.functional as F
import neurocore.optim as optim


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 10)
        self.scale = nn.Parameter(torch.ones(32))

    def forward(self, x):
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x)) * self.scale
        return F.log_softmax(self.fc2(x), dim=1)


def test_digits_script_with_sgd_momentum_steplr_save_load(tmp_path):
    torch.manual_seed(42)
    X, y = torch.datasets.load_digits()
    X = torch.from_numpy(X).float() / 16.0
    y = torch.tensor(y, dtype=torch.long)
    net = Net()
    nn.init.xavier_uniform_(net.fc1.weight)
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    rng = np.random.default_rng(0)
    for _ in range(10):
        perm = rng.permutation(len(X))
        for i in range(0, len(X), 64):
            idx = torch.tensor(perm[i:i + 64])
            xb, yb = X[idx], y[idx]
            opt.zero_grad()
            loss = F.nll_loss(net(xb.reshape(-1, 8, 8)), yb)
            loss.backward()
            opt.step()
        sched.step()
    with torch.no_grad():
        acc = (torch.argmax(net(X), dim=1) == y).float().mean().item()
    assert acc > 0.95
    assert sched.get_last_lr() == [0.025]
    torch.save(net.state_dict(), tmp_path / "net.pt")
    net2 = Net()
    net2.load_state_dict(torch.load(tmp_path / "net.pt"))
    assert torch.allclose(net(X), net2(X))
