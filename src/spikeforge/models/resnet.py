"""Spiking ResNets: ResNet-18/34 (ImageNet stem), ResNet-19/20 (CIFAR stem) and the "modified" ResNet-20.

All are :class:`torch.nn.Sequential` of ``stem -> layer1..layerN (Sequential of layers.BasicBlock) -> head``
on direct-encoded ``[T, B, C, H, W]`` and return per-step logits ``[T, B, num_classes]``.

* ``resnet18`` / ``resnet34`` (He et al., arXiv:1512.03385; spiking form of the group's ImageNet code,
  Ternary Spike arXiv:2312.06372, ImageNet set-up; ``docs/methods/ternary_spike.md``): 7×7/2 conv + BN + spike +
  **AvgPool(3, 2, 1)** (not max-pool), BasicBlocks [2, 2, 2, 2] /
  [3, 4, 6, 3] at widths 64-128-256-512, global average pool, FC.
* ``resnet19`` (tdBN, Zheng et al., arXiv:2011.05280): 3×3 stem of 128 channels, BasicBlocks [3, 3, 2] at
  widths 128-256-512, global average pool; head ``linear`` (FC 512 → k, the group's ``resnet19_cifar``) or ``mlp``
  (FC 512 → 256 → spike → FC 256 → k, the tdBN/TET head).
* ``resnet20`` (the group's ``resnet20_cifar``): like ResNet-19 with [3, 3, 3] blocks, FC 512 → k.
* ``resnet20m`` (the group's ``resnet20_cifar_modified``): three 3×3 convs of 64 channels (each + BN + spike),
  AvgPool(2), BasicBlocks [2, 2, 2, 2] at 64-128-256-512 with "AvgDown" shortcuts (AvgPool(s) then 1×1 conv
  + BN); the code's zero-initialised residual BN weights are an option (see :func:`resnet20m`).

Residual style (``style='standard'|'sew'|'ms'``) and BN variant (``norm='bn'|'tdbn'|'bntt'|'tebn'``) are
those of :class:`spikeforge.layers.BasicBlock`. ``norm='tdbn'`` puts tdBN inside the residual blocks with alpha by
role (1 in identity blocks; 1/sqrt(2) on bn2 and the shortcut BN of downsampling blocks; ``tdbn_alpha``
overrides) and leaves the stem's BNs plain (``stem_norm`` overrides), as the InfLoR code (yfguo91/Re-Loss) runs
``resnet20m``; see docs/methods/soft_reset_mpr.md. With ``style='ms'`` (MS-ResNet, arXiv:2112.08954) the residual
stream is real-valued, so the stem ends without a neuron (each block spikes its input) and a final neuron
spikes the last block's output before pooling, so that every conv and linear layer reads spikes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from ..layers import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BasicBlock,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    make_neuron,
    make_norm,
)
from ..neurons import neuron_config
from ._common import as_hw, conv_out_hw, finish_image_model, scale_width
from .registry import SpikingModel, register_model

__all__ = ["SpikingResNet", "resnet18", "resnet34", "resnet19", "resnet20", "resnet20m"]

STEMS = ("imagenet", "cifar", "cifar3")
HEADS = ("linear", "mlp")
DOWNSAMPLES = ("conv", "avg")
STEM_POOLS = ("avg", "max")


class SpikingResNet(nn.Sequential, SpikingModel):
    """A spiking ResNet of :class:`~spikeforge.layers.BasicBlock` stages.

    Args:
        blocks: blocks per stage, e.g. ``(2, 2, 2, 2)``.
        widths: channels per stage before the ``width`` multiplier, e.g. ``(64, 128, 256, 512)``.
        stem: ``imagenet`` (7×7/2 conv-BN-spike + AvgPool(3, 2, 1)), ``cifar`` (3×3 conv-BN-spike) or
            ``cifar3`` (three 3×3 conv-BN-spike of ``stem_width`` channels + AvgPool(2)).
        stem_pool: pooling of the ``imagenet`` stem: ``avg`` (the group's AvgPool(3, 2, 1)) or ``max``
            (MaxPool(3, 2, 1) of torchvision and SEW-ResNet).
        stem_norm: BN variant of the stem; ``None`` = ``norm``, except that ``tdbn`` leaves the stem plain ``bn``.
        tdbn_alpha: with ``norm='tdbn'``, the alpha of the block BNs by role (see :data:`~spikeforge.layers.blocks.
            TDBN_ALPHA`): ``None`` = role defaults, one number for all, or a mapping of roles.
        shortcut_neuron: neuron of a SEW downsampling shortcut (``None`` = ``neuron``).
        stem_width: stem channels (before ``width``); the first stage keeps stride 1.
        head: ``linear`` (global average pool, FC) or ``mlp`` (global average pool, FC → ``hidden`` → spike →
            FC).
        downsample: shortcut of a strided/widening block: ``conv`` (1×1/s conv + BN) or ``avg`` (AvgPool(s) +
            1×1 conv + BN, "AvgDown").
        zero_init_residual: initialise each block's ``bn2`` weight to 0 (the block starts as its shortcut).
        input_size: ``(H, W)`` of the input; needed for element-wise neuron options and checked for size.
    """

    input_kind = "static"

    def __init__(self, blocks: Sequence[int], widths: Sequence[int], *, num_classes: int = 10,
                 in_channels: int = 3, input_size: int | Sequence[int] = (32, 32), width: float = 1.0,
                 stem: str = "cifar", stem_width: int = 64, head: str = "linear", hidden: int = 256,
                 downsample: str = "conv", zero_init_residual: bool = False, neuron: Any = None,
                 style: str = "standard", norm: str = "bn", max_steps: int = 64, stem_pool: str = "avg",
                 stem_norm: str | None = None, tdbn_alpha: float | Mapping[str, float] | None = None,
                 shortcut_neuron: Any = None):
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        if stem_pool not in STEM_POOLS:
            raise ValueError(f"stem_pool must be one of {STEM_POOLS}, got {stem_pool!r}")
        if tdbn_alpha is not None and norm != "tdbn":
            raise ValueError(f"tdbn_alpha is an option of norm='tdbn', got norm={norm!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if downsample not in DOWNSAMPLES:
            raise ValueError(f"downsample must be one of {DOWNSAMPLES}, got {downsample!r}")
        if len(blocks) != len(widths) or not blocks or min(blocks) < 1:
            raise ValueError(f"blocks {tuple(blocks)} and widths {tuple(widths)} must be equally long and "
                             "positive")
        if num_classes < 1 or in_channels < 1:
            raise ValueError(f"num_classes and in_channels must be positive, got {num_classes}, "
                             f"{in_channels}")
        cfg = neuron_config(neuron)
        hw = as_hw(input_size)
        chans = [scale_width(c, width) for c in widths]
        c_stem = scale_width(stem_width, width)
        ms = style == "ms"
        snorm = stem_norm if stem_norm is not None else ("bn" if norm == "tdbn" else norm)

        # --- stem ---------------------------------------------------------------------------------------
        stem_layers: list[nn.Module] = []
        if stem == "imagenet":
            hw = conv_out_hw(hw, 7, 2, 3)
            stem_layers += [Conv2d(in_channels, c_stem, 7, 2, 3, bias=False),
                            make_norm(snorm, c_stem, max_steps)]
            if not ms:
                stem_layers.append(make_neuron(cfg, c_stem, hw))
            stem_layers.append(AvgPool2d(3, 2, 1) if stem_pool == "avg" else MaxPool2d(3, 2, 1))
            hw = conv_out_hw(hw, 3, 2, 1)
        else:
            n_convs = 1 if stem == "cifar" else 3
            cin = in_channels
            for i in range(n_convs):
                stem_layers += [Conv2d(cin, c_stem, 3, 1, 1, bias=False), make_norm(snorm, c_stem, max_steps)]
                if not (ms and i == n_convs - 1):
                    stem_layers.append(make_neuron(cfg, c_stem, hw))
                cin = c_stem
            if stem == "cifar3":
                stem_layers.append(AvgPool2d(2))
                hw = conv_out_hw(hw, 2, 2, 0)
        parts: OrderedDict[str, nn.Module] = OrderedDict(stem=nn.Sequential(*stem_layers))

        # --- residual stages ----------------------------------------------------------------------------
        cin = c_stem
        for i, (n, c) in enumerate(zip(blocks, chans, strict=True)):
            stage: list[nn.Module] = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                block = BasicBlock(cin, c, stride, cfg, style=style, norm=norm, hw=hw, max_steps=max_steps,
                                   downsample=downsample, tdbn_alpha=tdbn_alpha, shortcut_neuron=shortcut_neuron)
                hw = conv_out_hw(hw, 3, stride, 1)
                stage.append(block)
                cin = c
            parts[f"layer{i + 1}"] = nn.Sequential(*stage)

        # --- head ---------------------------------------------------------------------------------------
        if ms:
            parts["final_sn"] = make_neuron(cfg, cin, hw)
        parts["pool"] = AdaptiveAvgPool2d(1)
        parts["flatten"] = Flatten()
        if head == "mlp":
            h = scale_width(hidden, width)
            parts["fc1"] = Linear(cin, h)
            parts["fc1_sn"] = make_neuron(cfg, h, ())  # a feature vector [T, B, h]
            parts["fc"] = Linear(h, num_classes)
        else:
            parts["fc"] = Linear(cin, num_classes)
        super().__init__(parts)
        finish_image_model(self, num_classes, in_channels, input_size)
        if zero_init_residual:
            for m in self.modules():
                bn2_weight = getattr(m.bn2, "weight", None) if isinstance(m, BasicBlock) else None
                if isinstance(bn2_weight, Tensor):
                    nn.init.zeros_(bn2_weight)


_IMAGENET_WIDTHS = (64, 128, 256, 512)
_CIFAR_WIDTHS = (128, 256, 512)


@register_model
def resnet18(num_classes: int = 1000, in_channels: int = 3, input_size: int | Sequence[int] = (224, 224),
             width: float = 1.0, neuron: Any = None, style: str = "standard", norm: str = "bn",
             max_steps: int = 64, tdbn_alpha: float | Mapping[str, float] | None = None) -> SpikingResNet:
    """Spiking ResNet-18, ImageNet stem with AvgPool(3, 2, 1) (11,689,512 parameters at 1000 classes)."""
    return SpikingResNet((2, 2, 2, 2), _IMAGENET_WIDTHS, num_classes=num_classes, in_channels=in_channels,
                         input_size=input_size, width=width, stem="imagenet", stem_width=64, neuron=neuron,
                         style=style, norm=norm, max_steps=max_steps, tdbn_alpha=tdbn_alpha)


@register_model
def resnet34(num_classes: int = 1000, in_channels: int = 3, input_size: int | Sequence[int] = (224, 224),
             width: float = 1.0, neuron: Any = None, style: str = "standard", norm: str = "bn",
             max_steps: int = 64, tdbn_alpha: float | Mapping[str, float] | None = None) -> SpikingResNet:
    """Spiking ResNet-34, ImageNet stem with AvgPool(3, 2, 1) (21,797,672 parameters at 1000 classes)."""
    return SpikingResNet((3, 4, 6, 3), _IMAGENET_WIDTHS, num_classes=num_classes, in_channels=in_channels,
                         input_size=input_size, width=width, stem="imagenet", stem_width=64, neuron=neuron,
                         style=style, norm=norm, max_steps=max_steps, tdbn_alpha=tdbn_alpha)


@register_model
def resnet19(num_classes: int = 10, in_channels: int = 3, input_size: int | Sequence[int] = (32, 32),
             width: float = 1.0, head: str = "linear", neuron: Any = None, style: str = "standard",
             norm: str = "bn", max_steps: int = 64,
             tdbn_alpha: float | Mapping[str, float] | None = None) -> SpikingResNet:
    """Spiking ResNet-19 (tdBN, arXiv:2011.05280): 128-256-512, blocks 3-3-2. ``head='linear'`` is the
    group's FC 512 → k (12,569,226 parameters at 10 classes); ``head='mlp'`` the tdBN/TET FC 512 → 256 → k
    (12,697,994)."""
    return SpikingResNet((3, 3, 2), _CIFAR_WIDTHS, num_classes=num_classes, in_channels=in_channels,
                         input_size=input_size, width=width, stem="cifar", stem_width=128, head=head,
                         neuron=neuron, style=style, norm=norm, max_steps=max_steps, tdbn_alpha=tdbn_alpha)


@register_model
def cifar_resnet(num_classes: int = 10, in_channels: int = 3, input_size: int | Sequence[int] = (32, 32),
                 width: float = 1.0, blocks: Sequence[int] = (2, 2, 2, 2), neuron: Any = None,
                 style: str = "standard", norm: str = "bn", max_steps: int = 64) -> SpikingResNet:
    """CIFAR ResNet-18 family: one 3×3 stride-1 conv-BN-spike stem of 64 channels (no pooling), four stages
    64-128-256-512 (× ``width``) of ``blocks`` BasicBlocks with 1×1 conv + BN shortcuts, FC → k. This is the SNN
    branch of Joint A-SNN (``joint_asnn_resnet18`` with the same ``blocks``, arXiv:2305.02099,
    ``docs/methods/joint_asnn.md``) without its exits; ``blocks=(1, 1, 1, 1)`` is the ResNet-10 of
    ``spikeforge study``."""
    return SpikingResNet(tuple(blocks), _IMAGENET_WIDTHS, num_classes=num_classes, in_channels=in_channels,
                         input_size=input_size, width=width, stem="cifar", stem_width=64, neuron=neuron,
                         style=style, norm=norm, max_steps=max_steps)


@register_model
def resnet20(num_classes: int = 10, in_channels: int = 3, input_size: int | Sequence[int] = (32, 32),
             width: float = 1.0, neuron: Any = None, style: str = "standard", norm: str = "bn",
             max_steps: int = 64, tdbn_alpha: float | Mapping[str, float] | None = None) -> SpikingResNet:
    """Spiking ResNet-20 of the group's code (``resnet20_cifar``): 3×3 stem of 128, 128-256-512, blocks 3-3-3,
    FC 512 → k (17,289,866 parameters at 10 classes)."""
    return SpikingResNet((3, 3, 3), _CIFAR_WIDTHS, num_classes=num_classes, in_channels=in_channels,
                         input_size=input_size, width=width, stem="cifar", stem_width=128, neuron=neuron,
                         style=style, norm=norm, max_steps=max_steps, tdbn_alpha=tdbn_alpha)


@register_model
def resnet20m(num_classes: int = 10, in_channels: int = 3, input_size: int | Sequence[int] = (32, 32),
              width: float = 1.0, neuron: Any = None, style: str = "standard", norm: str = "bn",
              downsample: str = "avg", zero_init_residual: bool = False, max_steps: int = 64,
              tdbn_alpha: float | Mapping[str, float] | None = None) -> SpikingResNet:
    """The group's "modified" ResNet-20 (``resnet20_cifar_modified``): three-conv 64-channel stem +
    AvgPool(2), 64-128-256-512 with blocks 2-2-2-2, AvgDown shortcuts (11,247,946 parameters at 10 classes).

    The group's code also zero-initialises each block's ``bn2`` weight; here that is ``zero_init_residual=True``,
    off by default: with spiking blocks an identity block then feeds sn2 exactly its input spikes {0, 1}, both on
    the edge of the rectangular surrogate's window ``|u − 0.5| < 0.5``, so no gradient reaches anything below the
    classifier (and the zeroed BN weights never move)."""
    return SpikingResNet((2, 2, 2, 2), _IMAGENET_WIDTHS, num_classes=num_classes, in_channels=in_channels,
                         input_size=input_size, width=width, stem="cifar3", stem_width=64,
                         downsample=downsample, zero_init_residual=zero_init_residual, neuron=neuron,
                         style=style, norm=norm, max_steps=max_steps, tdbn_alpha=tdbn_alpha)
