"""Membrane normalisation as kernel arguments (MPBN, arXiv:2308.08359; docs/methods/mpbn.md).

MPBN normalises the membrane right before firing, once per time step::

    r_t = lambda (h_t - mu_t) / sqrt(sigma_t^2 + eps) + beta,     s_t = H(r_t - V_th)

while the reset acts on the un-normalised ``h_t``. ``mu_t, sigma_t^2`` are the batch statistics of ``h_t`` in
training (per channel: over batch and space; per element: over the batch) and a running estimate at inference
(one shared over steps, or one per step). :class:`MembraneNorm` carries the tensors and settings so that a
neuron kernel can run the BN inside its time loop; :func:`membrane_norm` is the one definition of a step
(``F.batch_norm``, which also updates the running estimate in training).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

__all__ = ["MembraneNorm", "membrane_norm"]


@dataclass(frozen=True)
class MembraneNorm:
    """The per-step BatchNorm of the membrane.

    ``weight``/``bias`` are the effective ``lambda``/``beta`` (shape ``[n]``; ``n = C`` per channel or the number
    of per-sample features per element). ``running_mean``/``running_var`` have shape ``[rows, n]``: one row
    shared over steps (``per_step=False``) or one per step.
    """

    weight: Tensor
    bias: Tensor
    running_mean: Tensor
    running_var: Tensor
    training: bool
    momentum: float
    eps: float
    per_element: bool = False
    per_step: bool = False

    def row(self, t: int) -> int:
        """The running-statistics row used at step ``t``."""
        if not self.per_step:
            return 0
        rows = self.running_mean.shape[0]
        if t >= rows:
            raise ValueError(f"per-step MPBN holds statistics for {rows} steps, got step {t}; raise max_steps")
        return t

    def flat(self, h: Tensor) -> Tensor:
        """``h[B, C, ...]`` as the BatchNorm input: unchanged per channel, ``[B, n]`` per element."""
        return h.reshape(h.shape[0], -1) if self.per_element else h


def membrane_norm(h: Tensor, t: int, norm: MembraneNorm) -> Tensor:
    """``r_t`` for the membrane ``h[B, C, ...]`` at step ``t`` (updates the running estimate in training)."""
    row = norm.row(t)
    out = F.batch_norm(norm.flat(h), norm.running_mean[row], norm.running_var[row], norm.weight, norm.bias,
                       norm.training, norm.momentum, norm.eps)
    return out.reshape(h.shape)
