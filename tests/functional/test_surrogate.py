"""Each surrogate's backward equals the analytic derivative of its smooth form."""

from __future__ import annotations

import math

import pytest
import torch

from spikeforge.functional import NeuronSpec, Surrogate, list_surrogates, reference_multistep, surrogate


@pytest.mark.parametrize("name", list_surrogates())
def test_grad_is_derivative_of_smooth(name):
    sg = surrogate(name)
    # avoid the kinks of piecewise forms
    z = torch.linspace(-2, 2, 401, dtype=torch.float64)
    z = z[(z.abs() - 0.5).abs() > 1e-3]
    z = z[(z.abs() - 1.0).abs() > 1e-3]
    z = z[z.abs() > 1e-3]
    zz = z.clone().requires_grad_()
    (auto,) = torch.autograd.grad(sg.smooth(zz).sum(), zz)
    torch.testing.assert_close(sg.grad(z), auto, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["sigmoid", "atan", "triangle", "dspike"])
def test_gradcheck_smooth(name):
    sg = surrogate(name)
    z = (torch.rand(20, dtype=torch.float64) - 0.5) * 0.8
    assert torch.autograd.gradcheck(sg.smooth, (z.requires_grad_(),))


def test_closed_forms():
    z = torch.tensor([-0.6, -0.5, -0.2, 0.0, 0.3, 0.5, 0.7], dtype=torch.float64)
    assert surrogate("rectangular", width=1.0).grad(z).tolist() == [0, 0, 1, 1, 1, 0, 0]
    assert surrogate("ste", width=1.0).grad(z).tolist() == [0, 1, 1, 1, 1, 1, 0]
    torch.testing.assert_close(surrogate("triangle", width=1.0).grad(z),
                               torch.clamp(1 - z.abs(), min=0))
    a = 2.0
    torch.testing.assert_close(surrogate("atan", alpha=a).grad(z), a / (2 * (1 + (math.pi / 2 * a * z) ** 2)))
    b = 3.0
    inside = (z.abs() <= 0.5).double()
    torch.testing.assert_close(surrogate("dspike", b=b).grad(z),
                               inside * b / (2 * math.tanh(b / 2)) / torch.cosh(b * z) ** 2)
    # dspike smooth maps the window [0, 1] (z in [-1/2, 1/2]) onto [0, 1]
    ends = surrogate("dspike", b=5.0).smooth(torch.tensor([-0.5, 0.5], dtype=torch.float64))
    torch.testing.assert_close(ends, torch.tensor([0.0, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("name", list_surrogates())
def test_neuron_backward_uses_surrogate(name):
    """One step, no reset: d spike / d x equals g'(x - V_th)."""
    sg = surrogate(name)
    x = torch.linspace(-1, 2, 31, dtype=torch.float64).view(1, 31).requires_grad_()
    s, _, _ = reference_multistep(x, NeuronSpec(surrogate=sg, reset="none"), decay=0.0, threshold=0.5)
    (g,) = torch.autograd.grad(s.sum(), x)
    torch.testing.assert_close(g[0], sg.grad(x.detach()[0] - 0.5))


def test_registry_errors_and_specs():
    with pytest.raises(ValueError, match="unknown surrogate"):
        surrogate("gaussian")
    with pytest.raises(ValueError, match="takes only"):
        surrogate("atan", width=2)
    with pytest.raises(ValueError, match="positive"):
        Surrogate("atan", -1.0)
    assert surrogate({"name": "dspike", "b": 5}).param == 5.0
    assert surrogate("dspike", b=5).to_dict() == {"name": "dspike", "b": 5.0}
