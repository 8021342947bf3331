"""Membrane Potential Batch Normalization (MPBN, arXiv:2308.08359).

A BatchNorm on the membrane right before firing, called once per time step::

    u~_t = lambda (u_t - mu) / sqrt(sigma^2 + eps) + beta,    o_t = H(u~_t - V_th)

while the reset acts on the un-normalised ``u_t``. Statistics are per channel (over batch and space) or per
element (over the batch only). In training each step uses its own batch statistics; the running estimate is
either one shared over steps (the official code) or one per step. At inference it folds into the threshold
``V~_th = (V_th - beta) sqrt(sigma^2 + eps) / lambda + mu`` (see :mod:`spikeforge.fold`).

``min_scale`` keeps ``lambda >= min_scale`` (default 1e-4) so that the fold is always a plain "fire above"
threshold; ``min_scale=None`` is the unconstrained paper form, whose fold then refuses ``lambda <= 0``.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import Tensor, nn

from ..functional import MembraneNorm, membrane_norm

__all__ = ["MembraneBN"]


class MembraneBN(nn.Module):
    running_mean: Tensor  # buffers [rows, n], registered in __init__
    running_var: Tensor

    def __init__(
        self,
        feature_shape: tuple[int | None, ...],
        *,
        mode: str = "channel",
        running: str = "shared",
        max_steps: int = 64,
        momentum: float = 0.1,
        eps: float = 1e-5,
        min_scale: float | None = 1e-4,
    ):
        super().__init__()
        if mode not in ("channel", "element"):
            raise ValueError(f"MPBN mode must be 'channel' or 'element', got {mode!r}")
        if running not in ("shared", "per_step"):
            raise ValueError(f"MPBN running statistics must be 'shared' or 'per_step', got {running!r}")
        if not feature_shape:
            raise ValueError("MPBN needs the layer's per-sample feature shape (C, ...)")
        if mode == "element" and any(v is None for v in feature_shape):
            raise ValueError(f"element-wise MPBN needs the full feature shape, got {feature_shape}; "
                             "give the model its input_size")
        channels = feature_shape[0]
        if channels is None:
            raise ValueError(f"MPBN needs the channel count C of the feature shape, got {feature_shape}")
        self.feature_shape = tuple(feature_shape)
        self.mode, self.running, self.max_steps = mode, running, max_steps
        self.momentum, self.eps, self.min_scale = momentum, eps, min_scale
        # element mode: every entry is an int (checked above)
        n = channels if mode == "channel" else math.prod(cast(tuple[int, ...], feature_shape))
        self.num_features = n
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n))
        rows = max_steps if running == "per_step" else 1
        self.register_buffer("running_mean", torch.zeros(rows, n))
        self.register_buffer("running_var", torch.ones(rows, n))

    def scale(self) -> Tensor:
        """The effective lambda (after the positivity floor)."""
        return self.weight if self.min_scale is None else self.weight.clamp(min=self.min_scale)

    def norm(self) -> MembraneNorm:
        """This BN as arguments of the neuron kernels (the fused loop runs it inside its time loop)."""
        return MembraneNorm(self.scale(), self.bias, self.running_mean, self.running_var, self.training,
                            self.momentum, self.eps, per_element=self.mode == "element",
                            per_step=self.running == "per_step")

    def _row(self, t: int) -> int:
        return self.norm().row(t)

    def forward(self, u: Tensor, t: int) -> Tensor:
        """Normalise the membrane ``u[B, C, ...]`` at time step ``t``."""
        return membrane_norm(u, t, self.norm())

    def stats(self, t: int = 0) -> tuple[Tensor, Tensor]:
        """Running (mean, var) used at inference for step t, shaped like the feature map."""
        row = self._row(t)
        return self._shape(self.running_mean[row]), self._shape(self.running_var[row])

    def _shape(self, v: Tensor) -> Tensor:
        if self.mode == "channel":
            return v.reshape((-1,) + (1,) * (len(self.feature_shape) - 1))
        return v.reshape(cast(tuple[int, ...], self.feature_shape))  # element mode: no None (checked in __init__)

    def affine(self) -> tuple[Tensor, Tensor]:
        """(lambda, beta) shaped like the feature map."""
        return self._shape(self.scale()), self._shape(self.bias)

    def extra_repr(self) -> str:
        return f"{self.mode}-wise, {self.num_features} features, running={self.running}"
