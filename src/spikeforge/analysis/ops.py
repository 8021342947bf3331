"""Operation counting for synaptic layers: dense MACs, synaptic operations (SOPs) and the spike-input test.

Definitions (per forward call of one synaptic layer — ``Conv1d/2d/3d``, ``Linear``, the ``spikeforge.layers``
subclasses, the locally connected ``spikeforge.layers.unshared.UnsharedConv2d`` and any module describing itself
through the :class:`~spikeforge.layers.synaptic.Synaptic` protocol; geometry and dense MACs are defined in
:mod:`spikeforge.layers.synaptic`, re-exported here):

* **dense MACs** = output elements × fan-in, i.e. ``out.numel() · (C_in / groups) · prod(kernel)`` for a conv and
  ``out.numel() · in_features`` for a linear layer. Bias additions are not counted (nor BN, which folds into the
  weights at inference, nor neuron updates) — the convention of the energy estimates in the Ternary Spike / Real Spike /
  MPBN papers (arXiv:2312.06372, 2210.06686, 2308.08359; ``docs/analysis.md``).
* **SOPs** (synaptic operations, accumulations actually needed) = Σ over input elements of ``n_i · fanout_i`` where
  ``n_i`` is the number of spike events at input element ``i`` (1 for a spike of either sign, so a −1 spike costs one
  subtraction; an integer count for sums/pools of spikes) and ``fanout_i`` the number of (output position, output
  channel) pairs that read it. For a conv the fan-out is exact under padding, stride and dilation: along each spatial
  axis it is ``#{(o, k): o·stride + k·dilation = i + pad}``; it factorises over axes and all input channels of a
  group share it (``C_out / groups`` output channels each), so the count is a tensor contraction of the per-position
  event sums with the per-axis fan-outs — no convolution is run. Non-zero padding modes (reflect, replicate,
  circular) are handled by padding the event map with the same mode: a copied event costs accumulations too.

The spike-input test :func:`spike_events` is exact (no tolerance): an input counts as spikes when all of its non-zero
entries have one magnitude ``a`` (``x ∈ {0, ±a}``: binary, ternary, layer-wise amplitude), giving one event per
non-zero entry, or when it is integer-valued (sums of spikes such as SEW-ResNet's ADD, event-count frames), giving
``|x|`` events per entry. Everything else (a direct-encoded image, ReLU activations) is real-valued and is charged
dense MACs. The monitor adds provenance on top of this rule (see :mod:`spikeforge.analysis.monitor`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..layers.synaptic import SynapticGeometry, dense_macs, is_synaptic, register_synaptic, synaptic_geometry

__all__ = ["SynapticGeometry", "synaptic_geometry", "is_synaptic", "register_synaptic", "dense_macs", "sops",
           "spike_events", "axis_fanout"]


def axis_fanout(size: int, kernel: int, stride: int, dilation: int, device: torch.device | None = None) -> Tensor:
    """Per-position fan-out along one (already padded) axis of length ``size``.

    ``f[i] = #{(o, k): o·stride + k·dilation = i, 0 ≤ o < out, 0 ≤ k < kernel}`` with
    ``out = (size − dilation·(kernel − 1) − 1) // stride + 1`` — how many output positions read input ``i``.
    """
    out = (size - dilation * (kernel - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(f"a kernel of {kernel} (dilation {dilation}) does not fit an axis of {size}")
    starts = torch.arange(out, device=device) * stride
    offsets = torch.arange(kernel, device=device) * dilation
    taps = (starts[:, None] + offsets[None, :]).flatten()
    return torch.bincount(taps, minlength=size).to(torch.float64)


def sops(geom: SynapticGeometry, events: Tensor) -> float:
    """Accumulations needed for input spike events ``events`` (same shape as the layer input, counts ≥ 0).

    Linear: ``Σ events · out_features``. Conv / unshared conv: ``(C_out / groups) · Σ_pos E[pos] · Π_axis f_axis``,
    with ``E`` the event map summed over batch and channels, padded like the layer, and ``f_axis`` from
    :func:`axis_fanout`.
    """
    if geom.kind == "linear":
        return float(events.sum(dtype=torch.float64)) * geom.out_channels
    d = geom.spatial_dims
    if events.ndim < d + 1:
        raise ValueError(f"a {d}-d convolution input needs at least {d + 1} dims, got {tuple(events.shape)}")
    per_pos = events.reshape((-1,) + tuple(events.shape[-d:])).sum(0, dtype=torch.float64)  # [*spatial]
    if any(p for lr in geom.pad for p in lr):
        flat_pad: list[int] = []
        for left, right in reversed(geom.pad):  # F.pad wants the last axis first
            flat_pad += [left, right]
        mode = "constant" if geom.padding_mode == "zeros" else geom.padding_mode
        per_pos = torch.nn.functional.pad(per_pos[None, None], flat_pad, mode=mode)[0, 0]
    total = per_pos
    for a in range(d):  # contract the leading axis with its fan-out each time
        f = axis_fanout(total.shape[0], geom.kernel[a], geom.stride[a], geom.dilation[a], total.device)
        total = torch.tensordot(f, total, dims=([0], [0]))
    return float(total) * (geom.out_channels // geom.groups)


def spike_events(x: Tensor) -> Tensor | None:
    """Events per element if ``x`` is spike-valued (exact rule, see the module docstring), else None.

    ``x ∈ {0, ±a}`` for one ``a > 0`` → ``(x ≠ 0)``; integer-valued ``x`` → ``|x|``; otherwise None.
    An all-zero input is spike-valued with no events.
    """
    if not x.is_floating_point():
        return x.abs().to(torch.float32)
    mag = x.abs()
    a = mag.amax() if mag.numel() else mag.new_zeros(())
    if not torch.isfinite(a):
        return None
    if bool(((mag == 0) | (mag == a)).all()):
        return (mag != 0).to(x.dtype)
    if bool((x == x.round()).all()):
        return mag
    return None


def pair_sizes(values: Sequence[int] | int, n: int) -> tuple[int, ...]:
    """``int`` or sequence -> tuple of length ``n`` (pool arguments)."""
    if isinstance(values, int):
        return (values,) * n
    t = tuple(int(v) for v in values)
    return t if len(t) == n else (t[0],) * n
