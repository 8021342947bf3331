"""Helpers shared by the architecture files: width scaling, spatial-size bookkeeping, weight init."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

__all__ = ["scale_width", "as_hw", "conv_out_hw", "pool_out_hw", "init_conv_linear", "finish_image_model"]


def scale_width(channels: int, width: float) -> int:
    """``round(channels * width)``, at least 1 (``width`` shrinks every layer for fast tests)."""
    if width <= 0:
        raise ValueError(f"width multiplier must be positive, got {width}")
    return max(1, int(round(channels * width)))


def as_hw(input_size: int | Sequence[int], what: str = "input_size") -> tuple[int, int]:
    """``32`` or ``(32, 32)`` -> ``(32, 32)``; rejects non-positive sizes."""
    hw: tuple[int, ...]
    if isinstance(input_size, int):
        hw = (input_size, input_size)
    else:
        hw = tuple(int(v) for v in input_size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"{what} must be a positive (H, W), got {input_size!r}")
    return hw[0], hw[1]


def conv_out_hw(hw: tuple[int, int], k: int, stride: int, padding: int) -> tuple[int, int]:
    """Output size of a convolution (or a floor-mode pool): ``floor((h + 2p - k) / s) + 1``."""
    out = tuple((v + 2 * padding - k) // stride + 1 for v in hw)
    if min(out) < 1:
        raise ValueError(f"a {k}x{k}/{stride} layer turns the feature map {hw} into {out}; "
                         "the input is too small")
    return out  # type: ignore[return-value]


def pool_out_hw(hw: tuple[int, int], k: int) -> tuple[int, int]:
    """Output size of a ``k``×``k`` pool with stride ``k`` and no padding."""
    return conv_out_hw(hw, k, k, 0)


def init_conv_linear(model: nn.Module) -> None:
    """Kaiming-normal (fan-out) conv weights, zero conv biases — the init of the group's code and torchvision.
    Linear layers and BN keep PyTorch's defaults."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def finish_image_model(model: nn.Module, num_classes: int, in_channels: int,
                       input_size: int | Sequence[int]) -> None:
    """Record the model's I/O description (``num_classes``, ``in_channels``, ``input_size``, ``input_shape``)
    and initialise its conv/linear weights."""
    hw = as_hw(input_size)
    described: Any = model  # plain int/tuple attributes (nn.Module's stubs type attributes as Tensor | Module)
    described.num_classes = num_classes
    described.in_channels = in_channels
    described.input_size = hw
    described.input_shape = (in_channels,) + hw
    init_conv_linear(model)
