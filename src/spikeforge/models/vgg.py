"""Spiking VGG-11 / VGG-16 with BN (Simonyan & Zisserman, arXiv:1409.1556), CIFAR form of the group's code.

``[conv3×3 (bias) - BN - spike] × n`` with **AvgPool(2)** between stages (configuration A for VGG-11, D for
VGG-16), then global average pooling and one FC ``512 → k``: the ``vgg*_bn`` of the group's ``vggcifar.py``
(Real Spike arXiv:2210.06686 and the group's set-up; ``docs/methods/real_spike.md``). The classic 4096-4096 ImageNet
classifier (123.6 M parameters) is not used.
Input ``[T, B, C, H, W]`` (direct-encoded), output per-step logits ``[T, B, num_classes]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ..layers import AdaptiveAvgPool2d, AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, make_neuron, make_norm
from ..neurons import neuron_config
from ._common import as_hw, finish_image_model, pool_out_hw, scale_width
from .registry import SpikingModel, register_model

__all__ = ["SpikingVGG", "VGG_CONFIGS", "vgg11", "vgg16"]

# "M" marks a 2×2 pool (configurations A and D of arXiv:1409.1556)
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}


class SpikingVGG(nn.Sequential, SpikingModel):
    """A flat ``nn.Sequential``: ``[Conv2d, BN, Neuron]`` per conv, a pool per ``"M"``, then
    ``AdaptiveAvgPool2d(1), Flatten, Linear``.

    ``pool='avg'`` (group code; commutes with any spike amplitude) or ``'max'``. ``conv_bias=True`` keeps the
    (BN-redundant) conv biases of the reference VGG so that parameter counts match the literature.
    """

    input_kind = "static"

    def __init__(self, config: Sequence[int | str], *, num_classes: int = 10, in_channels: int = 3,
                 input_size: int | Sequence[int] = (32, 32), width: float = 1.0, neuron: Any = None,
                 norm: str = "bn", pool: str = "avg", conv_bias: bool = True, max_steps: int = 64):
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        if num_classes < 1 or in_channels < 1:
            raise ValueError(f"num_classes and in_channels must be positive, got {num_classes}, "
                             f"{in_channels}")
        cfg = neuron_config(neuron)
        hw = as_hw(input_size)
        layers: list[nn.Module] = []
        cin = in_channels
        for v in config:
            if v == "M":
                layers.append(AvgPool2d(2) if pool == "avg" else MaxPool2d(2))
                hw = pool_out_hw(hw, 2)
                continue
            c = scale_width(int(v), width)
            layers += [Conv2d(cin, c, 3, 1, 1, bias=conv_bias), make_norm(norm, c, max_steps),
                       make_neuron(cfg, c, hw)]
            cin = c
        layers += [AdaptiveAvgPool2d(1), Flatten(), Linear(cin, num_classes)]
        super().__init__(*layers)
        finish_image_model(self, num_classes, in_channels, input_size)


@register_model
def vgg11(num_classes: int = 10, in_channels: int = 3, input_size: int | Sequence[int] = (32, 32),
          width: float = 1.0, neuron: Any = None, norm: str = "bn", pool: str = "avg",
          max_steps: int = 64) -> SpikingVGG:
    """Spiking VGG-11 with BN (configuration A): 9,231,114 parameters at 10 classes."""
    return SpikingVGG(VGG_CONFIGS["vgg11"], num_classes=num_classes, in_channels=in_channels,
                      input_size=input_size, width=width, neuron=neuron, norm=norm, pool=pool,
                      max_steps=max_steps)


@register_model
def vgg16(num_classes: int = 10, in_channels: int = 3, input_size: int | Sequence[int] = (32, 32),
          width: float = 1.0, neuron: Any = None, norm: str = "bn", pool: str = "avg",
          max_steps: int = 64) -> SpikingVGG:
    """Spiking VGG-16 with BN (configuration D): 14,728,266 parameters at 10 classes."""
    return SpikingVGG(VGG_CONFIGS["vgg16"], num_classes=num_classes, in_channels=in_channels,
                      input_size=input_size, width=width, neuron=neuron, norm=norm, pool=pool,
                      max_steps=max_steps)
