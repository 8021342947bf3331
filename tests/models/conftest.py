"""Shared fixtures of the model-zoo tests: trained-looking inference state and the fold check."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

import spikeforge as sf
from spikeforge.folding import fold, verify_fold
from spikeforge.neurons import Neuron, observe


def randomise_inference_state(model: nn.Module, seed: int = 0) -> None:
    """Give every BN / MPBN non-trivial running statistics and affine parameters and every amplitude a positive
    non-unit value, as after training (a freshly built model would fold trivially)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(t: Tensor, lo: float, hi: float) -> Tensor:
        return torch.rand(t.shape, generator=g) * (hi - lo) + lo

    with torch.no_grad():
        for m in model.modules():
            stats = [getattr(m, k, None) for k in ("running_mean", "running_var")]
            if all(isinstance(s, Tensor) for s in stats):
                m.running_mean.copy_(rnd(m.running_mean, -0.2, 0.2))
                m.running_var.copy_(rnd(m.running_var, 0.5, 1.5))
                if isinstance(getattr(m, "weight", None), Tensor):
                    m.weight.copy_(rnd(m.weight, 0.6, 1.4))
                    m.bias.copy_(rnd(m.bias, -0.2, 0.2))
            if isinstance(getattr(m, "step_scale", None), Tensor):
                m.step_scale.copy_(rnd(m.step_scale, 0.6, 1.4))
            if isinstance(m, Neuron) and m.amplitude is not None:
                m.amplitude.weight.copy_(rnd(m.amplitude.weight, 0.5, 1.5))


def firing_rate(model: nn.Module, x: Tensor) -> float:
    """Fraction of non-zero spikes over all neurons of one forward pass."""
    fired = total = 0

    def rec(_n: Neuron, _u: Tensor, s: Tensor) -> None:
        nonlocal fired, total
        fired += int((s != 0).sum())
        total += s.numel()

    with torch.no_grad(), observe(model, rec):
        model(x)
    return fired / max(total, 1)


@pytest.fixture
def check_fold() -> Callable[[nn.Module, Tensor], nn.Module]:
    """``check_fold(model, x)``: randomise the inference state, fold, and require exact agreement (identical
    spikes in float64, logits within 1e-6 relative, plain spike values) on an input where neurons do fire."""

    def check(model: nn.Module, x: Tensor) -> nn.Module:
        randomise_inference_state(model)
        model.eval()
        rate = firing_rate(model, x)
        assert 0.01 < rate < 0.99, f"degenerate test input: firing rate {rate:.3f}"
        folded = fold(model)
        report = verify_fold(model, folded, x)
        assert report.ok(1e-6), report
        assert not any(n.amplitude is not None or n.mpbn is not None for _, n in sf.neurons.spiking_neurons(folded))
        return folded

    return check


@pytest.fixture
def spike_rate() -> Callable[[nn.Module, Tensor], float]:
    """``spike_rate(model, x)``: fraction of non-zero spikes over all neurons of ``model(x)``."""
    return firing_rate
