"""PointNet fold rules: the amplitude moves into the feature T-Net's matrix, max over points, BN across dropout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import spikeforge as sf
from spikeforge.folding import FoldError, StepAffine, fold, verify_fold
from spikeforge.models.pointnet import SpikingPointNet


def trained_pointnet(neuron: str, seed: int = 0) -> SpikingPointNet:
    torch.manual_seed(seed)
    m = sf.create_model("pointnet", width=1 / 16, num_classes=4, neuron=neuron)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.running_mean.copy_(torch.rand(mod.running_mean.shape, generator=g) * 0.4 - 0.2)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=g) + 0.6)
        for _, n in sf.neurons.spiking_neurons(m):
            if n.amplitude is not None:
                n.amplitude.weight.copy_(torch.rand(n.amplitude.weight.shape, generator=g) + 0.5)
    return m.eval()


def points(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 3, 3, 24, generator=torch.Generator().manual_seed(seed))


def test_feature_transform_becomes_diag_a_times_a():
    m = trained_pointnet("real-spike")
    a = m.mlp1[2].amplitude.weight.detach().reshape(-1)  # channel-wise amplitude of the spikes fed to the T-Net
    x = points()
    with torch.no_grad():
        m(x)
        A = m.last_feature_transform
        f = fold(m)
        f(x)
        A_folded = f.last_feature_transform
    assert torch.allclose(A_folded, a[:, None] * A, atol=1e-5)
    assert torch.allclose(f.fstn.out.offset, torch.diag(a))
    assert verify_fold(m, f, x).ok(1e-6)


def test_head_bn_merges_into_the_linear_across_dropout():
    f = fold(trained_pointnet("lif"))
    assert isinstance(f.head[4], nn.Dropout) and isinstance(f.head[5], nn.Identity)
    assert not any(isinstance(x, (StepAffine, nn.modules.batchnorm._BatchNorm)) for x in f.modules())


def test_negative_channel_amplitude_folds_through_the_transform_but_not_through_max():
    m = trained_pointnet("real-spike")
    with torch.no_grad():
        m.mlp1[2].amplitude.weight[0] = -0.7  # feeds a conv and the transform product: any sign folds
    assert verify_fold(m, fold(m), points()).ok(1e-6)
    with torch.no_grad():
        m.stn.features[8].amplitude.weight[1] = -0.3  # feeds the max over points
    with pytest.raises(FoldError, match="max-pool over points stn.pool"):
        fold(m)


def test_layer_wise_ternary_amplitude_folds():
    m = trained_pointnet("ternary")
    assert verify_fold(m, fold(m), points()).ok(1e-6)
