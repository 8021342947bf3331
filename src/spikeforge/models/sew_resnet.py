"""SEW-ResNet-18/34 as Real Spike's released ImageNet code runs it (arXiv:2210.06686; docs/methods/real_spike.md).

The released code (yfguo91/Real-Spike) is a SEW-ResNet (Fang et al., arXiv:2102.04159) with learnable amplitudes:

* stem: 7×7/2 conv + BN + neuron + **MaxPool(3, 2, 1)**;
* blocks: SEW ``ADD`` — ``out = a2 ⊙ sn2(bn2(conv2(a1 ⊙ sn1(bn1(conv1(x)))))) + identity``, identity = the block
  input, or conv 1×1/s + BN + neuron on a downsampling block;
* neurons: IF (no leak), V_th = 1.0, hard reset to 0, ATan surrogate alpha = 2, reset detached (preset
  ``"real-spike-sew"``);
* amplitudes: channel-wise, initialised to 1, on the spikes of the stem neuron and of sn1 and sn2 of every block;
  the downsampling shortcut's neuron has none;
* head: global average pool, FC; the logits are averaged over T by the objective.

The block outputs are sums of spike tensors with different amplitudes; they fold exactly (each addend's spikes
meet their own weight slice, see :mod:`spikeforge.fold.rules_blocks`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ..neurons import neuron_config
from .registry import register_model
from .resnet import SpikingResNet

__all__ = ["sew_resnet18", "sew_resnet34"]

_WIDTHS = (64, 128, 256, 512)


def _sew_resnet(blocks: tuple[int, ...], num_classes: int, in_channels: int, input_size: int | Sequence[int],
                width: float, neuron: Any, norm: str, max_steps: int) -> SpikingResNet:
    cfg = neuron_config("real-spike-sew" if neuron is None else neuron)
    shortcut_cfg = dataclasses.replace(cfg, amplitude=None)  # the downsampling branch's neuron carries none
    return SpikingResNet(blocks, _WIDTHS, num_classes=num_classes, in_channels=in_channels, input_size=input_size,
                         width=width, stem="imagenet", stem_pool="max", stem_width=64, neuron=cfg, style="sew",
                         norm=norm, max_steps=max_steps, shortcut_neuron=shortcut_cfg)


@register_model
def sew_resnet18(num_classes: int = 1000, in_channels: int = 3, input_size: int | Sequence[int] = (224, 224),
                 width: float = 1.0, neuron: Any = None, norm: str = "bn", max_steps: int = 64) -> SpikingResNet:
    """Real Spike's SEW-ResNet-18 (11,693,416 parameters at 1000 classes: ResNet-18's 11,689,512 plus 3,904
    channel-wise amplitudes). ``neuron`` defaults to the preset ``"real-spike-sew"``; the downsampling shortcuts'
    neurons always drop the amplitude."""
    return _sew_resnet((2, 2, 2, 2), num_classes, in_channels, input_size, width, neuron, norm, max_steps)


@register_model
def sew_resnet34(num_classes: int = 1000, in_channels: int = 3, input_size: int | Sequence[int] = (224, 224),
                 width: float = 1.0, neuron: Any = None, norm: str = "bn", max_steps: int = 64) -> SpikingResNet:
    """Real Spike's SEW-ResNet-34 (21,805,288 parameters at 1000 classes: ResNet-34's 21,797,672 plus 7,616
    channel-wise amplitudes)."""
    return _sew_resnet((3, 4, 6, 3), num_classes, in_channels, input_size, width, neuron, norm, max_steps)
