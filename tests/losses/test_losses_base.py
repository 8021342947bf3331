"""Objective interface, build_objective, CE/TET on hand-computed examples."""

from __future__ import annotations

import math

import pytest
import torch

from spikeforge.losses import (
    CrossEntropyObjective,
    JointASNNObjective,
    Objective,
    TETObjective,
    build_objective,
    list_objectives,
    tet_loss,
)
from spikeforge.models import create_model


def test_registry_lists_every_objective() -> None:
    assert list_objectives() == ["ce", "im", "joint_asnn", "rmp", "tet"]
    assert isinstance(build_objective(None), CrossEntropyObjective)
    assert isinstance(build_objective("tet"), TETObjective)
    assert isinstance(build_objective({"name": "joint_asnn", "alpha": 0.2}), JointASNNObjective)
    obj = build_objective("ce")
    assert build_objective(obj) is obj


@pytest.mark.parametrize(("cfg", "match"), [
    ("focal", r"unknown objective 'focal'; choose one of \['ce', 'im', 'joint_asnn', 'rmp', 'tet'\]"),
    ({"weight": 1.0}, "needs a 'name'"),
    ({"name": "ce", "smoothing": 0.1}, r"no option\(s\) \['smoothing'\]; valid options: \[.*'label_smoothing'"),
    ({"name": "rmp", "lambda": 0.1}, r"valid options: \[.*'schedule'.*'weight'"),
    ({"name": "rmp", "schedule": "step"}, "unknown schedule 'step'"),
    ({"name": "rmp", "base": "mse"}, "base must be one of"),
    ({"name": "ce", "readout": "max"}, r"readout must be one of \['mean', 'sum'\]"),
    ({"name": "tet", "mse_weight": 2.0}, "mse_weight"),
    ({"name": "joint_asnn", "tau": 3}, r"no option\(s\) \['tau'\]"),
    ({"name": "im", "target": "half"}, "target must be"),
])
def test_bad_configs_raise_clear_errors(cfg, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_objective(cfg)


def test_config_round_trips() -> None:
    for cfg in ({"name": "rmp", "weight": 0.3, "schedule": "linear", "base": "tet", "mse_weight": 0.05},
                {"name": "im", "target": "threshold"}, {"name": "ce", "readout": "sum", "label_smoothing": 0.1},
                {"name": "joint_asnn", "beta": 0.0}):
        obj = build_objective(cfg)
        again = build_objective(obj.config())
        assert again.config() == obj.config()


def test_ce_on_mean_and_sum_readouts_by_hand() -> None:
    z = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]]])  # T=2, B=1, K=2
    y = torch.tensor([1])
    mean_ce = math.log(1 + math.exp(0.5 - 1.0))  # mean logits [0.5, 1.0]
    sum_ce = math.log(1 + math.exp(1.0 - 2.0))  # summed logits [1, 2]
    assert float(build_objective("ce").loss(z, y)[0]) == pytest.approx(mean_ce)
    assert float(build_objective({"name": "ce", "readout": "sum"}).loss(z, y)[0]) == pytest.approx(sum_ce)
    smooth = build_objective({"name": "ce", "label_smoothing": 0.2}).loss(z, y)[0]
    logp = [0.5 - math.log(math.exp(0.5) + math.exp(1.0)), 1.0 - math.log(math.exp(0.5) + math.exp(1.0))]
    assert float(smooth) == pytest.approx(-(0.9 * logp[1] + 0.1 * logp[0]))


def test_log_softmax_mean_readout_is_the_official_pointnet_nll_by_hand() -> None:
    # Spiking PointNet (official code): per-step log_softmax, averaged over T, NLL on it
    z = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]]])  # T=2, B=1, K=2
    y = torch.tensor([1])
    lse0, lse1 = math.log(math.exp(1.0) + 1.0), math.log(1.0 + math.exp(2.0))
    logp = [((1.0 - lse0) + (0.0 - lse1)) / 2, ((0.0 - lse0) + (2.0 - lse1)) / 2]  # mean_t log_softmax
    obj = build_objective({"name": "ce", "readout": "log_softmax_mean"})
    assert obj.readout == "log_softmax_mean"
    assert float(obj.loss(z, y)[0]) == pytest.approx(-logp[1])
    # differs from CE of the mean logits at T > 1 (mean_ce = 0.474 vs 0.564 here) ...
    assert abs(-logp[1] - math.log(1 + math.exp(0.5 - 1.0))) > 0.05
    # ... and equals plain CE at T = 1
    assert float(obj.loss(z[:1], y)[0]) == pytest.approx(float(build_objective("ce").loss(z[:1], y)[0]))
    smooth = build_objective({"name": "ce", "readout": "log_softmax_mean", "label_smoothing": 0.2}).loss(z, y)[0]
    assert float(smooth) == pytest.approx(-(0.8 * logp[1] + 0.1 * (logp[0] + logp[1])))
    # per-sample batch mean, several classes
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 4, 5, generator=g)
    y = torch.tensor([0, 4, 2, 2])
    by_hand = -sum(float(torch.log_softmax(z[:, b], -1).mean(0)[y[b]]) for b in range(4)) / 4
    assert float(obj.loss(z, y)[0]) == pytest.approx(by_hand, rel=1e-6)


def test_tet_by_hand() -> None:
    z = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]]])
    y = torch.tensor([0])
    ce = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(2.0))) / 2
    mse = (0 + 1 + 1 + 1) / 4  # (z - 1)^2 averaged over T, B, K
    total, ce_t, mse_t = tet_loss(z, y, mse_weight=0.1, mse_target=1.0)
    assert float(total) == pytest.approx(0.9 * ce + 0.1 * mse)
    assert float(ce_t) == pytest.approx(ce) and float(mse_t) == pytest.approx(mse)
    obj = build_objective({"name": "tet", "mse_weight": 0.0})
    assert float(obj.loss(z, y)[0]) == pytest.approx(ce)
    assert obj.readout == "mean" and not obj.needs_membranes
    assert build_objective("tet").config()["mse_weight"] == 1e-3


def test_logits_and_targets_are_validated() -> None:
    obj = build_objective("ce")
    with pytest.raises(ValueError, match=r"per-step logits \[T, B, K\]"):
        obj.loss(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="target must be class indices"):
        obj.loss(torch.zeros(2, 4, 3), torch.zeros(5, dtype=torch.long))


def test_step_runs_forward_and_loss_and_observes_only_when_needed() -> None:
    torch.manual_seed(0)
    model = create_model("mlp", num_classes=3, in_features=4, hidden=(8,))
    x, y = torch.randn(2, 5, 4), torch.tensor([0, 1, 2, 0, 1])
    ce = build_objective("ce")
    with ce.observe(model) as mem:
        assert mem is None
    loss, parts, out = ce.step(model, x, y)
    assert out.shape == (2, 5, 3) and parts["ce"] == pytest.approx(float(loss.detach()))
    assert ce.predict(out).shape == (5,)
    rmp = build_objective("rmp")
    loss2, parts2, _ = rmp.step(model, x, y, progress=1.0)  # cosine weight 0 at the end
    assert parts2["rmp_weight"] == 0.0 and parts2["rmp"] > 0
    assert float(loss2.detach()) == pytest.approx(float(ce.loss(model(x), y)[0].detach()), abs=1e-6)
    with pytest.raises(NotImplementedError):
        Objective().loss(out, y)


def test_feature_transform_regulariser_is_added_with_its_weight():
    import spikeforge
    from spikeforge.losses import build_objective

    torch.manual_seed(0)
    model = spikeforge.create_model("pointnet", num_classes=4, width=1 / 16, neuron="lif")
    x = torch.randn(1, 3, 3, 32)
    y = torch.tensor([0, 1, 2])
    plain = build_objective({"name": "ce"})
    reg = build_objective({"name": "ce", "feature_transform_weight": 0.001})
    torch.manual_seed(1)
    out = reg.forward(model, x)
    total, parts = reg.loss(out, y)
    expected_reg = model.feature_transform_regularizer()
    base, _ = plain.loss(out.logits, y)
    torch.testing.assert_close(total, base + 0.001 * expected_reg)
    assert parts["feature_transform_reg"] == pytest.approx(float(expected_reg.detach()))
    assert reg.logits(out).shape == (1, 3, 4)
    with pytest.raises(ValueError, match="feature_transform_regularizer"):
        reg.forward(spikeforge.create_model("mlp"), torch.randn(1, 2, 64))
