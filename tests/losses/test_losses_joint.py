"""Joint A-SNN loss against a hand-written reference (docs/methods/joint_asnn.md)."""

from __future__ import annotations

import math

import pytest
import torch

from spikeforge.losses import build_objective, joint_asnn_loss, kd_soft_ce
from spikeforge.models import create_model


def _softmax(row: list[float], tau: float = 1.0) -> list[float]:
    e = [math.exp(v / tau) for v in row]
    s = sum(e)
    return [v / s for v in e]


def _reference(za, zs, fa, fs, y, alpha=0.1, tau=3.0, beta=1e-6) -> float:
    """Plain-Python loops over the batch, classes and features."""
    B = len(y)

    def ce(z):
        return sum(-math.log(_softmax(z[b])[y[b]]) for b in range(B)) / B

    def kd(s, t):
        return sum(-sum(pt * math.log(ps) for pt, ps in zip(_softmax(t[b], tau), _softmax(s[b], tau)))
                   for b in range(B)) / B

    ce_sum = sum(ce(za[e]) + ce(zs[e]) for e in range(4))
    kd_sum = sum(kd(za[i], za[0]) for i in (1, 2, 3)) + sum(kd(zs[i], za[i]) for i in (1, 2, 3)) + kd(zs[0], za[0])
    feat = 0.0
    for e in range(4):
        for b in range(B):
            for c in range(len(fa[e][b])):
                a, s = fa[e][b][c], fs[e][b][c]
                if a > 0 or s > 0:
                    feat += (s - a) ** 2
    return (1 - alpha) * ce_sum + alpha * tau ** 2 * kd_sum + beta * feat


def test_joint_loss_matches_the_hand_written_reference() -> None:
    g = torch.Generator().manual_seed(3)
    za = [torch.randn(3, 4, generator=g) for _ in range(4)]
    zs = [torch.randn(3, 4, generator=g) * 2 for _ in range(4)]
    fa = [torch.randn(3, 5, generator=g) for _ in range(4)]
    fs = [torch.relu(torch.randn(3, 5, generator=g)) * 3 for _ in range(4)]
    y = torch.tensor([0, 3, 1])
    total, parts = joint_asnn_loss(za, zs, fa, fs, y, alpha=0.1, temperature=3.0, beta=1e-6)
    ref = _reference([z.tolist() for z in za], [z.tolist() for z in zs], [f.tolist() for f in fa],
                     [f.tolist() for f in fs], y.tolist())
    assert float(total) == pytest.approx(ref, rel=1e-6)
    # a large beta makes the masked feature term visible in the comparison
    total_b, _ = joint_asnn_loss(za, zs, fa, fs, y, beta=0.5)
    ref_b = _reference([z.tolist() for z in za], [z.tolist() for z in zs], [f.tolist() for f in fa],
                       [f.tolist() for f in fs], y.tolist(), beta=0.5)
    assert float(total_b) == pytest.approx(ref_b, rel=1e-6)
    assert set(parts) == {"ce", "kd", "feature"}


def test_teachers_are_detached() -> None:
    g = torch.Generator().manual_seed(0)
    za = [torch.randn(2, 3, generator=g, requires_grad=True) for _ in range(4)]
    zs = [torch.randn(2, 3, generator=g, requires_grad=True) for _ in range(4)]
    fa = [torch.randn(2, 4, generator=g, requires_grad=True) for _ in range(4)]
    fs = [torch.randn(2, 4, generator=g, requires_grad=True) for _ in range(4)]
    y = torch.tensor([1, 2])
    total, _ = joint_asnn_loss(za, zs, fa, fs, y, alpha=0.1)
    total.backward()
    # ANN final logits: only their own CE (weighted 1 - alpha) — never a KD teacher gradient
    z0 = za[0].detach().requires_grad_(True)
    (0.9 * torch.nn.functional.cross_entropy(z0, y)).backward()
    torch.testing.assert_close(za[0].grad, z0.grad)
    assert all(f.grad is None for f in fa)  # ANN features are teachers only
    assert all(f.grad is not None for f in fs)


def test_kd_is_soft_cross_entropy_with_temperature() -> None:
    s, t = torch.tensor([[1.0, 2.0, 0.5]]), torch.tensor([[0.0, 1.0, 3.0]])
    pt, ps = _softmax(t[0].tolist(), 3.0), _softmax(s[0].tolist(), 3.0)
    assert float(kd_soft_ce(s, t, 3.0)) == pytest.approx(-sum(a * math.log(b) for a, b in zip(pt, ps)))


def test_objective_sums_snn_outputs_over_time_and_reads_out_sum() -> None:
    torch.manual_seed(0)
    model = create_model("joint_asnn_resnet18", num_classes=5, in_channels=1, width=1 / 16)
    obj = build_objective("joint_asnn")
    assert obj.readout == "sum" and not obj.needs_membranes
    x, y = torch.randn(3, 4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    total, parts, out = obj.step(model, x, y)
    ref, _ = joint_asnn_loss(out.ann.logits, [z.sum(0) for z in out.snn.logits], out.ann.features,
                             [f.sum(0) for f in out.snn.features], y)
    assert float(total.detach()) == pytest.approx(float(ref.detach()), rel=1e-6)
    assert obj.logits(out).shape == (3, 4, 5)
    assert obj.logits(out) is out.snn.logits[0]
    class Wrapper(torch.nn.Module):  # stands in for DistributedDataParallel: forwards *args/**kwargs to .module
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, *a, **kw):
            return self.module(*a, **kw)

    wrapped = obj.forward(Wrapper(model), x)
    assert [tuple(z.shape) for z in wrapped.snn.logits] == [(3, 4, 5)] * 4
    with pytest.raises(TypeError, match="forward_joint"):
        obj.forward(create_model("mlp", num_classes=5, in_features=64), x)
