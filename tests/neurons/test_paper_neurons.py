"""The information-preserving neurons against hand-computed references: MPR, ternary, real spike, MPBN."""

from __future__ import annotations

import pytest
import torch

from spikeforge.functional import mpr, mpr_grad, surrogate
from spikeforge.neurons import Neuron, observe


def _x(shape: tuple[int, ...], seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale)


@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_mpr_changes_gradients_not_spikes(backend: str) -> None:
    x = _x((6, 4, 50), scale=0.8)
    with_mpr = Neuron("soft-mpr", backend=backend).double()
    without = Neuron("soft-mpr", pre_fire=None, backend=backend).double()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    sa, sb = with_mpr(xa), without(xb)
    assert torch.equal(sa, sb)
    assert 0.05 < float(sa.detach().mean()) < 0.95
    sa.sum().backward()
    sb.sum().backward()
    assert not torch.allclose(xa.grad, xb.grad)
    # one step: d s / d x = g'(phi(x) - V_th) * phi'(x) with the STE surrogate
    x1 = x[:1].clone().requires_grad_()
    Neuron("soft-mpr", backend=backend).double()(x1).sum().backward()
    expected = surrogate("ste").grad(mpr(x[:1]) - 0.5) * mpr_grad(x[:1])
    assert torch.allclose(x1.grad, expected, atol=1e-12)


@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_ternary_surrogate_is_symmetric(backend: str) -> None:
    u = torch.linspace(-1.4, 1.4, 57, dtype=torch.float64).reshape(1, 1, 57)
    grads = []
    for sign in (1.0, -1.0):
        x = (sign * u).clone().requires_grad_()
        s = Neuron("ternary-vanilla", backend=backend).double()(x)
        s.sum().backward()
        grads.append(x.grad)
        assert torch.equal(s, sign * Neuron("ternary-vanilla").double()(u))  # odd forward
    assert torch.equal(grads[0], grads[1])
    # closed form: clamp(u / V_th...) STE, gradient g'(|u| - V_th) = 1[| |u| - 0.5 | <= 0.5]
    assert torch.equal(grads[0], ((u.abs() - 0.5).abs() <= 0.5).double())


def test_ternary_and_real_spike_outputs_are_amplitude_times_spikes() -> None:
    x = _x((4, 3, 5, 2, 2), seed=1)
    tern = Neuron("ternary", feature_shape=(5, 2, 2)).double()
    with torch.no_grad():
        tern.amplitude.weight.fill_(0.7)
    s = Neuron("ternary-vanilla").double()(x)
    assert set(s.unique().tolist()) == {-1.0, 0.0, 1.0}
    assert torch.equal(tern(x), 0.7 * s)
    real = Neuron("real-spike", feature_shape=(5, 2, 2)).double()
    a = torch.linspace(0.2, 1.8, 5, dtype=torch.float64).reshape(5, 1, 1)
    with torch.no_grad():
        real.amplitude.weight.copy_(a)
    s_bin = Neuron("lif").double()(x)
    assert torch.equal(real(x), a * s_bin)
    el = Neuron("real-spike-element", feature_shape=(5, 2, 2)).double()
    ae = _x((5, 2, 2), seed=2)
    with torch.no_grad():
        el.amplitude.weight.copy_(ae)
    assert torch.equal(el(x), ae * s_bin)


def _record(neuron: Neuron, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    seen: list[torch.Tensor] = []
    with observe(neuron, lambda _n, fire_input, _s: seen.append(fire_input.detach())):
        s = neuron(x)
    return seen[0], s


def _channel_norm(h: torch.Tensor, eps: float) -> torch.Tensor:
    mean = h.mean(dim=(0, 2, 3), keepdim=True)
    var = h.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (h - mean) / torch.sqrt(var + eps)


@pytest.mark.parametrize("running", ["shared", "per_step"])
def test_mpbn_uses_per_step_batch_stats_in_training_and_resets_the_raw_membrane(running: str) -> None:
    C = 3
    n = Neuron("mpbn", feature_shape=(C, 4, 4), mpbn_running=running, max_steps=4).double().train()
    lam = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    beta = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    with torch.no_grad():
        n.mpbn.weight.copy_(lam)
        n.mpbn.bias.copy_(beta)
    x = _x((2, 8, C, 4, 4), seed=3) + 0.4
    fire_input, s = _record(n, x)
    eps = n.mpbn.eps
    lam4, beta4 = lam.reshape(1, C, 1, 1), beta.reshape(1, C, 1, 1)
    h0 = x[0]
    r0 = lam4 * _channel_norm(h0, eps) + beta4
    s0 = (r0 >= 0.5).double()
    h1 = 0.25 * h0 * (1 - s0) + x[1]  # hard reset on the raw membrane h0, not on r0
    r1 = lam4 * _channel_norm(h1, eps) + beta4  # step 1 normalised with its own batch statistics
    assert torch.allclose(fire_input[0], r0, atol=1e-12)
    assert torch.allclose(fire_input[1], r1, atol=1e-12)
    assert torch.equal(s[1], (r1 >= 0.5).double())
    m0, m1 = h0.mean(dim=(0, 2, 3)), h1.mean(dim=(0, 2, 3))
    if running == "per_step":  # one running estimate per step, momentum 0.1 from 0
        assert torch.allclose(n.mpbn.running_mean[0], 0.1 * m0) and torch.allclose(n.mpbn.running_mean[1], 0.1 * m1)
    else:  # one shared estimate updated once per step
        assert torch.allclose(n.mpbn.running_mean[0], 0.9 * 0.1 * m0 + 0.1 * m1)


def test_mpbn_uses_running_stats_in_eval() -> None:
    C = 2
    n = Neuron("mpbn", feature_shape=(C, 3, 3), mpbn_running="per_step", max_steps=4).double().eval()
    mu = torch.tensor([[0.1, -0.3], [0.4, 0.2]], dtype=torch.float64)
    var = torch.tensor([[0.5, 2.0], [1.5, 0.8]], dtype=torch.float64)
    with torch.no_grad():
        n.mpbn.running_mean[:2] = mu
        n.mpbn.running_var[:2] = var
        n.mpbn.weight.copy_(torch.tensor([1.5, 0.7]))
    x = _x((2, 5, C, 3, 3), seed=4)
    fire_input, s = _record(n, x)
    lam = torch.tensor([1.5, 0.7], dtype=torch.float64).reshape(1, C, 1, 1)
    r0 = lam * (x[0] - mu[0].reshape(1, C, 1, 1)) / torch.sqrt(var[0].reshape(1, C, 1, 1) + n.mpbn.eps)
    assert torch.allclose(fire_input[0], r0, atol=1e-12)
    h1 = 0.25 * x[0] * (1 - (r0 >= 0.5).double()) + x[1]
    r1 = lam * (h1 - mu[1].reshape(1, C, 1, 1)) / torch.sqrt(var[1].reshape(1, C, 1, 1) + n.mpbn.eps)
    assert torch.allclose(fire_input[1], r1, atol=1e-12)
    before = n.mpbn.running_mean.clone()
    n(x)
    assert torch.equal(n.mpbn.running_mean, before)  # eval never updates statistics
