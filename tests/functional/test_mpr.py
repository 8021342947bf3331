"""The Membrane Potential Rectifier of InfLoR-SNN (arXiv:2307.04356)."""

from __future__ import annotations

import math

import torch

from spikeforge.functional import mpr, mpr_grad, mpr_inverse


def test_fixed_points_and_pieces():
    u = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(mpr(u), u)
    torch.testing.assert_close(mpr(torch.tensor([8.0], dtype=torch.float64)), torch.tensor([2.0], dtype=torch.float64))
    torch.testing.assert_close(mpr(torch.tensor([-7.0], dtype=torch.float64)), torch.tensor([-1.0],
                                                                                            dtype=torch.float64))
    mid = torch.tensor([0.25], dtype=torch.float64)
    expected = math.tanh(3 * (0.25 - 0.5)) / (2 * math.tanh(1.5)) + 0.5
    torch.testing.assert_close(mpr(mid), torch.tensor([expected], dtype=torch.float64))


def test_monotone_continuous_and_derivative():
    u = torch.linspace(-3, 4, 7001, dtype=torch.float64)
    y = mpr(u)
    assert bool((y[1:] > y[:-1]).all())
    assert float((y[1:] - y[:-1]).abs().max()) < 1e-2  # no jumps
    uu = u[(u.abs() > 1e-6) & ((u - 1).abs() > 1e-6)].clone().requires_grad_()
    (auto,) = torch.autograd.grad(mpr(uu).sum(), uu)
    torch.testing.assert_close(mpr_grad(uu.detach()), auto)
    peak = mpr_grad(torch.tensor(0.5, dtype=torch.float64))
    assert abs(float(peak) - 3 / (2 * math.tanh(1.5))) < 1e-12


def test_inverse():
    y = torch.linspace(-2, 3, 101, dtype=torch.float64)
    torch.testing.assert_close(mpr(mpr_inverse(y)), y, atol=1e-9, rtol=0)
    assert float(mpr_inverse(0.5)) == 0.5
