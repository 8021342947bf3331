"""Operation counting for synaptic layers: dense MACs, synaptic operations (SOPs) and the spike-input test.

Definitions (per forward call of one synaptic layer — ``Conv1d/2d/3d``, ``Linear``, the ``spikeforge.layers``
subclasses, and the locally connected ``spikeforge.layers.unshared.UnsharedConv2d``):

* **dense MACs** = output elements × fan-in, i.e. ``out.numel() · (C_in / groups) · prod(kernel)`` for a conv and
  ``out.numel() · in_features`` for a linear layer. Bias additions are not counted (nor BN, which folds into the
  weights at inference, nor neuron updates) — the convention of the energy estimates in the Ternary Spike / Real Spike /
  MPBN papers (methods.md §1, §11.20).
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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn

__all__ = ["SynapticGeometry", "synaptic_geometry", "is_synaptic", "register_synaptic", "dense_macs", "sops",
           "spike_events", "axis_fanout"]


@dataclass(frozen=True)
class SynapticGeometry:
    """What the counters need to know about a synaptic layer.

    ``kind`` is ``'linear'``, ``'conv'`` or ``'unshared'``; ``spatial_dims`` is 0 for linear layers; ``pad`` holds
    ``(left, right)`` per spatial axis in axis order.
    """

    kind: str
    in_channels: int
    out_channels: int
    groups: int = 1
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    pad: tuple[tuple[int, int], ...] = ()
    padding_mode: str = "zeros"

    @property
    def spatial_dims(self) -> int:
        return len(self.kernel)

    @property
    def fan_in(self) -> int:
        return (self.in_channels // self.groups) * math.prod(self.kernel)


GeometryFn = Callable[[nn.Module], SynapticGeometry]
_EXTRA: dict[type, GeometryFn] = {}
_BUILTINS_LOADED = False


def register_synaptic(cls: type, geometry: GeometryFn) -> None:
    """Count a custom synaptic layer type (one that is not a torch Conv/Linear subclass).

    ``geometry(module)`` returns its :class:`SynapticGeometry`; the layer must map its input to its output like
    the conv/linear layer that geometry describes (input channels on dim ``-(spatial + 1)``).
    """
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise TypeError(f"register_synaptic needs an nn.Module subclass, got {cls!r}")
    _EXTRA[cls] = geometry


def _conv_attrs(m: nn.Module, d: int) -> SynapticGeometry:
    conv: Any = m  # a torch conv or a conv-like library layer: its attributes are read duck-typed

    def tup(v: Any) -> tuple[int, ...]:  # an int-like or a tuple/list of them
        return tuple(int(u) for u in v) if isinstance(v, (tuple, list)) else (int(v),) * d

    pad = tup(conv.padding)
    return SynapticGeometry("conv", int(conv.in_channels), int(conv.out_channels), int(getattr(conv, "groups", 1)),
                            tup(conv.kernel_size), tup(conv.stride), tup(getattr(conv, "dilation", 1)),
                            tuple((p, p) for p in pad))


def _load_builtins() -> None:
    """Library layers that are not torch Conv/Linear subclasses (imported lazily; each is optional)."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    try:  # locally connected conv of the element-wise amplitude fold
        from ..layers.unshared import UnsharedConv2d

        def unshared_geometry(m: nn.Module) -> SynapticGeometry:
            u = cast(UnsharedConv2d, m)  # registered for UnsharedConv2d only
            return SynapticGeometry("unshared", u.in_channels, u.out_channels, u.groups, tuple(u.kernel_size),
                                    tuple(u.stride), tuple(u.dilation), tuple((int(p), int(p)) for p in u.padding))

        _EXTRA.setdefault(UnsharedConv2d, unshared_geometry)
    except ImportError:  # pragma: no cover - depends on the tree state
        pass
    try:  # Joint A-SNN dual-mode layers (SVD-factorised conv, separate ANN/SNN linear weights)
        from ..models.joint_asnn import DualConv2d, DualLinear

        _EXTRA.setdefault(DualConv2d, lambda m: _conv_attrs(m, 2))
        def dual_linear_geometry(m: nn.Module) -> SynapticGeometry:
            weight = cast(DualLinear, m).weight_snn  # registered for DualLinear only
            return SynapticGeometry("linear", int(weight.shape[1]), int(weight.shape[0]))

        _EXTRA.setdefault(DualLinear, dual_linear_geometry)
    except ImportError:  # pragma: no cover - depends on the tree state
        pass


def _extra_geometry(module: nn.Module) -> GeometryFn | None:
    _load_builtins()
    for cls in type(module).__mro__:
        if cls in _EXTRA:
            return _EXTRA[cls]
    return None


def is_synaptic(module: nn.Module) -> bool:
    """True for the layers whose operations are counted: torch Conv1d/2d/3d and Linear (with subclasses),
    the unshared conv, Joint A-SNN's dual-mode conv/linear and types added with :func:`register_synaptic`."""
    return isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) or _extra_geometry(module) is not None


def synaptic_geometry(module: nn.Module) -> SynapticGeometry:
    """The :class:`SynapticGeometry` of a synaptic layer; a clear error for anything else."""
    if isinstance(module, nn.Linear):
        return SynapticGeometry("linear", module.in_features, module.out_features)
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        d = len(module.kernel_size)
        rev = module._reversed_padding_repeated_twice  # (last-axis left, right, ..., first-axis left, right)
        pad = tuple((int(rev[2 * (d - 1 - a)]), int(rev[2 * (d - 1 - a) + 1])) for a in range(d))
        return SynapticGeometry("conv", module.in_channels, module.out_channels, module.groups,
                                tuple(module.kernel_size), tuple(module.stride), tuple(module.dilation), pad,
                                module.padding_mode)
    fn = _extra_geometry(module)
    if fn is not None:
        return fn(module)
    raise TypeError(f"{type(module).__name__} is not a synaptic layer (Conv1d/2d/3d, Linear, UnsharedConv2d, or "
                    "a type added with spikeforge.analysis.register_synaptic)")


def dense_macs(geom: SynapticGeometry, output: Tensor) -> int:
    """Multiply-accumulates executed by a dense evaluation producing ``output`` (bias not counted)."""
    return int(output.numel()) * geom.fan_in


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
