"""Unshared (locally connected) 2-D convolution: one kernel per output position.

Real Spike (arXiv:2210.06686) trains element-wise spike amplitudes ``a ∈ R^{C×H×W}`` with shared kernels and folds
them into the next convolution at inference. Because the amplitude differs per input position, the folded kernel
differs per output position ``p``::

    y[o, p] = b[o, p] + Σ_{c, δ} W_p[o, c, δ] · x[c, p·stride + δ·dilation − padding]
    W_p[o, c, δ] = W[o, c, δ] · a[c, p·stride + δ·dilation − padding]          (the fold)

Positions that fall into the zero padding read ``x = 0`` and need no amplitude. The forward is ``unfold`` (im2col)
followed by one ``einsum`` over the patch dimension, batched over output positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .time import SeqModule

__all__ = ["UnsharedConv2d", "unshared_conv2d", "conv_out_size"]

_Pair = tuple[int, int]


def _pair(v: int | tuple[int, int], name: str) -> _Pair:
    t = (v, v) if isinstance(v, int) else tuple(int(u) for u in v)
    if len(t) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {v!r}")
    return t


def conv_out_size(in_size: _Pair, kernel_size: _Pair, stride: _Pair, padding: _Pair, dilation: _Pair) -> _Pair:
    """Output spatial size of a convolution: ``(H + 2p − d(k − 1) − 1) // s + 1`` per axis."""
    out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                for n, k, s, p, d in zip(in_size, kernel_size, stride, padding, dilation))
    if min(out) < 1:
        raise ValueError(f"a {kernel_size} kernel (stride {stride}, padding {padding}, dilation {dilation}) does not "
                         f"fit an input of size {in_size}")
    return out  # type: ignore[return-value]


def unshared_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: _Pair = (1, 1),
                    padding: _Pair = (0, 0), dilation: _Pair = (1, 1), groups: int = 1) -> Tensor:
    """Locally connected convolution of ``x[N, C, H, W]`` with ``weight[O, C/groups, kh, kw, Ho, Wo]``.

    ``bias`` is ``[O, Ho, Wo]`` (one per output element) or None. ``groups`` splits channels as in a grouped conv
    (``groups = C = O``: depthwise). Returns ``[N, O, Ho, Wo]``.
    """
    O, Cg, kh, kw, Ho, Wo = weight.shape
    C = Cg * groups
    if x.ndim != 4 or x.shape[1] != C or O % groups:
        raise ValueError(f"unshared_conv2d expects x[N, {C}, H, W] and {O} outputs divisible by groups={groups}, "
                         f"got {tuple(x.shape)}")
    cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)  # [N, C*kh*kw, L]
    if cols.shape[-1] != Ho * Wo:
        raise ValueError(f"input {tuple(x.shape[2:])} gives {cols.shape[-1]} output positions, the weight holds "
                         f"{Ho}×{Wo} = {Ho * Wo}")
    L = Ho * Wo
    if groups == 1:
        y = torch.einsum("nkl,okl->nol", cols, weight.reshape(O, C * kh * kw, L))
    else:
        y = torch.einsum("ngkl,gokl->ngol", cols.reshape(x.shape[0], groups, Cg * kh * kw, L),
                         weight.reshape(groups, O // groups, Cg * kh * kw, L))
    y = y.reshape(x.shape[0], O, Ho, Wo)
    return y if bias is None else y + bias


class _UnsharedConv2dBatch(nn.Module):
    """The per-batch forward ``[N, C, H, W] -> [N, O, Ho, Wo]`` (time folding is added by :class:`SeqModule`)."""

    weight: Tensor
    bias: Tensor | None
    in_size: _Pair
    stride: _Pair
    padding: _Pair
    dilation: _Pair
    groups: int

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != self.in_size:
            raise ValueError(f"UnsharedConv2d was built for inputs of size {self.in_size}, got {tuple(x.shape[-2:])}")
        return unshared_conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class UnsharedConv2d(SeqModule, _UnsharedConv2dBatch):
    """Locally connected conv on time-first ``x[T, B, C, H, W]`` (the time axis is folded into the batch).

    ``weight[O, C/groups, kh, kw, Ho, Wo]``: a separate ``O × C/groups × kh × kw`` kernel for every output position;
    ``bias[O, Ho, Wo]``. ``in_size = (H, W)`` fixes the output grid. :meth:`from_conv` builds the fold of a shared
    conv applied to ``a ⊙ s`` (the Real Spike element-wise fold); a depthwise one (``groups = C``) is the fold of an
    average pool of ``a ⊙ s``.
    """

    seq_min_ndim = 5

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | _Pair, in_size: _Pair,
                 stride: int | _Pair = 1, padding: int | _Pair = 0, dilation: int | _Pair = 1, bias: bool = True,
                 groups: int = 1):
        nn.Module.__init__(self)
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        self.groups = int(groups)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        self.in_size = _pair(in_size, "in_size")
        self.out_size = conv_out_size(self.in_size, self.kernel_size, self.stride, self.padding, self.dilation)
        kh, kw = self.kernel_size
        Ho, Wo = self.out_size
        cg = self.in_channels // self.groups
        bound = 1.0 / (cg * kh * kw)**0.5
        self.weight = nn.Parameter(torch.empty(self.out_channels, cg, kh, kw, Ho, Wo).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(self.out_channels, Ho, Wo).uniform_(-bound, bound)) if bias else None

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, in_size: _Pair, input_scale: Tensor | None = None) -> UnsharedConv2d:
        """The unshared equivalent of ``conv(input_scale ⊙ x)`` for inputs of size ``in_size``.

        ``input_scale`` broadcasts against one sample ``[C, H, W]`` (None = 1). Grouped convs become dense kernels
        with zeros across groups. Only zero padding is supported (a padded position then reads 0 for any scale).
        """
        if conv.padding_mode != "zeros":
            raise ValueError("only zero-padded convs fold into an unshared conv, got "
                             f"padding_mode={conv.padding_mode!r}")
        if isinstance(conv.padding, str):
            raise ValueError(f"give the conv explicit integer padding, got padding={conv.padding!r}")
        C, O, g = conv.in_channels, conv.out_channels, conv.groups
        out = cls(C, O, conv.kernel_size, in_size, conv.stride, conv.padding, conv.dilation,  # type: ignore[arg-type]
                  bias=conv.bias is not None)
        w = conv.weight.detach()
        out = out.to(device=w.device, dtype=w.dtype)
        dense = w.new_zeros(O, C, *conv.kernel_size)
        og, cg = O // g, C // g
        for k in range(g):
            dense[k * og:(k + 1) * og, k * cg:(k + 1) * cg] = w[k * og:(k + 1) * og]
        kh, kw = out.kernel_size
        Ho, Wo = out.out_size
        if input_scale is None:
            a_cols = w.new_ones(1, C * kh * kw, Ho * Wo)
        else:
            a = torch.as_tensor(input_scale, dtype=w.dtype, device=w.device).expand(C, *out.in_size)
            a_cols = F.unfold(a.unsqueeze(0), out.kernel_size, dilation=out.dilation, padding=out.padding,
                              stride=out.stride)
        a_cols = a_cols.reshape(C, kh, kw, Ho, Wo)
        with torch.no_grad():
            out.weight.copy_(dense[..., None, None] * a_cols.unsqueeze(0))
            if conv.bias is not None and out.bias is not None:
                out.bias.copy_(conv.bias.detach()[:, None, None].expand(O, Ho, Wo))
        return out

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, in_size={self.in_size}, "
                f"out_size={self.out_size}, stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"bias={self.bias is not None}" + (f", groups={self.groups}" if self.groups > 1 else ""))
