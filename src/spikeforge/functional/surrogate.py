"""Surrogate gradients: a forward Heaviside with a named, analytic backward.

Every surrogate is a *straight-through* pair: the forward value is the hard spike ``H(z)`` with
``z = v - V_th`` (the distance of the firing input to the threshold, in membrane units) and the backward
uses ``g'(z)``, the derivative of a smooth stand-in ``g`` for ``H``. ``smooth`` exposes ``g`` itself so
that tests can compare ``grad`` with autograd and ``torch.autograd.gradcheck``.

Families (the surrogates of the papers' set-up sections, e.g. MPBN arXiv:2308.08359 §4 "Experiments",
Spiking PointNet arXiv:2310.06232; ``docs/methods/neurons.md``):

* ``rectangular`` (STBP; Joint A-SNN, NeuroCLIP): ``g'(z) = 1[|z| < w/2] / w``.
* ``ste`` (straight-through clamp; InfLoR, Ternary Spike): ``g(z) = clamp(z/w + 1/2, 0, 1)``,
  ``g'(z) = 1[|z| <= w/2] / w`` (inclusive edges, like ``torch.clamp``'s backward).
* ``triangle``: ``g'(z) = max(0, 1 - |z|/w) / w``.
* ``sigmoid``: ``g(z) = sigmoid(alpha z)``, ``g'(z) = alpha sigmoid(alpha z)(1 - sigmoid(alpha z))``.
* ``atan``: ``g(z) = atan(pi alpha z / 2)/pi + 1/2``, ``g'(z) = alpha / (2 (1 + (pi alpha z / 2)^2))``.
* ``dspike`` (tanh family, Dspike, arXiv:2110.07742; MPBN b=3, Spiking PointNet b=5): with
  ``x = z/w + 1/2`` clipped to [0, 1], ``g(x) = [tanh(b (x - 1/2)) + tanh(b/2)] / (2 tanh(b/2))`` and
  ``g'(z) = b sech^2(b z / w) / (2 w tanh(b/2))`` on ``|z| <= w/2``, zero outside.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..registry import Registry

__all__ = ["Surrogate", "surrogate", "list_surrogates", "register_surrogate"]

_GradFn = Callable[[Tensor, float], Tensor]
_SmoothFn = Callable[[Tensor, float], Tensor]


@dataclass(frozen=True)
class _Family:
    grad: _GradFn
    smooth: _SmoothFn
    param: str
    default: float
    doc: str


_FAMILIES: Registry[str, _Family] = Registry("surrogate")


def register_surrogate(name: str, *, grad: _GradFn, smooth: _SmoothFn, param: str, default: float, doc: str) -> None:
    """Add a surrogate family. ``grad(z, p)`` must be the derivative of ``smooth(z, p)``."""
    _FAMILIES.add(name, _Family(grad, smooth, param, default, doc))


def list_surrogates() -> list[str]:
    return sorted(_FAMILIES)


@dataclass(frozen=True)
class Surrogate:
    """A named surrogate with its one shape parameter (width ``w`` or sharpness ``alpha`` / ``b``)."""

    name: str
    param: float
    _family: _Family = field(repr=False, compare=False, hash=False, default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.name not in _FAMILIES:
            raise ValueError(f"unknown surrogate {self.name!r}; choose one of {list_surrogates()}")
        if not (self.param > 0 and math.isfinite(self.param)):
            raise ValueError(f"surrogate {self.name!r}: parameter must be a positive finite number, got {self.param}")
        object.__setattr__(self, "_family", _FAMILIES[self.name])

    def grad(self, z: Tensor) -> Tensor:
        """``g'(z)``: the backward of the Heaviside at distance ``z`` from the threshold."""
        return self._family.grad(z, self.param)

    def smooth(self, z: Tensor) -> Tensor:
        """``g(z)``: the smooth function whose derivative is :meth:`grad`."""
        return self._family.smooth(z, self.param)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, self._family.param: self.param}


def surrogate(spec: str | Surrogate | dict | None = None, /, **kwargs: float) -> Surrogate:
    """Build a surrogate: ``surrogate("dspike", b=3)``, ``surrogate({"name": "atan", "alpha": 2})``."""
    if isinstance(spec, Surrogate):
        if kwargs:
            raise ValueError("cannot pass parameters together with a Surrogate instance")
        return spec
    if isinstance(spec, dict):
        kwargs = {**{k: v for k, v in spec.items() if k != "name"}, **kwargs}
        spec = spec.get("name")
    name = spec or "rectangular"
    if name not in _FAMILIES:
        raise ValueError(f"unknown surrogate {name!r}; choose one of {list_surrogates()}")
    fam = _FAMILIES[name]
    unknown = set(kwargs) - {fam.param}
    if unknown:
        raise ValueError(f"surrogate {name!r} takes only {fam.param!r}, got {sorted(unknown)}")
    return Surrogate(name, float(kwargs.get(fam.param, fam.default)))


# --- families ---------------------------------------------------------------------------------------------


def _rect_grad(z: Tensor, w: float) -> Tensor:
    return (z.abs() < 0.5 * w).to(z.dtype) / w


def _ste_grad(z: Tensor, w: float) -> Tensor:
    return (z.abs() <= 0.5 * w).to(z.dtype) / w


def _ste_smooth(z: Tensor, w: float) -> Tensor:
    return torch.clamp(z / w + 0.5, 0.0, 1.0)


def _tri_grad(z: Tensor, w: float) -> Tensor:
    return torch.clamp(1.0 - z.abs() / w, min=0.0) / w


def _tri_smooth(z: Tensor, w: float) -> Tensor:
    y = torch.clamp(z / w, -1.0, 1.0)
    return torch.where(y < 0, 0.5 * (1 + y) ** 2, 1 - 0.5 * (1 - y) ** 2)


def _sig_grad(z: Tensor, a: float) -> Tensor:
    s = torch.sigmoid(a * z)
    return a * s * (1 - s)


def _atan_grad(z: Tensor, a: float) -> Tensor:
    return a / (2 * (1 + (math.pi / 2 * a * z) ** 2))


def _atan_smooth(z: Tensor, a: float) -> Tensor:
    return torch.atan(math.pi / 2 * a * z) / math.pi + 0.5


def _dspike_grad(z: Tensor, b: float) -> Tensor:
    # width 1 in membrane units, as in the group's code (x = u / V_th with V_th = 1)
    inside = (z.abs() <= 0.5).to(z.dtype)
    return inside * b * (1 - torch.tanh(b * z) ** 2) / (2 * math.tanh(b / 2))


def _dspike_smooth(z: Tensor, b: float) -> Tensor:
    x = torch.clamp(z + 0.5, 0.0, 1.0)
    return (torch.tanh(b * (x - 0.5)) + math.tanh(b / 2)) / (2 * math.tanh(b / 2))


register_surrogate("rectangular", grad=_rect_grad, smooth=_ste_smooth, param="width", default=1.0,
                   doc="box of width w and height 1/w (STBP)")
register_surrogate("ste", grad=_ste_grad, smooth=_ste_smooth, param="width", default=1.0,
                   doc="straight-through clamp(z/w + 1/2, 0, 1)")
register_surrogate("triangle", grad=_tri_grad, smooth=_tri_smooth, param="width", default=1.0,
                   doc="triangle of half-width w and height 1/w")
register_surrogate("sigmoid", grad=_sig_grad, smooth=lambda z, a: torch.sigmoid(a * z), param="alpha", default=4.0,
                   doc="derivative of sigmoid(alpha z)")
register_surrogate("atan", grad=_atan_grad, smooth=_atan_smooth, param="alpha", default=2.0,
                   doc="derivative of atan(pi alpha z / 2)/pi + 1/2")
register_surrogate("dspike", grad=_dspike_grad, smooth=_dspike_smooth, param="b", default=3.0,
                   doc="tanh family with temperature b on a unit-width window (Dspike)")
