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

import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PackedSpikes", "compress_spikes", "pack_spikes", "unpack_spikes", "spike_amplitude", "spike_conv2d",
           "spike_linear"]

_SHIFTS = torch.arange(8, dtype=torch.uint8)


def spike_amplitude(x: Tensor) -> tuple[Tensor, bool] | None:
    """``(a, ternary)`` if every element of ``x`` is in ``{0, a}`` (or ``{-a, 0, a}``), else None."""
    packed = PackedSpikes.pack(x, keep_bits=False)
    return None if packed is None else (packed.amplitude, packed.neg is not None)


def _pack(mask: Tensor) -> Tensor:
    """Bit ``i`` of byte ``k`` is element ``8k + i`` (zero-padded to whole bytes)."""
    flat = mask.reshape(-1)
    if flat.device.type == "cpu":
        return torch.from_numpy(np.packbits(flat.numpy(), bitorder="little"))
    bits = flat.to(torch.uint8)
    pad = (-bits.numel()) % 8
    if pad:
        bits = torch.cat([bits, bits.new_zeros(pad)])
    return (bits.view(-1, 8) << _SHIFTS.to(bits.device)).sum(1, dtype=torch.uint8)


def _unpack(packed: Tensor, n: int, start: int = 0) -> Tensor:
    """Elements ``start .. start + n`` of a :func:`_pack` result, as 0/1 ``uint8``."""
    lo, hi = start // 8, (start + n + 7) // 8
    part = packed[lo:hi]
    off = start - 8 * lo
    if part.device.type == "cpu":
        return torch.from_numpy(np.unpackbits(part.numpy(), count=off + n, bitorder="little")[off:])
    return ((part.unsqueeze(1) >> _SHIFTS.to(part.device)) & 1).reshape(-1)[off:off + n]


@dataclass
class PackedSpikes:
    """A spike tensor at 1 bit per element (2 for ternary): ``x = a * (pos - neg)``."""

    pos: Tensor
    neg: Tensor | None
    amplitude: Tensor
    shape: torch.Size
    dtype: torch.dtype

    @classmethod
    def pack(cls, x: Tensor, keep_bits: bool = True) -> PackedSpikes | None:
        """The packed form of ``x``, or None if ``x`` is not spike-valued (checked exactly)."""
        if x.numel() == 0 or not x.is_floating_point():
            return None
        xd = x.detach()
        lo, a = torch.aminmax(xd)
        ternary = bool(lo < 0)
        if ternary and not bool(lo == -a):
            return None
        pos = xd == a
        neg = xd == lo if ternary else None
        n_spikes = int(torch.count_nonzero(pos)) + (int(torch.count_nonzero(neg)) if neg is not None else 0)
        if int(torch.count_nonzero(xd)) != (n_spikes if bool(a != 0) else 0):
            return None
        if not keep_bits:
            return cls(pos.new_empty(0, dtype=torch.uint8), None if neg is None else pos.new_empty(0), a,
                       x.shape, x.dtype)
        return cls(_pack(pos), None if neg is None else _pack(neg), a, x.shape, x.dtype)

    def unpack(self, t0: int = 0, t1: int | None = None) -> Tensor:
        """Rows ``t0:t1`` of the first dim (the time steps of ``[T, B, ...]``), exact."""
        t1 = self.shape[0] if t1 is None else t1
        per = 1
        for d in self.shape[1:]:
            per *= d
        start, n = t0 * per, (t1 - t0) * per
        s = _unpack(self.pos, n, start).to(self.dtype)
        if self.neg is not None:
            s = s - _unpack(self.neg, n, start).to(self.dtype)
        return (s * self.amplitude.to(self.dtype)).reshape((t1 - t0,) + tuple(self.shape[1:]))


def pack_spikes(x: Tensor, a: Tensor, ternary: bool) -> tuple[Tensor, Tensor | None]:
    """Bit-packed ``x == a`` (and ``x == -a`` for ternary): 1 (2) bits per element."""
    return _pack(x == a), (_pack(x == -a) if ternary else None)


def unpack_spikes(pos: Tensor, neg: Tensor | None, a: Tensor, shape: torch.Size, dtype: torch.dtype) -> Tensor:
    """The spike tensor back from :func:`pack_spikes`: ``a * (bit_pos - bit_neg)``, exact."""
    return PackedSpikes(pos, neg, a, shape, dtype).unpack()


def _save_packed(ctx, packed: PackedSpikes, weight: Tensor) -> None:
    # through save_for_backward, so saved-tensor hooks (offloading) see the bits
    neg = packed.neg if packed.neg is not None else packed.pos.new_empty(0)
    ctx.save_for_backward(packed.pos, neg, packed.amplitude, weight)
    ctx.ternary, ctx.shape, ctx.dtype = packed.neg is not None, packed.shape, packed.dtype


def _saved_packed(ctx) -> tuple[PackedSpikes, Tensor]:
    pos, neg, a, weight = ctx.saved_tensors
    return PackedSpikes(pos, neg if ctx.ternary else None, a, ctx.shape, ctx.dtype), weight


class _SpikeConv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, packed: PackedSpikes, stride, padding,
                dilation, groups: int) -> Tensor:
        _save_packed(ctx, packed, weight)
        ctx.conv, ctx.has_bias = (stride, padding, dilation, groups), bias is not None
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, g: Tensor):
        packed, weight = _saved_packed(ctx)
        x = packed.unpack()
        stride, padding, dilation, groups = ctx.conv
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        gx, gw, gb = torch.ops.aten.convolution_backward(
            g, x, weight, [weight.shape[0]] if ctx.has_bias else None, list(stride), list(padding), list(dilation),
            False, [0, 0], groups, mask)
        return gx, gw, gb, None, None, None, None, None


class _SpikeLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, packed: PackedSpikes) -> Tensor:
        _save_packed(ctx, packed, weight)
        ctx.has_bias = bias is not None
        return _linear2d(x, weight, bias)

    @staticmethod
    def backward(ctx, g: Tensor):
        packed, weight = _saved_packed(ctx)
        g2 = g.reshape(-1, g.shape[-1])
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = g2.mm(weight).reshape(packed.shape)
        if ctx.needs_input_grad[1]:
            x = packed.unpack()
            gw = x.reshape(-1, x.shape[-1]).t().mm(g2).t()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g2.sum(0)
        return gx, gw, gb, None


def _linear2d(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    y = F.linear(x.reshape(-1, x.shape[-1]), weight, bias)
    return y.reshape(x.shape[:-1] + (weight.shape[0],))


RECOMPUTING = threading.local()  # depth > 0 inside spikeforge.layers.recompute's backward


def _wants_compression(x: Tensor, weight: Tensor) -> PackedSpikes | None:
    # a recomputed graph is differentiated at once: nothing is kept long enough to be worth packing
    if not (torch.is_grad_enabled() and weight.requires_grad) or getattr(RECOMPUTING, "depth", 0) > 0:
        return None
    return PackedSpikes.pack(x)


def spike_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, stride, padding, dilation, groups: int) -> Tensor:
    """``F.conv2d`` that saves a spike-valued ``x`` as bits for backward (ordinary path otherwise)."""
    packed = _wants_compression(x, weight)
    if packed is None:
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    return _SpikeConv2d.apply(x, weight, bias, packed, stride, padding, dilation, groups)


def spike_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear`` over the last dim that saves a spike-valued ``x`` as bits for backward."""
    packed = _wants_compression(x, weight)
    if packed is None:
        return _linear2d(x, weight, bias)
    return _SpikeLinear.apply(x, weight, bias, packed)


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
