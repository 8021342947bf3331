"""Learnable spike amplitude (Real Spike, arXiv:2210.06686; Ternary Spike, arXiv:2312.06372).

Training output ``o = a ⊙ s`` with ``a`` of granularity:

* ``layer``   — one scalar (Ternary Spike's a ∈ R^{1×1×1});
* ``channel`` — one value per channel, ``a ∈ R^C``;
* ``element`` — one value per neuron, ``a ∈ R^{C×H×W}`` (folds into an unshared convolution).

At inference ``a`` moves into every consumer of the spike tensor: ``W ∗ (a ⊙ s) = (W·a) ∗ s``.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

__all__ = ["Amplitude", "amplitude_shape"]


def amplitude_shape(granularity: str, feature_shape: tuple[int | None, ...] | None) -> tuple[int, ...]:
    """Parameter shape broadcasting against ``[..., C, *spatial]`` (per-sample ``feature_shape = (C, ...)``)."""
    if granularity == "layer":
        return ()
    if feature_shape is None or len(feature_shape) == 0:
        raise ValueError(f"a {granularity}-wise amplitude needs the layer's feature shape (C, ...); "
                         "pass feature_shape=... to the neuron")
    if granularity == "channel":
        channels = feature_shape[0]
        if channels is None:
            raise ValueError(f"a channel-wise amplitude needs the channel count C, got feature shape {feature_shape}")
        return (channels,) + (1,) * (len(feature_shape) - 1)
    if granularity == "element":
        if any(v is None for v in feature_shape):
            raise ValueError(f"an element-wise amplitude needs the full feature shape, got {feature_shape}; "
                             "give the model its input_size")
        return tuple(cast(tuple[int, ...], feature_shape))  # no None (checked above)
    raise ValueError(f"amplitude granularity must be 'layer', 'channel' or 'element', got {granularity!r}")


class Amplitude(nn.Module):
    """``o = a ⊙ s`` over a time-first spike tensor ``s[T, B, C, ...]``."""

    def __init__(self, granularity: str, feature_shape: tuple[int | None, ...] | None = None, init: float = 1.0):
        super().__init__()
        self.granularity = granularity
        self.weight = nn.Parameter(torch.full(amplitude_shape(granularity, feature_shape), float(init)))

    def forward(self, s: Tensor) -> Tensor:
        return s * self.weight

    def extra_repr(self) -> str:
        return f"{self.granularity}, shape={tuple(self.weight.shape)}"
