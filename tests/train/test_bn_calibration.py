"""BN recalibration ("precise BN") before evaluation: running statistics = plain average over the batches."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeforge import layers
from spikeforge.models.joint_asnn import StepBatchNorm2d
from spikeforge.train.bn_calibration import recalibrate_bn


def test_running_statistics_become_the_average_over_all_calls() -> None:
    torch.manual_seed(0)
    bn = layers.BatchNorm1d(3)
    step = StepBatchNorm2d(2)
    td = layers.TDBatchNorm2d(2)
    batches = [torch.randn(2, 4, 3) * (i + 1) + i for i in range(3)]
    recalibrate_bn(bn, batches)
    flat = [b.flatten(0, 1) for b in batches]
    torch.testing.assert_close(bn.running_mean, torch.stack([f.mean(0) for f in flat]).mean(0))
    torch.testing.assert_close(bn.running_var, torch.stack([f.var(0) for f in flat]).mean(0))  # unbiased per call
    assert bn.momentum == 0.1 and bn.training  # momentum and mode restored
    # per-step BN: every step is one call, averaged over T steps x batches
    seqs = [torch.randn(3, 4, 2, 2, 2) + i for i in range(2)]
    recalibrate_bn(step, seqs)
    per_call = [s[t] for s in seqs for t in range(3)]
    torch.testing.assert_close(step.running_mean, torch.stack([c.mean(dim=(0, 2, 3)) for c in per_call]).mean(0))
    # tdBN (forward without momentum=None support) gets the cumulative factor 1/k from a hook
    recalibrate_bn(td, seqs)
    torch.testing.assert_close(td.running_mean, torch.stack([s.mean(dim=(0, 1, 3, 4)) for s in seqs]).mean(0))
    assert td.momentum == 0.1
    with pytest.raises(ValueError, match="at least one batch"):
        recalibrate_bn(bn, [])


def test_batch_constant_channel_drift_is_removed() -> None:
    # the Spiking PointNet T-Net case: the BN input is constant over the batch (pooled spikes all 1), so training
    # mode outputs beta exactly; after the weights moved, the lagging running mean / sqrt(~0 variance) blows up
    # eval mode; recalibration restores eval == train
    torch.manual_seed(1)
    model = nn.Sequential(layers.Linear(8, 4), layers.BatchNorm1d(4))
    ones = torch.ones(1, 16, 8)
    model.train()
    for _ in range(200):  # running variance decays towards 0 (0.9^200)
        with torch.no_grad():
            model(ones)
            model[0].weight.add_(1e-3 * torch.randn_like(model[0].weight))  # the drift of Adam-normalised noise
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
        train_out = model(ones)[0, 0]
    torch.testing.assert_close(train_out, model[1].bias.detach())
    model.eval()
    with torch.no_grad():
        assert (model(ones)[0, 0] - train_out).abs().max() > 1.0  # eval mode far off
    recalibrate_bn(model, [ones, ones])
    assert not model.training
    with torch.no_grad():
        torch.testing.assert_close(model(ones)[0, 0], train_out, atol=1e-3, rtol=0)
