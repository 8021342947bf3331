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
    # (x - mean) of identical values is 0 up to the summation's rounding, which 1/sqrt(var + eps) magnifies
    torch.testing.assert_close(train_out, model[1].bias.detach(), atol=1e-4, rtol=0)
    model.eval()
    with torch.no_grad():
        assert (model(ones)[0, 0] - train_out).abs().max() > 1.0  # eval mode far off
    recalibrate_bn(model, [ones, ones])
    assert not model.training
    with torch.no_grad():
        torch.testing.assert_close(model(ones)[0, 0], train_out, atol=1e-3, rtol=0)


def test_pointnet_tnet_bn_sees_batch_constant_spikes_and_recalibration_restores_eval() -> None:
    import copy

    from spikeforge.models import create_model
    from spikeforge.train.builders import param_groups

    torch.manual_seed(0)
    model = create_model("pointnet", num_classes=4, num_points=64, width=1 / 16, neuron="pointnet")
    x = torch.randn(1, 16, 3, 64)
    y = torch.randint(0, 4, (16,))
    pooled: list[torch.Tensor] = []
    hook = model.stn.mlp[0].register_forward_hook(lambda m, i, o: pooled.append(i[0].detach()))
    model.train()
    model(x)
    hook.remove()
    # max-pooled binary spikes: identical for every sample -> the BN after this layer has batch variance 0
    assert torch.equal(pooled[0], pooled[0][:, :1].expand_as(pooled[0]))
    for m in model.stn.modules():  # faster running-average decay, so that a few steps show the drift
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.5
    opt = torch.optim.Adam(param_groups(model, 1e-4, []), lr=1e-3)
    for _ in range(12):
        loss = nn.functional.cross_entropy(model(x).mean(0), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        train_mode = copy.deepcopy(model).train().stn(x)  # batch statistics (a copy: its running stats move)
        model.eval()
        stale = model.stn(x)
        recalibrate_bn(model, [x], forward=lambda m, b: m(b))
        fresh = model.stn(x)
    assert (stale - train_mode).abs().max() > 0.1  # eval mode with the trailing running estimates is off
    torch.testing.assert_close(fresh, train_mode, atol=1e-3, rtol=0)  # recalibrated eval == training mode
