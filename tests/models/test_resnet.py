"""Spiking ResNets: exact parameter counts, stems, residual styles, shapes, gradients and exact folding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import spikeforge as sf
from spikeforge.layers import AvgPool2d, BasicBlock, Conv2d, MaxPool2d
from spikeforge.neurons import Neuron

# the four neuron families every model must fold for (issue 5), as neuron presets
FOLD_NEURONS = {"binary": "lif", "ternary": "ternary", "mpbn": "mpbn", "real-spike": "real-spike"}


def conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout


def bn(c: int) -> int:
    return 2 * c


def block(cin: int, cout: int, stride: int) -> int:
    n = conv(3, cin, cout) + bn(cout) + conv(3, cout, cout) + bn(cout)
    if stride != 1 or cin != cout:
        n += conv(1, cin, cout) + bn(cout)
    return n


def stages(cin: int, blocks: tuple[int, ...], widths: tuple[int, ...]) -> int:
    n = 0
    for i, (b, w) in enumerate(zip(blocks, widths, strict=True)):
        for j in range(b):
            n += block(cin, w, 2 if i > 0 and j == 0 else 1)
            cin = w
    return n


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def meta_model(name: str, **kw) -> nn.Module:
    with torch.device("meta"):
        return sf.create_model(name, **kw)


def test_parameter_counts_match_the_standard_architectures():
    # ResNet-18/34 at 1000 classes: torchvision's published 11,689,512 / 21,797,672 (its max-pool stem has no
    # parameters, so the AvgPool stem changes nothing); the "11.2 M" of SNN tables is the backbone without the FC.
    r18 = meta_model("resnet18")
    assert n_params(r18) == 11_689_512
    assert n_params(r18) == conv(7, 3, 64) + bn(64) + stages(64, (2, 2, 2, 2), (64, 128, 256, 512)) + 512 * 1000 + 1000
    assert n_params(r18) - n_params(r18.fc) == 11_176_512
    assert n_params(meta_model("resnet34")) == 21_797_672
    # ResNet-19 (CIFAR-10): 128-256-512, 3-3-2 blocks; the group's FC 512 -> 10, or the tdBN/TET 512 -> 256 -> 10
    body19 = conv(3, 3, 128) + bn(128) + stages(128, (3, 3, 2), (128, 256, 512))
    assert n_params(meta_model("resnet19")) == body19 + 512 * 10 + 10 == 12_569_226
    assert n_params(meta_model("resnet19", head="mlp")) == body19 + 512 * 256 + 256 + 256 * 10 + 10 == 12_697_994
    body20 = conv(3, 3, 128) + bn(128) + stages(128, (3, 3, 3), (128, 256, 512))
    assert n_params(meta_model("resnet20")) == body20 + 5130 == 17_289_866
    stem20m = conv(3, 3, 64) + 2 * conv(3, 64, 64) + 3 * bn(64)
    assert n_params(meta_model("resnet20m")) == stem20m + stages(64, (2, 2, 2, 2), (64, 128, 256, 512)) + 5130


def test_imagenet_stem_uses_avgpool_not_maxpool():
    m = sf.create_model("resnet18", width=1 / 16, input_size=32, num_classes=4)
    conv7, _, sn, pool = m.stem
    assert isinstance(conv7, Conv2d) and conv7.kernel_size == (7, 7) and conv7.stride == (2, 2)
    assert isinstance(sn, Neuron)
    assert isinstance(pool, AvgPool2d) and (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
    assert not any(isinstance(x, MaxPool2d) for x in m.modules())


def test_resnet20m_stem_avgdown_and_zero_init_residual_option():
    m = sf.create_model("resnet20m", width=1 / 16, input_size=16, num_classes=4, zero_init_residual=True)
    convs = [x for x in m.stem if isinstance(x, Conv2d)]
    assert len(convs) == 3 and all(c.kernel_size == (3, 3) and c.stride == (1, 1) for c in convs)
    assert isinstance(m.stem[-1], AvgPool2d) and m.stem[-1].kernel_size == 2
    pool, conv1x1, _ = m.layer2[0].shortcut
    assert isinstance(pool, AvgPool2d) and pool.ceil_mode and conv1x1.stride == (1, 1)
    # zero-initialised residual BN: an identity block starts as sn2(shortcut(x)) = sn2(x)
    blk = m.layer1[1].eval()
    x = torch.randn(3, 2, 4, 4, 4)
    assert torch.equal(blk(x), blk.sn2(x))
    # ... which is why it is off by default: on spikes {0, 1} sn2 sits on the rectangular surrogate's window
    # edges, so no gradient reaches the stem
    m.train()
    m(torch.randn(1, 3, 3, 16, 16)).sum().backward()
    assert m.stem[0].weight.grad.abs().sum() == 0
    assert not any(b.bn2.weight.abs().sum() == 0 for b in sf.create_model("resnet20m", width=1 / 16).modules()
                   if isinstance(b, BasicBlock))


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet19", "resnet20", "resnet20m"])
@pytest.mark.parametrize("T", [1, 4])
def test_forward_shape_and_backward(name, T):
    torch.manual_seed(0)
    # batch 3 at 32×32: the last stage's training-mode BN sees more than two values per channel
    m = sf.create_model(name, width=1 / 16, input_size=32, num_classes=7)
    x = torch.randn(T, 3, 3, 32, 32)
    y = m(x)
    assert y.shape == (T, 3, 7)
    y.mean(0).logsumexp(-1).sum().backward()
    first_conv = next(x for x in m.modules() if isinstance(x, Conv2d))
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name,width", [("resnet18", 1 / 16), ("resnet34", 1 / 16), ("resnet19", 1 / 32),
                                        ("resnet20", 1 / 32), ("resnet20m", 1 / 16)])
@pytest.mark.parametrize("kind", list(FOLD_NEURONS))
def test_folds_exactly(name, width, kind, check_fold):
    torch.manual_seed(1)
    s = 16 if name in ("resnet18", "resnet34") else 8  # the ImageNet stem divides by 4
    m = sf.create_model(name, width=width, input_size=s, num_classes=5, neuron=FOLD_NEURONS[kind])
    check_fold(m, torch.randn(2, 2, 3, s, s))


@pytest.mark.parametrize("style,neuron", [("sew", "lif"), ("ms", "lif"), ("ms", "real-spike")])
def test_residual_styles_run_and_fold(style, neuron, check_fold):
    torch.manual_seed(2)
    m = sf.create_model("resnet19", width=1 / 32, input_size=8, num_classes=3, style=style, neuron=neuron)
    assert all(b.style == style for b in m.modules() if isinstance(b, BasicBlock))
    if style == "ms":
        # the residual stream is real-valued: the stem ends in BN (no neuron), a final neuron spikes before the pool
        assert not isinstance(m.stem[-1], Neuron) and isinstance(m.final_sn, Neuron)
    check_fold(m, torch.randn(2, 2, 3, 8, 8))


@pytest.mark.parametrize("norm", ["tdbn", "bntt", "tebn"])
def test_norm_variants(norm, check_fold):
    torch.manual_seed(3)
    m = sf.create_model("resnet19", width=1 / 32, input_size=8, num_classes=3, norm=norm)
    assert m(torch.randn(4, 2, 3, 8, 8)).shape == (4, 2, 3)
    check_fold(m, torch.randn(2, 2, 3, 8, 8))


def test_element_wise_options_need_and_check_the_input_size():
    m = sf.create_model("resnet19", width=1 / 32, input_size=(8, 12), num_classes=3, neuron="real-spike-element")
    stem_sn = m.stem[2]
    assert tuple(stem_sn.amplitude.weight.shape) == (4, 8, 12)
    assert tuple(m.layer3[0].sn1.amplitude.weight.shape) == (16, 2, 3)
    assert m(torch.randn(1, 2, 3, 8, 12)).shape == (1, 2, 3)
    with pytest.raises(ValueError, match="built for per-sample features"):
        m(torch.randn(1, 2, 3, 8, 8))


def test_bad_options_raise_clear_errors():
    with pytest.raises(ValueError, match="residual style"):
        sf.create_model("resnet19", style="dense")
    with pytest.raises(ValueError, match="head must be one of"):
        sf.create_model("resnet19", head="deep")
    with pytest.raises(ValueError, match="too small"):
        sf.create_model("resnet20m", input_size=1, width=1 / 16)
    with pytest.raises(ValueError, match="width multiplier"):
        sf.create_model("resnet20", width=0)
