"""Residual building blocks of spiking ResNets, with the three residual styles of the survey (arXiv:2305.19725).

* ``standard`` — spiking ResNet of the group's code: ``sn2(bn2(conv2(sn1(bn1(conv1(x))))) + shortcut(x))``;
  the add happens on pre-activations, the block outputs spikes.
* ``sew`` — SEW-ResNet ADD (arXiv:2102.04159): ``sn2(bn2(conv2(sn1(bn1(conv1(x)))))) + shortcut(x)``; the add
  happens on spikes, the output is an integer-valued spike count. A downsampling shortcut is conv-BN-neuron, so
  both addends are spikes (the paper's downsample block).
* ``ms`` — MS-ResNet membrane shortcut (arXiv:2112.08954): ``x + bn2(conv2(sn2(bn1(conv1(sn1(x))))))``; the
  residual stream carries real values, each conv reads spikes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..neurons import Neuron, NeuronConfig, neuron_config
from . import norm as norm_layers
from .time import AvgPool2d, Conv2d

__all__ = ["BasicBlock", "TDBN_ALPHA", "conv_bn", "downsample_shortcut", "make_norm", "make_neuron", "out_hw",
           "tdbn_alphas"]

STYLES = ("standard", "sew", "ms")

# tdBN alpha of each BN by its role in a residual block (arXiv:2011.05280 scales the BNs whose outputs meet in a
# residual add by 1/sqrt(2)); the values of the InfLoR code (yfguo91/Re-Loss, see docs/methods/soft_reset_mpr.md):
# identity blocks alpha = 1 on bn1 and bn2; downsampling blocks alpha = 1 on bn1, 1/sqrt(2) on bn2 and on the
# shortcut BN.
TDBN_ALPHA: dict[str, float] = {
    "identity.bn1": 1.0, "identity.bn2": 1.0,
    "down.bn1": 1.0, "down.bn2": 1.0 / math.sqrt(2.0), "down.shortcut": 1.0 / math.sqrt(2.0),
}


def tdbn_alphas(override: float | Mapping[str, float] | None = None) -> dict[str, float]:
    """The tdBN alpha per block role (keys of :data:`TDBN_ALPHA`): the defaults, one number for every role, or
    the defaults updated by a mapping of some roles."""
    if override is None:
        return dict(TDBN_ALPHA)
    if isinstance(override, (int, float)):
        return {k: float(override) for k in TDBN_ALPHA}
    unknown = sorted(set(override) - set(TDBN_ALPHA))
    if unknown:
        raise ValueError(f"tdbn_alpha has unknown role(s) {unknown}; roles: {sorted(TDBN_ALPHA)}")
    return {**TDBN_ALPHA, **{k: float(v) for k, v in override.items()}}


def out_hw(hw: tuple[int, int] | None, stride: int) -> tuple[int, int] | None:
    if hw is None:
        return None
    return ((hw[0] - 1) // stride + 1, (hw[1] - 1) // stride + 1)


def make_neuron(cfg: NeuronConfig | dict | str | None, channels: int, hw: tuple[int, ...] | None = None) -> Neuron:
    """A neuron for a ``[T, B, C, H, W]`` feature map; ``hw=None`` leaves H, W unknown (fine unless an option is
    element-wise)."""
    c = neuron_config(cfg)
    needs_full = c.amplitude == "element" or (c.pre_fire == "mpbn" and c.mpbn == "element")
    if needs_full and hw is None:
        raise ValueError("element-wise amplitudes/MPBN need the model's input size; pass input_size=(H, W)")
    return Neuron(c, (channels,) + (tuple(hw) if hw is not None else (None, None)))


def make_norm(kind: str, channels: int, max_steps: int = 64, alpha: float | None = None) -> nn.Module:
    """``bn`` (time-shared), ``tdbn`` (``alpha`` defaults to 1), ``bntt``, ``tebn``."""
    if alpha is not None and kind != "tdbn":
        raise ValueError(f"alpha={alpha} is a tdBN option; norm {kind!r} takes none")
    if kind == "bn":
        return norm_layers.BatchNorm2d(channels)
    if kind == "tdbn":
        return norm_layers.TDBatchNorm2d(channels, alpha=1.0 if alpha is None else alpha)
    if kind == "bntt":
        return norm_layers.BNTT2d(channels, max_steps)
    if kind == "tebn":
        return norm_layers.TEBN2d(channels, max_steps)
    raise ValueError(f"unknown norm {kind!r}; choose 'bn', 'tdbn', 'bntt' or 'tebn'")


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, padding: int | None = None, norm: str = "bn",
            max_steps: int = 64, alpha: float | None = None) -> nn.Sequential:
    pad = k // 2 if padding is None else padding
    return nn.Sequential(Conv2d(cin, cout, k, stride, pad, bias=False), make_norm(norm, cout, max_steps, alpha))


def downsample_shortcut(cin: int, cout: int, stride: int, kind: str = "conv", norm: str = "bn",
                        max_steps: int = 64, alpha: float | None = None) -> nn.Sequential:
    """Shortcut of a strided/widening block: ``conv`` = 1×1/s conv + BN; ``avg`` = AvgPool(s) + 1×1 conv + BN
    ("AvgDown" of the group's modified ResNet-20). ``alpha`` is the tdBN alpha of its BN."""
    if kind == "conv":
        return conv_bn(cin, cout, 1, stride, 0, norm, max_steps, alpha)
    if kind == "avg":
        layers: list[nn.Module] = []
        if stride > 1:
            layers.append(AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False))
        layers += [Conv2d(cin, cout, 1, 1, 0, bias=False), make_norm(norm, cout, max_steps, alpha)]
        return nn.Sequential(*layers)
    raise ValueError(f"downsample must be 'conv' or 'avg', got {kind!r}")


class BasicBlock(nn.Module):
    """Two 3×3 convs with a residual connection. ``hw`` is the input spatial size (needed for element-wise
    neuron options only); ``downsample`` picks the shortcut of a strided/widening block (``conv`` or ``avg``).

    With ``norm='tdbn'`` each BN's alpha follows its role (:data:`TDBN_ALPHA`: 1 in identity blocks; 1/sqrt(2) on
    bn2 and the shortcut BN of a downsampling block); ``tdbn_alpha`` overrides it (one number, or a mapping of
    roles such as ``{"down.bn2": 0.5}``). ``shortcut_neuron`` configures the SEW shortcut's neuron (default: the
    block's ``neuron``). ``join`` is how a SEW block joins its two spike tensors: ``add`` (the SEW ADD) or ``cat``
    (concatenated along channels: the folded form of addends with different amplitudes, whose consumers hold one
    weight slice per addend, see :mod:`spikeforge.fold.rules_blocks`).
    """

    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1, neuron: Any = None, *, style: str = "standard",
                 norm: str = "bn", hw: tuple[int, int] | None = None, max_steps: int = 64,
                 downsample: str = "conv", tdbn_alpha: float | Mapping[str, float] | None = None,
                 shortcut_neuron: Any = None):
        super().__init__()
        if style not in STYLES:
            raise ValueError(f"residual style must be one of {STYLES}, got {style!r}")
        self.style = style
        self.join = "add"
        ohw = out_hw(hw, stride)
        downsampling = stride != 1 or cin != cout
        role = "down" if downsampling else "identity"
        alphas = tdbn_alphas(tdbn_alpha) if norm == "tdbn" else None

        def alpha(part: str) -> float | None:
            return None if alphas is None else alphas[f"{role}.{part}"]

        self.conv1 = Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = make_norm(norm, cout, max_steps, alpha("bn1"))
        self.conv2 = Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = make_norm(norm, cout, max_steps, alpha("bn2"))
        if style == "ms":
            self.sn1 = make_neuron(neuron, cin, hw)
            self.sn2 = make_neuron(neuron, cout, ohw)
        else:
            self.sn1 = make_neuron(neuron, cout, ohw)
            self.sn2 = make_neuron(neuron, cout, ohw)
        self.shortcut: nn.Module
        if downsampling:
            self.shortcut = downsample_shortcut(cin, cout, stride, downsample, norm, max_steps, alpha("shortcut"))
            if style == "sew":
                self.shortcut.append(make_neuron(neuron if shortcut_neuron is None else shortcut_neuron, cout, ohw))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if self.style == "ms":
            y = self.bn1(self.conv1(self.sn1(x)))
            y = self.bn2(self.conv2(self.sn2(y)))
            return y + self.shortcut(x)
        y = self.sn1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.style == "standard":
            return self.sn2(y + self.shortcut(x))
        if self.join == "cat":
            return torch.cat([self.sn2(y), self.shortcut(x)], dim=2)
        return self.sn2(y) + self.shortcut(x)
