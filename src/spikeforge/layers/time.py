"""Stateless layers on time-first sequences: ``[T, B, ...]`` is folded to ``[T*B, ...]``, the layer runs once,
and the result is unfolded. They subclass the torch layers, so weights, ``state_dict`` keys and ``isinstance``
checks are those of ``torch.nn``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .spikes import spike_conv2d, spike_linear

__all__ = [
    "is_static", "seq_apply", "SeqModule", "Conv1d", "Conv2d", "Linear", "AvgPool2d", "MaxPool2d", "AdaptiveAvgPool2d",
    "AvgPool1d", "MaxPool1d", "AdaptiveAvgPool1d", "Flatten", "Dropout", "Identity",
]


def _check_seq(x: Tensor, layer: nn.Module, min_ndim: int) -> None:
    if x.ndim < min_ndim:
        raise ValueError(f"{type(layer).__name__} expects a time-first input [T, B, ...] with at least {min_ndim} "
                         f"dims, got shape {tuple(x.shape)}")


def is_static(x: Tensor) -> bool:
    """Whether ``x[T, B, ...]`` is one batch repeated over T as a view (time stride 0, as
    :func:`spikeforge.encode.direct` returns it)."""
    return x.ndim >= 2 and x.shape[0] > 1 and x.stride(0) == 0


def seq_apply(fn, x: Tensor, per_sample: bool = False) -> Tensor:
    """Apply ``fn`` to ``x[T, B, ...]`` as one ``[T*B, ...]`` batch.

    ``per_sample``: ``fn`` maps each sample on its own (conv, pool, linear; not BatchNorm, whose statistics pool
    the batch). A static input (:func:`is_static`: direct encoding) then runs once on ``x[0]`` and the result is
    expanded over T: the same values (per-sample kernels), T times less work; the weight gradient sums the T
    steps' output gradients before the layer instead of after (equal to float rounding)."""
    T, B = x.shape[0], x.shape[1]
    if per_sample and is_static(x):
        y = fn(x[0])
        return y.unsqueeze(0).expand((T,) + tuple(y.shape))
    y = fn(x.flatten(0, 1))
    return y.reshape((T, B) + tuple(y.shape[1:]))


class SeqModule:
    """Mixin marking layers that run per time step on a folded batch. ``per_sample`` layers (all but the
    batch-statistics norms) run a static input once (:func:`seq_apply`)."""

    seq_min_ndim = 3

    @property
    def per_sample(self) -> bool:
        return True

    def forward(self, x: Tensor) -> Tensor:
        _check_seq(x, self, self.seq_min_ndim)  # type: ignore[arg-type]
        return seq_apply(super().forward, x, self.per_sample)  # type: ignore[misc]


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
                                                self.dilation, self.groups), x, per_sample=True)


class AvgPool1d(SeqModule, nn.AvgPool1d):
    seq_min_ndim = 4


class MaxPool1d(SeqModule, nn.MaxPool1d):
    seq_min_ndim = 4


class AdaptiveAvgPool1d(SeqModule, nn.AdaptiveAvgPool1d):
    seq_min_ndim = 4


class _AvgPool2dShapeOnly(torch.autograd.Function):
    """``avg_pool2d`` whose backward keeps only the input's shape and strides.

    The gradient of an average pool does not depend on the input's values, but autograd saves the whole input
    for ``avg_pool2d_backward`` (it reads only its sizes). In a spiking net that input is a full ``[T*B, C, H, W]``
    spike tensor kept until the backward (28 % of what a VGG step saves). Here the backward calls the same ATen
    kernel with an uninitialised tensor of the same layout: gradients equal autograd's bit for bit
    (``tests/layers/test_time.py``)."""

    @staticmethod
    def forward(ctx, x: Tensor, kernel_size, stride, padding, ceil_mode: bool, count_include_pad: bool,
                divisor_override) -> Tensor:
        ctx.layout = (x.shape, x.stride(), x.dtype, x.device)
        ctx.args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        return torch.ops.aten.avg_pool2d(x, *ctx.args)

    @staticmethod
    def backward(ctx, g: Tensor):
        shape, strides, dtype, device = ctx.layout
        like = torch.empty_strided(shape, strides, dtype=dtype, device=device)
        return (torch.ops.aten.avg_pool2d_backward(g, like, *ctx.args), None, None, None, None, None, None)


def _as_list(v) -> list[int]:
    return [] if v is None else ([v, v] if isinstance(v, int) else list(v))


class AvgPool2d(SeqModule, nn.AvgPool2d):
    """Average pool over ``[T, B, C, H, W]``; in training it does not keep its input for backward (the gradient
    of an average needs only the shape): exact, and a spike tensor less in memory."""

    seq_min_ndim = 5

    def forward(self, x: Tensor) -> Tensor:
        if not (x.requires_grad and torch.is_grad_enabled()) or torch.compiler.is_compiling():
            return super().forward(x)
        _check_seq(x, self, self.seq_min_ndim)
        args = (_as_list(self.kernel_size), _as_list(self.stride), _as_list(self.padding), self.ceil_mode,
                self.count_include_pad, self.divisor_override)
        return seq_apply(lambda z: _AvgPool2dShapeOnly.apply(z, *args), x, per_sample=True)


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
        if is_static(x):  # direct encoding: once on x[0] (see seq_apply)
            y = self.forward(x[0].unsqueeze(0))
            return y.expand((x.shape[0],) + tuple(y.shape[1:]))
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
