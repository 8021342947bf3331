"""The neuron module on each kernel backend: MPBN fused == reference, streaming step == sequence run."""

from __future__ import annotations

import copy

import pytest
import torch

from spikeforge.neurons import Neuron
from spikeforge.neurons import base as neuron_base


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


MPBN_CONFIGS = [
    {"preset": "mpbn"},
    {"preset": "mpbn", "mpbn": "element", "reset": "soft"},
    {"preset": "mpbn", "mpbn_running": "per_step", "max_steps": 8, "spike": "ternary", "amplitude": "layer"},
    {"preset": "mpbn", "learn_threshold": True, "learn_decay": True, "amplitude": "channel"},
]


@pytest.mark.parametrize("cfg", MPBN_CONFIGS)
@pytest.mark.parametrize("training", [True, False])
def test_mpbn_neuron_fused_equals_reference(cfg, training):
    torch.manual_seed(0)
    ref = Neuron(cfg, feature_shape=(3, 2, 2), backend="reference").double()
    with torch.no_grad():
        assert ref.mpbn is not None
        ref.mpbn.weight.uniform_(0.5, 1.5)
        ref.mpbn.bias.uniform_(-0.2, 0.2)
        ref.mpbn.running_var.uniform_(0.5, 1.5)
    fused = copy.deepcopy(ref)
    fused.config.backend = "fused"
    x = torch.randn(5, 6, 3, 2, 2, dtype=torch.float64) * 0.8 + 0.3
    w = torch.linspace(-1, 1, x.numel(), dtype=torch.float64).view(x.shape)
    results = []
    for n in (ref, fused):
        n.train(training)
        xi = x.clone().requires_grad_()
        out = n(xi)
        (out * w).sum().backward()
        results.append((out.detach(), xi.grad, {k: p.grad for k, p in n.named_parameters()},
                        {k: b.clone() for k, b in n.named_buffers()}))
    (o1, gx1, gp1, b1), (o2, gx2, gp2, b2) = results
    assert torch.equal(o1, o2) and o1.abs().sum() > 0
    torch.testing.assert_close(gx2, gx1, rtol=1e-9, atol=1e-12)
    for k in gp1:
        torch.testing.assert_close(gp2[k], gp1[k], rtol=1e-9, atol=1e-12, msg=k)
    for k in b1:
        assert torch.equal(b1[k], b2[k]), k


def test_mpbn_auto_runs_fused(monkeypatch):
    from spikeforge.functional import kernels

    ran = []
    fused = kernels.get_backend("fused")
    monkeypatch.setattr(fused, "run", lambda call, _orig=fused.run: (ran.append(call.norm is not None), _orig(call))[1])
    Neuron("mpbn", feature_shape=(3,))(torch.randn(2, 4, 3))
    assert ran == [True]


@pytest.mark.parametrize("cfg", [{"preset": "mpbn", "mpbn_running": "per_step", "max_steps": 4}, "ternary", "lif"])
def test_step_equals_run_and_uses_single_step(cfg, monkeypatch):
    torch.manual_seed(1)
    n = Neuron(cfg, feature_shape=(3, 2)).eval()
    if n.mpbn is not None:
        with torch.no_grad():
            n.mpbn.running_mean.uniform_(-0.2, 0.2)
            n.mpbn.running_var.uniform_(0.5, 1.5)
    else:  # per-step thresholds, as a fold of per-step statistics leaves them
        n.threshold = torch.tensor([0.3, 0.5, 0.7, 0.4]).view(4, 1, 1, 1)  # [steps, B, C, L]
        n.threshold_per_step = True
    x = torch.randn(4, 5, 3, 2)
    whole = n(x)
    calls = []
    monkeypatch.setattr(neuron_base, "single_step",
                        lambda *a, _orig=neuron_base.single_step, **k: (calls.append(k["t"]), _orig(*a, **k))[1])
    state = None
    steps = []
    for t in range(4):
        o, state = n.step(x[t], state, t=t)
        steps.append(o)
    assert calls == [0, 1, 2, 3]
    assert torch.equal(torch.stack(steps), whole)


def test_per_step_threshold_beyond_stored_steps_is_an_error():
    n = Neuron("lif")
    n.threshold = torch.tensor([0.3, 0.5])
    n.threshold_per_step = True
    with pytest.raises(ValueError, match="2 steps, got T = 3"):
        n(torch.randn(3, 2, 4))
    with pytest.raises(ValueError, match="got step t = 2"):
        n.step(torch.randn(2, 4), None, t=2)
