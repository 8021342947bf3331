"""Every objective trains a tiny network on scikit-learn digits end to end (minimal loop, loss decreases), and
the Spiking PointNet scheme (train at T = 1 with membrane perturbation, infer at T > 1) runs with the sweep."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits

from spikeforge.encode import direct
from spikeforge.losses import build_objective
from spikeforge.models import create_model
from spikeforge.models.joint_asnn import JointASNN
from spikeforge.train.sweep import sweep_accuracy


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = (x - 0.3) / 0.4
    return x, torch.tensor(d.target)


def _model(name: str):
    if name == "joint_asnn":  # the Joint A-SNN ResNet with one block per stage keeps the test fast
        return JointASNN(num_classes=10, in_channels=1, width=1 / 16, blocks=(1, 1, 1, 1))
    return create_model("convnet", num_classes=10, widths=(8, 16))


@pytest.mark.parametrize("cfg", [
    "ce", "tet", {"name": "rmp", "weight": 0.5, "schedule": "linear"}, {"name": "im", "weight": 0.5}, "joint_asnn",
])
def test_objective_trains_end_to_end(digits, cfg) -> None:
    torch.manual_seed(0)
    x_all, y_all = digits
    x, y = x_all[:64], y_all[:64]
    model = _model(cfg if isinstance(cfg, str) else cfg["name"])
    objective = build_objective(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    seq = direct(x, 2)
    model.train()

    def measure() -> float:
        torch.manual_seed(1)
        with torch.no_grad():
            return float(objective.step(model, seq, y, progress=0.0)[0])

    before = measure()
    steps = 12
    for i in range(steps):
        loss, parts, _ = objective.step(model, seq, y, progress=i / steps)
        assert torch.isfinite(loss) and all(isinstance(v, float) for v in parts.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = measure()
    assert after < 0.8 * before, (before, after)


def test_spiking_pointnet_scheme_train_at_T1_infer_at_T_up_to_4(digits) -> None:
    torch.manual_seed(0)
    x_all, y_all = digits
    x_tr, y_tr, x_te, y_te = x_all[:512], y_all[:512], x_all[1500:], y_all[1500:]
    # membrane potential perturbation U[0, 0.5) in training (and at test time, as released)
    model = create_model("convnet", num_classes=10, widths=(8, 16), neuron="pointnet")
    assert model[2].config.init == "uniform" and model[2].config.init_range == 0.5
    objective = build_objective("ce")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _epoch in range(3):
        perm = torch.randperm(len(y_tr))
        for i in range(0, len(perm), 64):
            idx = perm[i:i + 64]
            loss, _, _ = objective.step(model, direct(x_tr[idx], 1), y_tr[idx])  # T = 1
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.manual_seed(5)
    res = sweep_accuracy(model, [(x_te[i:i + 150], y_te[i:i + 150]) for i in range(0, len(y_te), 150)], T_max=4)
    assert sorted(res) == [1, 2, 3, 4]
    assert min(res.values()) > 0.5  # well above chance (0.1) at every T, though trained at T = 1 only
