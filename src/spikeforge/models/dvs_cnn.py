"""A compact spiking CNN for 2-polarity event frames ``[T, B, 2, H, W]`` (CIFAR10-DVS, N-MNIST, DVS128
Gesture).

``[conv3×3 - BN - spike - AvgPool(2)] × stages -> flatten -> (dropout) -> FC``: each stage halves the map, so
the default four stages give 2×2 (34×34, N-MNIST), 3×3 (48×48, CIFAR10-DVS as resized by the group's code) or 8×8
(128×128, DVS128 Gesture) before the classifier. A flat ``nn.Sequential``, so the generic fold applies.
Output per-step logits ``[T, B, num_classes]``; the time axis is the event-frame axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ..layers import AvgPool2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, make_neuron, make_norm
from ..neurons import neuron_config
from ._common import as_hw, finish_image_model, pool_out_hw, scale_width
from .registry import SpikingModel, register_model

__all__ = ["SpikingDVSCNN", "dvs_cnn"]


class SpikingDVSCNN(nn.Sequential, SpikingModel):
    """Stages of ``Conv2d(3×3, no bias) - norm - Neuron - pool(2)``, then ``Flatten, [Dropout,] Linear``."""

    input_kind = "events"

    def __init__(self, *, num_classes: int = 10, in_channels: int = 2,
                 input_size: int | Sequence[int] = (48, 48), widths: Sequence[int] = (64, 128, 256, 256),
                 width: float = 1.0, neuron: Any = None,
                 norm: str = "bn", pool: str = "avg", dropout: float = 0.0, max_steps: int = 64):
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        if not widths:
            raise ValueError("dvs_cnn needs at least one stage (widths=(...))")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        cfg = neuron_config(neuron)
        hw = as_hw(input_size)
        if min(hw) < 2 ** len(widths):
            raise ValueError(f"input {hw} is too small for {len(widths)} pooling stages "
                             f"(needs at least {2 ** len(widths)} pixels per side)")
        layers: list[nn.Module] = []
        cin = in_channels
        for w in widths:
            c = scale_width(int(w), width)
            layers += [Conv2d(cin, c, 3, 1, 1, bias=False), make_norm(norm, c, max_steps),
                       make_neuron(cfg, c, hw), AvgPool2d(2) if pool == "avg" else MaxPool2d(2)]
            hw = pool_out_hw(hw, 2)
            cin = c
        layers.append(Flatten())
        if dropout > 0:
            layers.append(Dropout(dropout))
        layers.append(Linear(cin * hw[0] * hw[1], num_classes))
        super().__init__(*layers)
        finish_image_model(self, num_classes, in_channels, input_size)


@register_model
def dvs_cnn(num_classes: int = 10, in_channels: int = 2, input_size: int | Sequence[int] = (48, 48),
            widths: Sequence[int] = (64, 128, 256, 256), width: float = 1.0, neuron: Any = None,
            norm: str = "bn", pool: str = "avg", dropout: float = 0.0, max_steps: int = 64) -> SpikingDVSCNN:
    """Compact event-frame CNN; 48×48 default (CIFAR10-DVS): 984,074 parameters at 10 classes."""
    return SpikingDVSCNN(num_classes=num_classes, in_channels=in_channels, input_size=input_size,
                         widths=tuple(widths), width=width, neuron=neuron, norm=norm, pool=pool,
                         dropout=dropout, max_steps=max_steps)
