"""Element-wise amplitudes through average pooling: the pool composed with its consumer, against direct
evaluation and the closed form of the global-pool case."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeforge.fold import FoldError, fold, verify_fold
from spikeforge.fold.linear import compose_pool_conv, compose_pool_linear, materialize_pool, pending_pool
from spikeforge.layers import AdaptiveAvgPool2d, AvgPool2d, Conv2d, Flatten, Linear, UnsharedConv2d, make_neuron

G = torch.Generator().manual_seed(0)


def spikes(*shape: int) -> torch.Tensor:
    return (torch.rand(shape, generator=G) > 0.5).double()


POOLS = [
    AvgPool2d(2), AvgPool2d(3, 2, 1), AvgPool2d(3, 2, 1, count_include_pad=False),
    AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False), AvgPool2d(3, 1, 1), AvgPool2d(2, 2, divisor_override=3),
]


@pytest.mark.parametrize("pool", POOLS, ids=repr)
@pytest.mark.parametrize("conv_args", [(3, 1, 1), (3, 2, 1), (1, 1, 0), (2, 2, 0)])
def test_pool_then_conv_is_one_unshared_conv(pool, conv_args):
    k, s, p = conv_args
    a = torch.rand(3, 8, 8, generator=G, dtype=torch.float64) * 2 - 0.5  # any sign
    conv = Conv2d(3, 4, k, s, p, bias=True).double()
    x = spikes(2, 2, 3, 8, 8)
    ref = conv(pool(a * x))
    un = compose_pool_conv(conv, pending_pool(pool, a, "pool"), "conv")
    assert isinstance(un, UnsharedConv2d)
    assert torch.allclose(un(x), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("pool", POOLS, ids=repr)
def test_materialized_pool_is_a_depthwise_unshared_conv(pool):
    a = torch.rand(3, 8, 8, generator=G, dtype=torch.float64) + 0.2
    x = spikes(2, 2, 3, 8, 8)
    layer = materialize_pool(pending_pool(pool, a, "pool"), torch.float64, None, "shortcut")
    assert layer.groups == 3 and layer.weight.shape[:2] == (3, 1)
    assert torch.allclose(layer(x), pool(a * x), rtol=0, atol=1e-12)


def test_global_pool_then_linear_closed_form():
    C, H, W, O = 3, 4, 5, 2
    a = torch.rand(C, H, W, generator=G, dtype=torch.float64) + 0.5
    lin = Linear(C, O).double()
    new = compose_pool_linear(lin, pending_pool(AdaptiveAvgPool2d(1), a, "pool"), "fc")
    assert new.in_features == C * H * W
    for o in range(O):
        for c in range(C):  # W'[o, c·HW + p] = W[o, c]·a[c, p]/HW
            expected = lin.weight[o, c] * a[c].flatten() / (H * W)
            assert torch.allclose(new.weight[o, c * H * W:(c + 1) * H * W], expected, rtol=0, atol=1e-15)
    assert torch.equal(new.bias, lin.bias)


def test_element_amplitude_through_global_pool_folds_in_a_network():
    net = nn.Sequential(Conv2d(2, 4, 3, 1, 1), make_neuron("real-spike-element", 4, (6, 6)), AdaptiveAvgPool2d(1),
                        Flatten(), Linear(4, 3))
    with torch.no_grad():
        net[1].amplitude.weight.uniform_(0.3, 1.7, generator=G)
    net = net.double().eval()
    folded = fold(net)
    assert isinstance(folded[2], nn.Identity) and folded[4].in_features == 4 * 36
    x = torch.randn(3, 2, 2, 6, 6, generator=G, dtype=torch.float64)
    assert verify_fold(net, folded, x).ok(1e-12)


def test_pooled_element_amplitude_into_a_neuron_is_refused():
    net = nn.Sequential(Conv2d(2, 4, 3, 1, 1), make_neuron("real-spike-element", 4, (6, 6)), AvgPool2d(2),
                        make_neuron("lif", 4, (3, 3)), Flatten(), Linear(36, 3)).eval()
    with pytest.raises(FoldError, match=r"average-pooled by 2\) reaches 3"):
        fold(net)
