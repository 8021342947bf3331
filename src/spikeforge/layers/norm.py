"""Batch normalisation for spiking sequences ``[T, B, C, ...]``. Each variant states where its statistics come from.

* :class:`BatchNorm1d` / :class:`BatchNorm2d` — time-shared ("BN3d" of the group's code): batch statistics pooled
  over T and B (and space), one running estimate; folds into the preceding conv/linear.
* :class:`TDBatchNorm2d` — tdBN (arXiv:2011.05280): time-shared, normalised output scaled by alpha·V_th; folds.
* :class:`BNTT2d` — BNTT (arXiv:2010.01729): statistics and affine per time step; folds to a per-step affine.
* :class:`TEBN2d` — TEBN (Duan et al., NeurIPS 2022): time-shared statistics, learnable per-step scale p_t;
  folds to a per-step affine.
* MPBN (membrane BN) is part of the neuron: :class:`spikeforge.neurons.MembraneBN`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .time import SeqModule

__all__ = ["BatchNorm1d", "BatchNorm2d", "TDBatchNorm2d", "BNTT2d", "TEBN2d"]


class _BatchStats:
    @property
    def per_sample(self) -> bool:
        """Batch statistics pool the samples; running statistics (eval) normalise each on its own."""
        return not self.training and self.track_running_stats  # type: ignore[attr-defined]


class BatchNorm1d(_BatchStats, SeqModule, nn.BatchNorm1d):
    """Time-shared BN over ``[T, B, C]`` or ``[T, B, C, L]``: statistics pooled over T·B (and L)."""

    seq_min_ndim = 3


class BatchNorm2d(_BatchStats, SeqModule, nn.BatchNorm2d):
    """Time-shared BN over ``[T, B, C, H, W]`` ("BN3d" of the group's code): statistics pooled over T, B, H, W."""

    seq_min_ndim = 5


class TDBatchNorm2d(BatchNorm2d):
    """tdBN (Zheng et al., arXiv:2011.05280): ``y = gamma * alpha * V_th * (x - mu)/sqrt(var + eps) + beta``.

    Implemented as a time-shared BN whose normalised output carries the constant ``alpha * V_th``; it folds like
    a BN with effective weight ``gamma * alpha * V_th``.
    """

    def __init__(self, num_features: int, alpha: float = 1.0, v_th: float = 0.5, **kw):
        super().__init__(num_features, **kw)
        self.alpha, self.v_th = float(alpha), float(v_th)

    def effective_weight(self) -> Tensor:
        w = self.weight if self.weight is not None else torch.ones_like(self.running_mean)
        return w * (self.alpha * self.v_th)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 5:
            raise ValueError(f"TDBatchNorm2d expects [T, B, C, H, W], got {tuple(x.shape)}")
        T, B = x.shape[:2]
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative average, as torch.nn.BatchNorm2d
                factor = 1.0 / float(self.num_batches_tracked)
        y = F.batch_norm(x.flatten(0, 1), self.running_mean, self.running_var, self.effective_weight(), self.bias,
                         self.training or not self.track_running_stats, factor, self.eps)
        return y.reshape((T, B) + tuple(y.shape[1:]))


class BNTT2d(nn.Module):
    """BNTT (Kim & Panda, arXiv:2010.01729): separate statistics and affine per time step (up to ``max_steps``)."""

    running_mean: Tensor  # buffers [max_steps, C], registered in __init__
    running_var: Tensor

    def __init__(self, num_features: int, max_steps: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.max_steps, self.eps, self.momentum = num_features, max_steps, eps, momentum
        self.weight = nn.Parameter(torch.ones(max_steps, num_features))
        self.bias = nn.Parameter(torch.zeros(max_steps, num_features))
        self.register_buffer("running_mean", torch.zeros(max_steps, num_features))
        self.register_buffer("running_var", torch.ones(max_steps, num_features))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 3:
            raise ValueError(f"BNTT2d expects [T, B, C, ...], got {tuple(x.shape)}")
        if x.shape[0] > self.max_steps:
            raise ValueError(f"BNTT2d holds statistics for {self.max_steps} steps, got T = {x.shape[0]}")
        return torch.stack([
            F.batch_norm(x[t], self.running_mean[t], self.running_var[t], self.weight[t], self.bias[t],
                         self.training, self.momentum, self.eps)
            for t in range(x.shape[0])
        ])


class TEBN2d(BatchNorm2d):
    """TEBN (Duan et al., NeurIPS 2022): time-shared statistics and affine, then a learnable per-step scale:
    ``y_t = p_t * (gamma * (x_t - mu)/sqrt(var + eps) + beta)`` with ``p`` of shape ``[max_steps, C]``."""

    def __init__(self, num_features: int, max_steps: int, **kw):
        super().__init__(num_features, **kw)
        self.max_steps = max_steps
        self.step_scale = nn.Parameter(torch.ones(max_steps, num_features))

    def forward(self, x: Tensor) -> Tensor:
        y = super().forward(x)
        T = x.shape[0]
        if T > self.max_steps:
            raise ValueError(f"TEBN2d holds per-step scales for {self.max_steps} steps, got T = {T}")
        p = self.step_scale[:T].reshape((T, 1, self.num_features) + (1,) * (x.ndim - 3))
        return y * p
