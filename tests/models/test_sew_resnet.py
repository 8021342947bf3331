"""Real Spike's released SEW-ResNet-18/34: architecture against a hand count and an exact fold with unequal
amplitudes on the addends of every SEW sum."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import spikeforge as sf
from spikeforge.fold import fold, verify_fold
from spikeforge.layers import BasicBlock, Conv2d, MaxPool2d
from spikeforge.neurons import Neuron


def trained_looking(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics/affines (BN biases shifted up so that the IF neurons with V_th = 1 keep firing in
    the deep stages) and every amplitude uniform in [0.5, 1.5), so no two addends of a SEW sum share one."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
                m.weight.uniform_(0.6, 1.4, generator=g)
                m.bias.uniform_(0.3, 0.7, generator=g)
            if isinstance(m, Neuron) and m.amplitude is not None:
                m.amplitude.weight.uniform_(0.5, 1.5, generator=g)


def conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout


def bn(c: int) -> int:
    return 2 * c


def sew_block(cin: int, cout: int, stride: int) -> int:
    # conv-BN-sn1 (amplitude C) + conv-BN-sn2 (amplitude C); downsampling: conv 1×1 + BN + neuron (no amplitude)
    n = conv(3, cin, cout) + bn(cout) + cout + conv(3, cout, cout) + bn(cout) + cout
    if stride != 1 or cin != cout:
        n += conv(1, cin, cout) + bn(cout)
    return n


def hand_count(blocks: tuple[int, ...], classes: int = 1000) -> int:
    n = conv(7, 3, 64) + bn(64) + 64  # stem conv, BN, the stem neuron's channel-wise amplitude
    cin = 64
    for i, (b, w) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True)):
        for j in range(b):
            n += sew_block(cin, w, 2 if i > 0 and j == 0 else 1)
            cin = w
    return n + 512 * classes + classes


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_a_hand_count():
    with torch.device("meta"):
        r18, r34 = sf.create_model("sew_resnet18"), sf.create_model("sew_resnet34")
    assert n_params(r18) == hand_count((2, 2, 2, 2)) == 11_689_512 + 3_904 == 11_693_416
    assert n_params(r34) == hand_count((3, 4, 6, 3)) == 21_797_672 + 7_616 == 21_805_288


def test_released_architecture():
    m = sf.create_model("sew_resnet18", width=1 / 16, input_size=32, num_classes=4)
    conv7, _, sn, pool = m.stem
    assert isinstance(conv7, Conv2d) and conv7.kernel_size == (7, 7) and conv7.stride == (2, 2)
    assert isinstance(pool, MaxPool2d) and (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
    neurons = dict(sf.neurons.spiking_neurons(m))
    for name, n in neurons.items():
        c = n.config
        # SpikingJelly IF with its defaults: no leak, V_th 1, hard reset to 0, detached reset, ATan alpha 2
        assert (c.decay, c.threshold, c.reset, c.v_reset, c.detach_reset) == (1.0, 1.0, "hard", 0.0, True), name
        assert (n.spec.surrogate.name, n.spec.surrogate.param) == ("atan", 2.0)
        on_shortcut = ".shortcut." in name
        assert (n.amplitude is None) == on_shortcut, name
        if not on_shortcut:
            assert n.amplitude.granularity == "channel" and bool((n.amplitude.weight == 1).all())
    blocks = [b for b in m.modules() if isinstance(b, BasicBlock)]
    assert len(blocks) == 8 and all(b.style == "sew" for b in blocks)
    assert sum(isinstance(b.shortcut, nn.Identity) for b in blocks) == 5  # layer1 (2) + one per later stage
    assert m(torch.randn(2, 2, 3, 32, 32)).shape == (2, 2, 4)


@pytest.mark.parametrize("name", ["sew_resnet18", "sew_resnet34"])
def test_unequal_amplitudes_fold_exactly(name, spike_rate):
    torch.manual_seed(0)
    m = sf.create_model(name, width=1 / 16, input_size=32, num_classes=5)
    trained_looking(m)
    m.eval()
    x = torch.randn(4, 2, 3, 32, 32) * 2
    assert 0.05 < spike_rate(m, x) < 0.6
    folded = fold(m)
    report = verify_fold(m, folded, x)
    assert report.ok(1e-5), report
    assert not any(n.amplitude is not None for _, n in sf.neurons.spiking_neurons(folded))
    # every SEW sum joins by concatenation; an identity stream accumulates terms until the next downsampling
    assert all(b.join == "cat" for b in folded.modules() if isinstance(b, BasicBlock))
    C = m.layer1[0].conv1.in_channels
    assert folded.layer1[0].conv1.in_channels == C  # the stem output: one term (max pool keeps the amplitude)
    assert folded.layer1[1].conv1.in_channels == 2 * C  # sn2 + the stem term
    k = len(m.layer1) + 1  # the stem term and one sn2 term per layer1 block
    assert folded.layer2[0].conv1.in_channels == folded.layer2[0].shortcut[0].in_channels == k * C
    n_last = len(m.layer4)
    assert folded.fc.in_features == (n_last + 1) * m.fc.in_features  # downsampling sum (2 terms) + one per block
    # the first consumer's slices: W·a_sn2 on layer1.1's sn2 term, W·a_stem on the stem term
    w, a_stem = m.layer1[1].conv1.weight, m.stem[2].amplitude.weight.reshape(1, C, 1, 1)
    a2 = m.layer1[0].sn2.amplitude.weight.reshape(1, C, 1, 1)
    w_bn = folded.layer1[1].conv1.weight / w.repeat(1, 2, 1, 1)  # per output channel BN factor × amplitude
    assert torch.allclose(w_bn[:, :C] / a2, w_bn[:, C:] / a_stem, rtol=1e-5)
