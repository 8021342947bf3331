"""What a layer tells the operation counters: its synaptic geometry, or its own multiply-accumulate count.

Two small protocols let any module — a library layer or an architecture's own layer — describe itself without the
counters (:mod:`spikeforge.analysis`) importing it:

* :class:`Synaptic` — ``module.synaptic_geometry() -> SynapticGeometry``: the module maps its input to its
  output like the conv/linear layer that geometry describes (input channels on dim ``-(spatial + 1)``). torch
  ``Conv1d/2d/3d`` and ``Linear`` (with subclasses) and :class:`~spikeforge.layers.UnsharedConv2d` are described
  here; Joint A-SNN's dual-mode layers implement the method.
* :class:`MacCounted` — ``module.mac_count(inputs, output) -> int``: multiply-accumulates that are not a
  conv/linear layer (Spiking PointNet's learned point transforms). Charged as dense MACs.

**Dense MACs** of one call = output elements × fan-in (``C_in/groups · prod(kernel)`` for a conv, ``in_features``
for a linear layer); biases, BN (folded into the weights at inference) and neuron updates are not counted — the
convention of the energy estimates of Ternary Spike (arXiv:2312.06372, §4), Real Spike (arXiv:2210.06686) and MPBN
(arXiv:2308.08359); see ``docs/analysis.md``. FLOPs are conventionally ``2 × MACs``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

from torch import Tensor, nn

from ..registry import Registry
from .unshared import UnsharedConv2d

__all__ = ["SynapticGeometry", "Synaptic", "MacCounted", "synaptic_geometry", "is_synaptic", "register_synaptic",
           "dense_macs", "is_mac_counted", "call_macs"]


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


@runtime_checkable
class Synaptic(Protocol):
    """A module that describes itself as a conv/linear layer for the operation counters."""

    def synaptic_geometry(self) -> SynapticGeometry: ...


@runtime_checkable
class MacCounted(Protocol):
    """A module with multiply-accumulates of its own (not a conv/linear layer): ``mac_count(inputs, output)``."""

    def mac_count(self, inputs: tuple[Any, ...], output: Tensor) -> int: ...


GeometryFn = Callable[[nn.Module], SynapticGeometry]
_EXTRA: Registry[type, GeometryFn] = Registry("synaptic layer type")


def register_synaptic(cls: type, geometry: GeometryFn) -> None:
    """Count a layer type you cannot edit (one that is not a torch Conv/Linear subclass); your own layers
    implement :class:`Synaptic` instead. ``geometry(module)`` returns its :class:`SynapticGeometry`."""
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise TypeError(f"register_synaptic needs an nn.Module subclass, got {cls!r}")
    _EXTRA.add(cls, geometry, replace=True)


def conv_geometry(conv: Any, spatial_dims: int, kind: str = "conv") -> SynapticGeometry:
    """Geometry of a conv-like layer from its ``in_channels``, ``out_channels``, ``kernel_size``, ``stride``,
    ``padding`` (symmetric), ``dilation`` and ``groups`` attributes (ints or tuples)."""
    d = spatial_dims

    def tup(v: Any) -> tuple[int, ...]:
        return tuple(int(u) for u in v) if isinstance(v, (tuple, list)) else (int(v),) * d

    pad = tup(conv.padding)
    return SynapticGeometry(kind, int(conv.in_channels), int(conv.out_channels), int(getattr(conv, "groups", 1)),
                            tup(conv.kernel_size), tup(conv.stride), tup(getattr(conv, "dilation", 1)),
                            tuple((p, p) for p in pad))


def _unshared_geometry(m: nn.Module) -> SynapticGeometry:
    return conv_geometry(m, 2, kind="unshared")


_EXTRA[UnsharedConv2d] = _unshared_geometry


def _own_geometry(module: nn.Module) -> SynapticGeometry:
    return cast(Synaptic, module).synaptic_geometry()


def _extra_geometry(module: nn.Module) -> GeometryFn | None:
    for cls in type(module).__mro__:
        if cls in _EXTRA:
            return _EXTRA[cls]
    if isinstance(module, Synaptic):
        return _own_geometry
    return None


def is_synaptic(module: nn.Module) -> bool:
    """True for the layers whose operations are counted: torch Conv1d/2d/3d and Linear (with subclasses), the
    unshared conv, modules implementing :class:`Synaptic` and types added with :func:`register_synaptic`."""
    return isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) or _extra_geometry(module) is not None


def is_mac_counted(module: nn.Module) -> bool:
    """True for a module implementing :class:`MacCounted` (and not described as a synaptic layer)."""
    return callable(getattr(module, "mac_count", None)) and not is_synaptic(module)


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
    raise TypeError(f"{type(module).__name__} is not a synaptic layer (Conv1d/2d/3d, Linear, UnsharedConv2d, a "
                    "module with synaptic_geometry(), or a type added with spikeforge.analysis.register_synaptic)")


def dense_macs(geom: SynapticGeometry, output: Tensor) -> int:
    """Multiply-accumulates executed by a dense evaluation producing ``output`` (bias not counted)."""
    return int(output.numel()) * geom.fan_in


def call_macs(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> int | None:
    """Dense MACs of one call of ``module`` (None if it is neither :class:`Synaptic`-like nor :class:`MacCounted`,
    or produced no tensor)."""
    if not isinstance(output, Tensor):
        return None
    if is_synaptic(module):
        return dense_macs(synaptic_geometry(module), output)
    custom = getattr(module, "mac_count", None)
    return int(custom(inputs, output)) if callable(custom) else None
