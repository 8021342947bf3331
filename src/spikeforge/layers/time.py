"""Stateless layers on time-first sequences: ``[T, B, ...]`` is folded to ``[T*B, ...]``, the layer runs once,
and the result is unfolded. They subclass the torch layers, so weights, ``state_dict`` keys and ``isinstance``
checks are those of ``torch.nn``.
"""

from __future__ import annotations

from torch import Tensor, nn

from .spikes import spike_conv2d, spike_linear

__all__ = [
    "seq_apply", "SeqModule", "Conv1d", "Conv2d", "Linear", "AvgPool2d", "MaxPool2d", "AdaptiveAvgPool2d",
    "AvgPool1d", "MaxPool1d", "AdaptiveAvgPool1d", "Flatten", "Dropout", "Identity",
]


def _check_seq(x: Tensor, layer: nn.Module, min_ndim: int) -> None:
    if x.ndim < min_ndim:
        raise ValueError(f"{type(layer).__name__} expects a time-first input [T, B, ...] with at least {min_ndim} "
                         f"dims, got shape {tuple(x.shape)}")


def seq_apply(fn, x: Tensor) -> Tensor:
    """Apply ``fn`` to ``x[T, B, ...]`` as one ``[T*B, ...]`` batch."""
    T, B = x.shape[0], x.shape[1]
    y = fn(x.flatten(0, 1))
    return y.reshape((T, B) + tuple(y.shape[1:]))


class SeqModule:
    """Mixin marking layers that run per time step on a folded batch."""

    seq_min_ndim = 3

    def forward(self, x: Tensor) -> Tensor:
        _check_seq(x, self, self.seq_min_ndim)  # type: ignore[arg-type]
        return seq_apply(super().forward, x)  # type: ignore[misc]


class Conv1d(SeqModule, nn.Conv1d):
    seq_min_ndim = 4


class Conv2d(SeqModule, nn.Conv2d):
    """Conv over ``[T, B, C, H, W]``; ``compress_spikes = True`` keeps a spike input as bits for backward
    (:func:`spikeforge.layers.compress_spikes`, exact)."""

    seq_min_ndim = 5
    compress_spikes = False

    def forward(self, x: Tensor) -> Tensor:
        if not self.compress_spikes or self.padding_mode != "zeros":
            return super().forward(x)
        _check_seq(x, self, self.seq_min_ndim)
        return seq_apply(lambda z: spike_conv2d(z, self.weight, self.bias, self.stride, self.padding,
                                                self.dilation, self.groups), x)


class AvgPool1d(SeqModule, nn.AvgPool1d):
    seq_min_ndim = 4


class MaxPool1d(SeqModule, nn.MaxPool1d):
    seq_min_ndim = 4


class AdaptiveAvgPool1d(SeqModule, nn.AdaptiveAvgPool1d):
    seq_min_ndim = 4


class AvgPool2d(SeqModule, nn.AvgPool2d):
    seq_min_ndim = 5


class MaxPool2d(SeqModule, nn.MaxPool2d):
    seq_min_ndim = 5


class AdaptiveAvgPool2d(SeqModule, nn.AdaptiveAvgPool2d):
    seq_min_ndim = 5


class Linear(nn.Linear):
    """``nn.Linear`` acts on the last dim, so ``[T, B, F]`` needs no folding; ``compress_spikes = True`` keeps a
    spike input as bits for backward (:func:`spikeforge.layers.compress_spikes`, exact)."""

    compress_spikes = False

    def forward(self, x: Tensor) -> Tensor:
        _check_seq(x, self, 3)
        if self.compress_spikes:
            return spike_linear(x, self.weight, self.bias)
        return super().forward(x)


class Flatten(nn.Flatten):
    """Flatten the per-sample dims: ``[T, B, C, H, W] -> [T, B, C*H*W]``."""

    def __init__(self) -> None:
        super().__init__(start_dim=2, end_dim=-1)


class Dropout(nn.Dropout):
    """Element-wise dropout; a fresh mask per time step."""


class Identity(nn.Identity):
    pass
