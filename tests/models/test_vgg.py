"""Spiking VGG-11/16 (BN, CIFAR form): exact parameter counts, structure, shapes, gradients, exact folding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import spikeforge as sf
from spikeforge.layers import AvgPool2d, Conv2d, MaxPool2d
from spikeforge.models.vgg import VGG_CONFIGS
from spikeforge.neurons import Neuron

FOLD_NEURONS = {"binary": "lif", "ternary": "ternary", "mpbn": "mpbn", "real-spike": "real-spike"}


def vgg_params(config, classes: int) -> int:
    """3×3 convs with bias, BN (γ, β) per conv, FC 512 -> classes."""
    n, cin = 0, 3
    for v in config:
        if v != "M":
            n += 9 * cin * v + v + 2 * v
            cin = v
    return n + cin * classes + classes


def test_parameter_counts_match_the_literature():
    with torch.device("meta"):
        v16, v11 = sf.create_model("vgg16"), sf.create_model("vgg11", num_classes=100)
    # VGG-16-BN for CIFAR-10 with a single FC: the 14.7 M of the SNN literature
    assert sum(p.numel() for p in v16.parameters()) == vgg_params(VGG_CONFIGS["vgg16"], 10) == 14_728_266
    assert sum(p.numel() for p in v11.parameters()) == vgg_params(VGG_CONFIGS["vgg11"], 100) == 9_231_114 + 90 * 513


@pytest.mark.parametrize("name,n_conv", [("vgg11", 8), ("vgg16", 13)])
def test_structure_conv_bn_neuron_and_five_avg_pools(name, n_conv):
    m = sf.create_model(name, width=1 / 16)
    assert isinstance(m, nn.Sequential) and m.input_kind == "static"
    kids = list(m)
    convs = [i for i, k in enumerate(kids) if isinstance(k, Conv2d)]
    assert len(convs) == n_conv
    assert all(isinstance(kids[i + 2], Neuron) for i in convs)
    assert sum(isinstance(k, AvgPool2d) for k in kids) == 5 and not any(isinstance(k, MaxPool2d) for k in kids)
    assert sum(isinstance(k, MaxPool2d) for k in sf.create_model(name, width=1 / 16, pool="max")) == 5


@pytest.mark.parametrize("name", ["vgg11", "vgg16"])
@pytest.mark.parametrize("T", [1, 4])
def test_forward_shape_and_backward(name, T):
    torch.manual_seed(0)
    m = sf.create_model(name, width=1 / 16, num_classes=6)
    y = m(torch.randn(T, 3, 3, 32, 32))
    assert y.shape == (T, 3, 6)
    y.mean(0).logsumexp(-1).sum().backward()
    assert m[0].weight.grad is not None and m[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["vgg11", "vgg16"])
@pytest.mark.parametrize("kind", list(FOLD_NEURONS))
def test_folds_exactly(name, kind, check_fold):
    torch.manual_seed(1)
    m = sf.create_model(name, width=1 / 16, num_classes=5, neuron=FOLD_NEURONS[kind])
    check_fold(m, torch.randn(2, 2, 3, 32, 32))


def test_max_pool_folds_a_positive_channel_amplitude(check_fold):
    torch.manual_seed(2)
    m = sf.create_model("vgg11", width=1 / 16, num_classes=5, neuron="real-spike", pool="max")
    check_fold(m, torch.randn(2, 2, 3, 32, 32))


def test_bad_options():
    with pytest.raises(ValueError, match="pool must be"):
        sf.create_model("vgg16", pool="median")
    with pytest.raises(ValueError, match="too small"):
        sf.create_model("vgg16", input_size=16)
