"""RMP-Loss / IM-Loss: hand-computed values, gradient direction, normalisation, schedules, objectives."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from spikeforge.losses import (
    IMObjective,
    RMPObjective,
    build_objective,
    collect_membranes,
    im_loss,
    normalised_membrane,
    rmp_loss,
    schedule_weight,
)
from spikeforge.neurons import Neuron, spiking_neurons


class TwoLayers(nn.Module):
    """Two independent neurons: ``a`` (threshold 0.5) and ``b`` (threshold 1.0)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = Neuron("lif", (3,))
        self.b = Neuron("lif", (2,), threshold=1.0)

    def forward(self, xa: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        return self.a(xa).sum() + self.b(xb).sum()


# layer a, T = 2: h0 = x0; v0 = h0 (1 - s0); h1 = 0.25 v0 + x1  -> m = h / (2 * 0.5) = h
XA = torch.tensor([[[0.2, 0.6, -0.3]], [[0.1, 0.3, 1.2]]])
MA = [0.2, 0.6, -0.3, 0.15, 0.3, 1.125]
# layer b, T = 1, threshold 1.0 -> m = x / 2
XB = torch.tensor([[[0.4, 1.2]]])
MB = [0.2, 0.6]


def _rmp_by_hand(ms: list[float]) -> float:
    return sum(min(abs(m), abs(m - 1.0)) ** 2 for m in ms) / len(ms)


def test_collected_membranes_are_threshold_normalised() -> None:
    model = TwoLayers()
    with collect_membranes(model) as mem:
        model(XA, XB)
    assert [n for n, _ in mem] == ["a", "b"]
    torch.testing.assert_close(mem[0][1].flatten(), torch.tensor(MA), atol=1e-6, rtol=0)
    torch.testing.assert_close(mem[1][1].flatten(), torch.tensor(MB), atol=1e-6, rtol=0)


def test_rmp_loss_equals_hand_computed_example() -> None:
    model = TwoLayers()
    with collect_membranes(model) as mem:
        model(XA, XB)
    # layer a: d = [.2, -.4, -.3, .15, .3, .125] -> mean d^2 = 0.418125 / 6; layer b: (0.04 + 0.16) / 2
    expected = (0.418125 / 6 + 0.1) / 2
    assert _rmp_by_hand(MA) == pytest.approx(0.418125 / 6)
    assert float(rmp_loss(mem)) == pytest.approx(expected, abs=1e-7)
    assert float(rmp_loss(mem, layers="^b$")) == pytest.approx(0.1, abs=1e-7)


def test_rmp_clip_ignores_out_of_range_values() -> None:
    m = torch.tensor([-0.5, 0.2, 1.4, 0.7])
    assert float(rmp_loss([("x", m)])) == pytest.approx((0.25 + 0.04 + 0.16 + 0.09) / 4)
    assert float(rmp_loss([("x", m)], clip=True)) == pytest.approx((0.04 + 0.09) / 4)


def test_rmp_gradient_moves_membranes_towards_the_nearest_level() -> None:
    m = torch.tensor([-0.4, 0.1, 0.45, 0.55, 0.9, 1.3], requires_grad=True)
    rmp_loss([("x", m)]).backward()
    nearest = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    torch.testing.assert_close(m.grad, 2 * (m.detach() - nearest) / 6)
    stepped = m.detach() - 0.5 * m.grad
    assert bool(((stepped - nearest).abs() < (m.detach() - nearest).abs()).all())


def test_rmp_gradient_reaches_the_neuron_input_through_the_membrane() -> None:
    # T = 1: the membrane is the input, m = x / (2 V_th); the spike output is not part of the loss
    neuron = Neuron("lif", (4,))
    x = torch.tensor([[[0.1, 0.4, 0.6, 0.9]]], requires_grad=True)
    with collect_membranes(neuron) as mem:
        neuron(x)
    rmp_loss(mem).backward()
    m = x.detach()  # V_th = 0.5
    expected = 2 * (m - (m >= 0.5).float()) / 4  # dL/dm, and dm/dx = 1 / (2 V_th) = 1
    torch.testing.assert_close(x.grad, expected)


def test_ternary_membranes_fold_onto_levels_zero_and_one() -> None:
    neuron = Neuron("ternary-vanilla", (3,))
    r = torch.tensor([[[-0.8, -0.2, 0.7]]])  # V_th 0.5 -> r/(2 V_th) = [-0.8, -0.2, 0.7], levels {-1, 0, 1}
    with collect_membranes(neuron) as mem:
        neuron(r)
    torch.testing.assert_close(mem[0][1].flatten(), torch.tensor([0.8, 0.2, 0.7]))
    assert float(rmp_loss(mem)) == pytest.approx((0.2 ** 2 + 0.2 ** 2 + 0.3 ** 2) / 3)


def test_per_channel_and_per_step_thresholds_normalise_elementwise() -> None:
    neuron = Neuron("lif", (3,))
    neuron.threshold = torch.tensor([0.5, 1.0, 2.0])
    r = torch.ones(2, 1, 3)
    torch.testing.assert_close(normalised_membrane(neuron, r), torch.tensor([1.0, 0.5, 0.25]).expand(2, 1, 3))
    neuron.threshold = torch.tensor([[[0.5, 0.5, 0.5]], [[1.0, 1.0, 1.0]], [[2.0, 2.0, 2.0]]])  # [T_max, 1, C]
    neuron.threshold_per_step = True
    out = normalised_membrane(neuron, r)
    torch.testing.assert_close(out[:, 0, 0], torch.tensor([1.0, 0.5]))
    with pytest.raises(ValueError, match="per-step thresholds for 3 steps"):
        normalised_membrane(neuron, torch.ones(4, 1, 3))


def test_nothing_is_recorded_outside_the_block() -> None:
    model = TwoLayers()
    with collect_membranes(model) as mem:
        pass
    model(XA, XB)
    assert mem == []
    assert all(not n._observers for _, n in spiking_neurons(model))
    with pytest.raises(ValueError, match="no spiking neurons"):
        with collect_membranes(nn.Linear(2, 2)):
            pass


@pytest.mark.parametrize(("schedule", "values"), [
    ("constant", (0.2, 0.2, 0.2, 0.2)),
    ("linear", (0.2, 0.15, 0.1, 0.0)),
    ("cosine", (0.2, 0.2 * (1 + math.cos(math.pi / 4)) / 2, 0.1, 0.0)),
])
def test_schedules_at_start_quarter_middle_end(schedule: str, values: tuple[float, ...]) -> None:
    got = [schedule_weight(0.2, schedule, p) for p in (0.0, 0.25, 0.5, 1.0)]
    assert got == pytest.approx(list(values), abs=1e-12)


def test_schedule_errors() -> None:
    with pytest.raises(ValueError, match="progress must lie in"):
        schedule_weight(0.1, "linear", 1.5)
    with pytest.raises(ValueError, match="constant"):
        schedule_weight(0.1, "exp", 0.5)


def test_im_loss_equals_hand_computed_example() -> None:
    model = TwoLayers()
    with collect_membranes(model) as mem:
        model(XA, XB)
    mean_a, mean_b = sum(MA) / 6, sum(MB) / 2
    code = ((mean_a - 0.5 / 2) ** 2 + (mean_b - 0.5 / 1) ** 2) / 2  # targets 0.5/T with T = 2 and 1
    thr = ((mean_a - 0.5) ** 2 + (mean_b - 0.5) ** 2) / 2
    assert float(im_loss(mem)) == pytest.approx(code, abs=1e-7)
    assert float(im_loss(mem, target="threshold")) == pytest.approx(thr, abs=1e-7)


def _logits_and_membranes() -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
    model = TwoLayers()
    with collect_membranes(model) as mem:
        model(XA, XB)
    logits = torch.tensor([[[2.0, 0.0]], [[0.0, 1.0]]])
    return logits, mem


def test_rmp_objective_adds_the_scheduled_regulariser_to_the_task_loss() -> None:
    obj = build_objective({"name": "rmp", "weight": 0.4, "schedule": "linear"})
    assert isinstance(obj, RMPObjective) and obj.needs_membranes and obj.readout == "mean"
    logits, mem = _logits_and_membranes()
    y = torch.tensor([0])
    ce = -math.log(math.exp(1.0) / (math.exp(1.0) + math.exp(0.5)))  # mean logits [1, 0.5]
    reg = (0.418125 / 6 + 0.1) / 2
    total, parts = obj.loss(logits, y, membranes=mem, progress=0.5)
    assert float(total) == pytest.approx(ce + 0.2 * reg, abs=1e-6)
    assert parts["rmp"] == pytest.approx(reg, abs=1e-7) and parts["rmp_weight"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="needs the spiking layers' membranes"):
        obj.loss(logits, y, membranes=None, progress=0.0)


def test_im_objective_defaults_and_tet_base() -> None:
    obj = build_objective({"name": "im", "base": "tet", "mse_weight": 0.0})
    assert isinstance(obj, IMObjective)
    assert obj.weight == 0.005 and obj.schedule == "constant" and obj.target == "code"
    logits, mem = _logits_and_membranes()
    total, parts = obj.loss(logits, torch.tensor([1]), membranes=mem, progress=0.3)
    per_step_ce = (math.log(1 + math.exp(2.0)) + math.log(1 + math.exp(-1.0))) / 2
    assert float(total) == pytest.approx(per_step_ce + 0.005 * float(im_loss(mem)), abs=1e-6)
    assert set(parts) == {"tet_ce", "tet_mse", "im", "im_weight"}


def test_layer_filter_that_matches_nothing_is_an_error() -> None:
    obj = build_objective({"name": "rmp", "layers": "conv"})
    logits, mem = _logits_and_membranes()
    with pytest.raises(ValueError, match="no recorded layer matches"):
        obj.loss(logits, torch.tensor([0]), membranes=mem, progress=0.0)


def test_learnable_threshold_is_not_trained_by_the_regulariser() -> None:
    neuron = Neuron("lif", (3,), learn_threshold=True)
    x = torch.tensor([[[0.1, 0.4, 0.7]]], requires_grad=True)
    with collect_membranes(neuron) as mem:
        neuron(x)
    rmp_loss(mem).backward()
    assert neuron.threshold.grad is None or float(neuron.threshold.grad.abs().sum()) == 0.0
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
