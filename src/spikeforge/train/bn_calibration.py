"""Re-estimate BN running statistics with the current weights ("precise BN"; Wu & Johnson, arXiv:2105.07576).

Training-mode BN normalises with batch statistics; eval mode uses running estimates updated with momentum m
during training. Those estimates lag behind weights that keep moving. Usually the lag is harmless, but not for a
channel whose input is (nearly) constant over the batch: its running variance decays towards 0, so in eval mode
the lag of the running mean is divided by ``sqrt(eps)`` (≈ 0.003) while training mode outputs exactly ``β``.

This happens in Spiking PointNet's T-Nets (arXiv:2310.06232; official code DayongRen/Spiking-PointNet): their
max-pool over the points acts on binary spikes, which are 1 for almost every channel and sample, so the BNs of
the T-Nets' fully connected layers see a batch-constant input (batch variance exactly 0). The loss gradient of
the layer feeding such a BN is zero up to float rounding amplified by ``1/sqrt(eps)``, which Adam normalises into
steps of size ~lr; with weight decay the weights move by ~lr per step as well. The layer's output drifts every
step, the running mean trails it, and the eval-mode T-Net outputs explode — test accuracy at chance while the
training accuracy rises, until the learning rate has decayed to ~0. See docs/reproduction.md (Spiking PointNet).

:func:`recalibrate_bn` recomputes the running statistics as the plain average over a few batches with the
weights frozen: for batch-constant channels the running mean then equals the layer's output and eval mode gives
``β``, exactly what training mode computes. Training itself is unchanged. The trainer runs it before every test
evaluation when ``eval.bn_recalibration`` (number of training batches) is > 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers import TDBatchNorm2d

__all__ = ["recalibrate_bn"]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Tensor],
                   forward: Callable[[nn.Module, Tensor], Any] | None = None) -> int:
    """Reset the running statistics of every BN (``torch.nn`` batch norms and their library subclasses: time-shared,
    per-step-called, tdBN, TEBN) and re-estimate them as the cumulative average over all BN calls made while
    running ``forward(model, x)`` (default ``model(x)``) in training mode, without gradients, for each ``x`` in
    ``batches`` (time-first model inputs). Parameters are not touched; the previous train/eval mode and momenta are
    restored. Per-step norms with their own buffers (BNTT, MPBN) keep their estimates. Returns the number of BN
    modules re-estimated."""
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not bns:
        return 0
    momenta = {m: m.momentum for m in bns}
    calls = {m: 0 for m in bns}

    def count_calls(module: nn.Module, args: tuple[Any, ...]) -> None:
        # tdBN's forward does not implement momentum=None: give it the cumulative factor 1/k itself
        bn = cast(_BatchNorm, module)
        calls[bn] += 1
        bn.momentum = 1.0 / calls[bn]

    hooks = []
    for m in bns:
        m.reset_running_stats()
        if isinstance(m, TDBatchNorm2d):
            hooks.append(m.register_forward_pre_hook(count_calls))
        else:
            m.momentum = None  # nn BatchNorm: cumulative moving average over every call (num_batches_tracked)
    was_training = model.training
    model.train()
    seen = 0
    try:
        for x in batches:
            if forward is None:
                model(x)
            else:
                forward(model, x)
            seen += 1
    finally:
        for h in hooks:
            h.remove()
        for m in bns:
            m.momentum = momenta[m]
        model.train(was_training)
    if seen == 0:
        raise ValueError("recalibrate_bn needs at least one batch")
    return len(bns)
