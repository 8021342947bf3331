"""Spike tensors saved for backward as bits: a conv/linear whose input is a spike tensor keeps 1 bit per element.

A conv or linear layer's weight gradient needs its input, which autograd keeps at 32 bits per element until the
backward pass. When that input is a spike tensor -- every element in ``{0, a}`` (binary) or ``{-a, 0, a}``
(ternary, arXiv:2312.06372) for one amplitude ``a`` -- the same information fits in 1 or 2 bits per element. The
functions below keep the bit-packed spikes and ``a``, and rebuild the input exactly (``a * bit``) in the backward,
where the same ATen kernels as autograd's compute the gradients: the gradients equal the uncompressed path's bit
for bit (``tests/layers/test_spikes.py``). An input that is not spike-valued (checked on every call) falls back to
the ordinary path, so the option can never change a result.

Opt in per model with :func:`compress_spikes` (``spikeforge.layers.compress_spikes(model, True)``); docs:
``docs/benchmarks.md`` (memory).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["compress_spikes", "pack_spikes", "unpack_spikes", "spike_amplitude", "spike_conv2d", "spike_linear"]

_SHIFTS = torch.arange(8, dtype=torch.uint8)


def spike_amplitude(x: Tensor) -> tuple[Tensor, bool] | None:
    """``(a, ternary)`` if every element of ``x`` is in ``{0, a}`` (or ``{-a, 0, a}``), else None."""
    if x.numel() == 0 or not x.is_floating_point():
        return None
    xd = x.detach()
    a = xd.abs().amax()
    pos = xd == a
    neg = xd == -a
    nz = int(torch.count_nonzero(xd))
    n_pos = int(torch.count_nonzero(pos))
    n_neg = int(torch.count_nonzero(neg)) if bool(a != 0) else 0
    if n_pos + n_neg != nz:
        return None
    return a, n_neg > 0


def _pack(mask: Tensor) -> Tensor:
    bits = mask.reshape(-1).to(torch.uint8)
    pad = (-bits.numel()) % 8
    if pad:
        bits = torch.cat([bits, bits.new_zeros(pad)])
    return (bits.view(-1, 8) << _SHIFTS.to(bits.device)).sum(1, dtype=torch.uint8)


def _unpack(packed: Tensor, n: int) -> Tensor:
    return ((packed.unsqueeze(1) >> _SHIFTS.to(packed.device)) & 1).reshape(-1)[:n]


def pack_spikes(x: Tensor, a: Tensor, ternary: bool) -> tuple[Tensor, Tensor | None]:
    """Bit-packed ``x == a`` (and ``x == -a`` for ternary): 1 (2) bits per element."""
    return _pack(x == a), (_pack(x == -a) if ternary else None)


def unpack_spikes(pos: Tensor, neg: Tensor | None, a: Tensor, shape: torch.Size, dtype: torch.dtype) -> Tensor:
    """The spike tensor back from :func:`pack_spikes`: ``a * (bit_pos - bit_neg)``, exact."""
    n = 1
    for d in shape:
        n *= d
    s = _unpack(pos, n).to(dtype)
    if neg is not None:
        s = s - _unpack(neg, n).to(dtype)
    return (s * a.to(dtype)).reshape(shape)


class _SpikeConv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, a: Tensor, ternary: bool, stride, padding,
                dilation, groups: int) -> Tensor:
        pos, neg = pack_spikes(x.detach(), a, ternary)
        ctx.save_for_backward(pos, neg if neg is not None else pos.new_empty(0), a, weight)
        ctx.ternary, ctx.shape, ctx.dtype = ternary, x.shape, x.dtype
        ctx.conv = (stride, padding, dilation, groups)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, g: Tensor):
        pos, neg, a, weight = ctx.saved_tensors
        x = unpack_spikes(pos, neg if ctx.ternary else None, a, ctx.shape, ctx.dtype)
        stride, padding, dilation, groups = ctx.conv
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        gx, gw, gb = torch.ops.aten.convolution_backward(
            g, x, weight, [weight.shape[0]] if ctx.has_bias else None, list(stride), list(padding), list(dilation),
            False, [0, 0], groups, mask)
        return gx, gw, gb, None, None, None, None, None, None


class _SpikeLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, a: Tensor, ternary: bool) -> Tensor:
        pos, neg = pack_spikes(x.detach(), a, ternary)
        ctx.save_for_backward(pos, neg if neg is not None else pos.new_empty(0), a, weight)
        ctx.ternary, ctx.shape, ctx.dtype, ctx.has_bias = ternary, x.shape, x.dtype, bias is not None
        return _linear2d(x, weight, bias)

    @staticmethod
    def backward(ctx, g: Tensor):
        pos, neg, a, weight = ctx.saved_tensors
        g2 = g.reshape(-1, g.shape[-1])
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = g2.mm(weight).reshape(ctx.shape)
        if ctx.needs_input_grad[1]:
            x = unpack_spikes(pos, neg if ctx.ternary else None, a, ctx.shape, ctx.dtype)
            gw = x.reshape(-1, x.shape[-1]).t().mm(g2).t()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g2.sum(0)
        return gx, gw, gb, None, None


def _linear2d(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    y = F.linear(x.reshape(-1, x.shape[-1]), weight, bias)
    return y.reshape(x.shape[:-1] + (weight.shape[0],))


def _wants_compression(x: Tensor, weight: Tensor) -> tuple[Tensor, bool] | None:
    if not (torch.is_grad_enabled() and weight.requires_grad):
        return None
    return spike_amplitude(x)


def spike_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, stride, padding, dilation, groups: int) -> Tensor:
    """``F.conv2d`` that saves a spike-valued ``x`` as bits for backward (ordinary path otherwise)."""
    code = _wants_compression(x, weight)
    if code is None:
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    return _SpikeConv2d.apply(x, weight, bias, code[0], code[1], stride, padding, dilation, groups)


def spike_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear`` over the last dim that saves a spike-valued ``x`` as bits for backward."""
    code = _wants_compression(x, weight)
    if code is None:
        return _linear2d(x, weight, bias)
    return _SpikeLinear.apply(x, weight, bias, code[0], code[1])


def compress_spikes(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Turn bit storage of spike inputs on (off) for every spikeforge ``Conv2d``/``Linear`` of ``model``.

    Exact: the gradients do not change (see the module docstring); only the memory kept for backward shrinks
    (32x for binary spikes at the conv/linear inputs). Returns ``model``.
    """
    from .time import Conv2d, Linear

    n = 0
    for m in model.modules():
        if isinstance(m, (Conv2d, Linear)):
            m.compress_spikes = bool(enabled)
            n += 1
    if n == 0 and enabled:
        raise ValueError(f"{type(model).__name__} has no spikeforge Conv2d/Linear layer to compress")
    return model
