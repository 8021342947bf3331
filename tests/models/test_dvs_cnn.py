"""The event-frame CNN: 2-polarity input, sizes 34/48/128, parameter count, gradients, exact folding."""

from __future__ import annotations

import pytest
import torch

import spikeforge as sf
from spikeforge.layers import AvgPool2d, Conv2d, Linear

FOLD_NEURONS = {"binary": "lif", "ternary": "ternary", "mpbn": "mpbn", "real-spike": "real-spike"}


def test_parameter_count_by_hand():
    m = sf.create_model("dvs_cnn")  # 48×48, widths 64-128-256-256, four AvgPool(2) -> 3×3
    convs = 9 * (2 * 64 + 64 * 128 + 128 * 256 + 256 * 256)
    bns = 2 * (64 + 128 + 256 + 256)
    fc = 256 * 3 * 3 * 10 + 10
    assert sum(p.numel() for p in m.parameters()) == convs + bns + fc == 984_074
    assert m.input_kind == "events" and m.input_shape == (2, 48, 48)


@pytest.mark.parametrize("size,grid", [(34, 2), (48, 3), (128, 8)])
@pytest.mark.parametrize("T", [1, 4])
def test_forward_shape_and_backward(size, grid, T):
    torch.manual_seed(0)
    m = sf.create_model("dvs_cnn", input_size=size, width=1 / 16, num_classes=11)
    fc = m[-1]
    assert isinstance(fc, Linear) and fc.in_features == 16 * grid * grid
    x = (torch.rand(T, 2, 2, size, size) < 0.2).float()  # event counts per polarity
    y = m(x)
    assert y.shape == (T, 2, 11)
    y.sum().backward()
    assert m[0].weight.grad is not None and m[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", list(FOLD_NEURONS))
def test_folds_exactly(kind, check_fold):
    torch.manual_seed(1)
    m = sf.create_model("dvs_cnn", input_size=34, width=1 / 16, num_classes=5, dropout=0.3,
                        neuron=FOLD_NEURONS[kind])
    check_fold(m, torch.randn(2, 2, 2, 34, 34))


def test_custom_stages_and_errors():
    m = sf.create_model("dvs_cnn", widths=(8, 8), input_size=16)
    assert sum(isinstance(k, Conv2d) for k in m) == 2 and sum(isinstance(k, AvgPool2d) for k in m) == 2
    assert m[-1].in_features == 8 * 4 * 4
    with pytest.raises(ValueError, match="too small"):
        sf.create_model("dvs_cnn", input_size=8)
    with pytest.raises(ValueError, match="dropout"):
        sf.create_model("dvs_cnn", dropout=1.0)
