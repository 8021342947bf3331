"""Where each SNN batch-norm variant takes its statistics from."""

from __future__ import annotations

import pytest
import torch

from spikeforge import layers


def _x(T=4, B=3, C=2, H=3, W=3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(T, B, C, H, W, generator=g) + 2.0 * torch.arange(T).view(T, 1, 1, 1, 1)


def test_time_shared_bn_pools_over_time_and_batch():
    x = _x()
    y = layers.BatchNorm2d(2)(x)
    mean = y.mean(dim=(0, 1, 3, 4))
    var = y.var(dim=(0, 1, 3, 4), unbiased=False)
    torch.testing.assert_close(mean, torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(var, torch.ones(2), atol=1e-3, rtol=0)
    # per-step means are NOT zero: statistics are shared over T
    assert float(y.detach().mean(dim=(1, 2, 3, 4)).abs().max()) > 0.1


def test_tdbn_scales_by_alpha_vth():
    x = _x()
    bn, td = layers.BatchNorm2d(2), layers.TDBatchNorm2d(2, alpha=1.0, v_th=0.5)
    torch.testing.assert_close(td(x), 0.5 * bn(x))
    torch.testing.assert_close(td.running_mean, bn.running_mean)


def test_bntt_normalises_each_step_separately():
    x = _x()
    y = layers.BNTT2d(2, max_steps=8)(x)
    torch.testing.assert_close(y.mean(dim=(1, 3, 4)), torch.zeros(4, 2), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="8 steps"):
        layers.BNTT2d(2, max_steps=8)(torch.zeros(9, 2, 2, 3, 3))


def test_tebn_shared_stats_then_per_step_scale():
    x = _x()
    te, bn = layers.TEBN2d(2, max_steps=6), layers.BatchNorm2d(2)
    with torch.no_grad():
        te.step_scale.copy_(torch.arange(1.0, 7.0).view(6, 1).expand(6, 2))
    expected = bn(x) * torch.arange(1.0, 5.0).view(4, 1, 1, 1, 1)
    torch.testing.assert_close(te(x), expected)


def test_tdbn_cumulative_average_momentum_none():
    """momentum=None: the cumulative average of the batch statistics, as torch.nn.BatchNorm2d."""
    from spikeforge.layers import TDBatchNorm2d

    torch.manual_seed(0)
    td = TDBatchNorm2d(3, momentum=None).train()
    ref = torch.nn.BatchNorm2d(3, momentum=None).train()
    for _ in range(3):
        x = torch.randn(2, 4, 3, 5, 5) * 2 + 1
        td(x)
        ref(x.flatten(0, 1))
    torch.testing.assert_close(td.running_mean, ref.running_mean)
    torch.testing.assert_close(td.running_var, ref.running_var)
    assert int(td.num_batches_tracked) == 3
