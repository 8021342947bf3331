"""Small spiking networks for quick runs and tests: ``convnet`` (two conv stages) and ``mlp``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ..layers import AvgPool2d, BatchNorm1d, Flatten, Linear, conv_bn, make_neuron, out_hw
from ..neurons import Neuron, neuron_config
from ._common import as_hw
from .registry import SpikingModel, register_model

__all__ = ["SpikingConvNet", "SpikingMLP", "convnet", "mlp"]


class SpikingConvNet(nn.Sequential, SpikingModel):
    """``[conv-BN-neuron (-avgpool)] × stages -> flatten -> linear`` on ``[T, B, C, H, W]``."""

    input_kind = "static"

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int | Sequence[int] = (8, 8),
                 widths: tuple[int, ...] = (32, 64), pool: tuple[bool, ...] | None = None, neuron: Any = None,
                 norm: str = "bn", max_steps: int = 64):
        layers: list[nn.Module] = []
        cfg = neuron_config(neuron)
        hw: tuple[int, int] = as_hw(input_size)
        pool = pool if pool is not None else tuple(True for _ in widths)
        if len(pool) != len(widths):
            raise ValueError(f"pool flags {pool} must match widths {widths}")
        cin = in_channels
        for w, p in zip(widths, pool):
            layers += [*conv_bn(cin, w, 3, norm=norm, max_steps=max_steps), make_neuron(cfg, w, hw)]
            if p:
                layers.append(AvgPool2d(2))
                hw = out_hw(hw, 2)  # type: ignore[assignment]
            cin = w
        layers += [Flatten(), Linear(cin * hw[0] * hw[1], num_classes)]
        super().__init__(*layers)
        self.num_classes = num_classes
        self.in_channels = in_channels


class SpikingMLP(nn.Sequential, SpikingModel):
    """``flatten -> [linear-BN-neuron] × hidden -> linear`` on ``[T, B, ...]``."""

    input_kind = "static"
    input_ndim = None  # any [T, B, ...] that flattens to in_features

    def __init__(self, num_classes: int = 10, in_features: int = 64, hidden: tuple[int, ...] = (128,),
                 neuron: Any = None):
        cfg = neuron_config(neuron)
        layers: list[nn.Module] = [Flatten()]
        fin = in_features
        for h in hidden:
            layers += [Linear(fin, h, bias=False), BatchNorm1d(h), Neuron(cfg, (h,))]
            fin = h
        layers.append(Linear(fin, num_classes))
        super().__init__(*layers)
        self.num_classes = num_classes


@register_model
def convnet(num_classes: int = 10, in_channels: int = 1, input_size: int | Sequence[int] = (8, 8),
            widths: tuple[int, ...] = (32, 64), neuron: Any = None, norm: str = "bn",
            max_steps: int = 64) -> SpikingConvNet:
    """A compact spiking CNN (the embedded default uses it on 8×8 digits); ``input_size`` is ``H`` or ``(H, W)``."""
    return SpikingConvNet(num_classes, in_channels, input_size, tuple(widths), None, neuron, norm, max_steps)


@register_model
def mlp(num_classes: int = 10, in_features: int = 64, hidden: tuple[int, ...] = (128,),
        neuron: Any = None) -> SpikingMLP:
    """A spiking multi-layer perceptron."""
    return SpikingMLP(num_classes, in_features, tuple(hidden), neuron)
