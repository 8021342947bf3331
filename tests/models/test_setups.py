"""Issue 11 set-ups in the zoo ResNets: InfLoR's tdBN alphas by block role on ResNet-20m, and the element-wise
Real Spike fold through average pooling in every ResNet."""

from __future__ import annotations

import math

import pytest
import torch

import spikeforge as sf
from spikeforge.layers import BasicBlock, BatchNorm2d, TDBatchNorm2d, UnsharedConv2d
from spikeforge.neurons import neuron_config


def test_inflor_resnet20m_tdbn_alpha_by_role_and_plain_stem(check_fold):
    m = sf.create_model("resnet20m", width=1 / 16, input_size=16, num_classes=4, norm="tdbn", neuron="inflor")
    stem_bns = [x for x in m.stem if isinstance(x, BatchNorm2d)]
    assert len(stem_bns) == 3 and not any(isinstance(x, TDBatchNorm2d) for x in m.stem.modules())
    r = 1 / math.sqrt(2)
    for blk in (b for b in m.modules() if isinstance(b, BasicBlock)):
        assert isinstance(blk.bn1, TDBatchNorm2d) and isinstance(blk.bn2, TDBatchNorm2d)
        assert blk.bn1.v_th == blk.bn2.v_th == 0.5
        if isinstance(blk.shortcut, torch.nn.Identity):  # identity block: alpha 1, 1
            assert (blk.bn1.alpha, blk.bn2.alpha) == (1.0, 1.0)
        else:  # downsampling block: alpha 1 on bn1, 1/sqrt(2) on bn2 and the shortcut BN
            assert blk.bn1.alpha == 1.0 and blk.bn2.alpha == pytest.approx(r)
            assert blk.shortcut[-1].alpha == pytest.approx(r)
    assert m.layer2[0].bn2.alpha == pytest.approx(r) and m.layer2[1].bn2.alpha == 1.0
    # the user may override roles (or give one number for all)
    o = sf.create_model("resnet20m", width=1 / 16, input_size=16, norm="tdbn", tdbn_alpha={"down.bn2": 0.5})
    assert o.layer2[0].bn2.alpha == 0.5 and o.layer2[0].shortcut[-1].alpha == pytest.approx(r)
    one = sf.create_model("resnet20m", width=1 / 16, input_size=16, norm="tdbn", tdbn_alpha=1.0)
    assert one.layer2[0].shortcut[-1].alpha == 1.0
    with pytest.raises(ValueError, match="unknown role"):
        sf.create_model("resnet20m", width=1 / 16, norm="tdbn", tdbn_alpha={"down.bn3": 1.0})
    with pytest.raises(ValueError, match="tdbn_alpha is an option of norm='tdbn'"):
        sf.create_model("resnet20m", width=1 / 16, tdbn_alpha=1.0)
    # tdBN folds with gamma·alpha·V_th: exact
    torch.manual_seed(4)
    check_fold(m, torch.randn(2, 2, 3, 16, 16))


def test_inflor_presets_reset_by_one():
    # official code (methods §5): IF, soft reset subtracts 1.0 while firing at 0.5; paper form: LIF u = tau (u - o) + x
    code, paper = neuron_config("inflor"), neuron_config("soft-mpr")
    assert (code.decay, code.threshold, code.reset, code.soft_reset_amount) == (1.0, 0.5, "soft", 1.0)
    assert (paper.decay, paper.threshold, paper.reset, paper.soft_reset_amount) == (0.25, 0.5, "soft", 1.0)
    n = sf.neurons.Neuron("soft-mpr").double()
    s = n(torch.tensor([[0.6], [0.0]], dtype=torch.float64))  # fires at 0.6, left at 0.25·(0.6 − 1) = −0.1
    assert s.flatten().tolist() == [1.0, 0.0]
    _, state = n.run(torch.tensor([[0.6]], dtype=torch.float64))
    assert float(state.v) == pytest.approx(-0.4)


@pytest.mark.parametrize("name,width,size", [("resnet19", 1 / 32, 8), ("resnet20", 1 / 32, 8),
                                             ("resnet20m", 1 / 16, 16), ("resnet18", 1 / 16, 16)])
def test_element_wise_real_spike_folds_through_average_pooling(name, width, size, check_fold):
    torch.manual_seed(5)
    m = sf.create_model(name, width=width, input_size=size, num_classes=5, neuron="real-spike-element")
    folded = check_fold(m, torch.randn(2, 2, 3, size, size))
    # the global pool moved into the classifier: a linear layer over the flattened C·H·W map
    C = m.fc.in_features
    last_stage = [stage for key, stage in m.named_children() if key.startswith("layer")][-1]
    hw = last_stage[-1].sn2.amplitude.weight.shape[1:]
    assert isinstance(folded.pool, torch.nn.Identity) and folded.fc.in_features == C * hw[0] * hw[1]
    if name in ("resnet20m", "resnet18"):
        # the stem pool became part of layer1.0's conv1 (unshared) and a depthwise unshared pool on its shortcut
        assert isinstance(folded.stem[-1], torch.nn.Identity)
        assert isinstance(folded.layer1[0].conv1, UnsharedConv2d)
        sc = folded.layer1[0].shortcut
        assert isinstance(sc, UnsharedConv2d) and sc.groups == sc.in_channels == sc.out_channels
