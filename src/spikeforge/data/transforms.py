"""Batched, device-agnostic tensor augmentations on ``[B, C, H, W]`` (or ``[B, T, C, H, W]``).

Each transform draws independent random parameters per sample from an optional
``torch.Generator`` (CPU); the random numbers are moved to the batch's device, so the same seed
gives the same augmentation on CPU and GPU. Leading dims beyond ``[B, ..., H, W]`` are kept: the
same crop/flip/hole is applied to all time steps of one sample, as needed for event frames.

* :class:`RandomCrop` - zero-pad by ``padding`` then crop back to ``H x W`` at a random offset.
* :class:`HFlip` - flip the width axis with probability ``p``.
* :class:`Cutout` - DeVries & Taylor 2017: zero ``n_holes`` squares of side ``length`` whose
  centres are uniform over the image (the squares are clipped at the border).
* :class:`PointScale`, :class:`PointShift`, :class:`PointDropout` - the PointNet(++) augmentations of
  :mod:`spikeforge.data.points` on channel-first clouds ``[B, C, N]`` (as datasets store them).

AutoAugment is **not** provided: the only well-kept non-torchvision implementation (kornia)
would be a new heavy dependency and works on un-normalised [0, 1] images; see docs/data.md.

Use :func:`build` to turn a recipe dict into a callable, e.g.
``build({"random_crop": {"padding": 4}, "hflip": True, "cutout": {"length": 16}})``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from . import points

__all__ = ["RandomCrop", "HFlip", "Cutout", "PointScale", "PointShift", "PointDropout", "Compose", "build",
           "TRANSFORMS"]


def _rand(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=generator).to(device)


def _randint(high: int, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.randint(0, high, (n,), generator=generator).to(device)


def _bshape(x: torch.Tensor) -> list[int]:
    """Shape for broadcasting a per-sample value over all non-batch dims."""
    return [x.shape[0]] + [1] * (x.dim() - 1)


class RandomCrop:
    """Pad with ``fill`` by ``padding`` pixels per side, then crop ``size`` at a random offset.

    Args:
        padding: pixels added on each side (CIFAR convention: 4).
        size: output ``(H, W)``; default = input size.
        fill: padding value (0 is the dataset mean after normalisation).
    """

    def __init__(self, padding: int = 4, size: Sequence[int] | None = None, fill: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        if padding < 0:
            raise ValueError("padding must be >= 0")
        self.padding, self.size, self.fill, self.generator = int(padding), size, float(fill), generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"expected [B, ..., H, W], got shape {tuple(x.shape)}")
        H, W = x.shape[-2:]
        h, w = (int(self.size[0]), int(self.size[1])) if self.size is not None else (H, W)
        p = self.padding
        xp = F.pad(x, (p, p, p, p), value=self.fill) if p else x
        Hp, Wp = xp.shape[-2:]
        if h > Hp or w > Wp:
            raise ValueError(f"crop {h}x{w} larger than padded input {Hp}x{Wp}")
        B, dev = x.shape[0], x.device
        oy = _randint(Hp - h + 1, B, self.generator, dev)
        ox = _randint(Wp - w + 1, B, self.generator, dev)
        rows = oy[:, None] + torch.arange(h, device=dev)  # [B, h]
        cols = ox[:, None] + torch.arange(w, device=dev)  # [B, w]
        flat = xp.reshape(B, -1, Hp, Wp)
        idx = (rows[:, :, None] * Wp + cols[:, None, :]).reshape(B, 1, h * w).expand(-1, flat.shape[1], -1)
        out = flat.reshape(B, flat.shape[1], Hp * Wp).gather(2, idx)
        return out.reshape(*x.shape[:-2], h, w)


class HFlip:
    """Flip the last (width) axis of each sample with probability ``p``."""

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        self.p, self.generator = float(p), generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m = (_rand(x.shape[0], self.generator, x.device) < self.p).reshape(_bshape(x))
        return torch.where(m, x.flip(-1), x)


class Cutout:
    """Zero ``n_holes`` squares of side ``length`` per sample (DeVries & Taylor, 2017).

    A hole centred at ``(cy, cx)`` covers rows ``[cy - length//2, cy + length - length//2)``
    clipped to the image, likewise for columns; centres are uniform over all pixels.
    """

    def __init__(self, n_holes: int = 1, length: int = 16, generator: torch.Generator | None = None) -> None:
        if n_holes < 0 or length < 0:
            raise ValueError("n_holes and length must be >= 0")
        self.n_holes, self.length, self.generator = int(n_holes), int(length), generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        B, dev = x.shape[0], x.device
        H, W = x.shape[-2:]
        keep = torch.ones(B, H, W, dtype=torch.bool, device=dev)
        ar_h, ar_w = torch.arange(H, device=dev), torch.arange(W, device=dev)
        half = self.length // 2
        for _ in range(self.n_holes):
            cy = _randint(H, B, self.generator, dev)[:, None]
            cx = _randint(W, B, self.generator, dev)[:, None]
            in_r = (ar_h >= cy - half) & (ar_h < cy - half + self.length)  # [B, H]
            in_c = (ar_w >= cx - half) & (ar_w < cx - half + self.length)  # [B, W]
            keep &= ~(in_r[:, :, None] & in_c[:, None, :])
        shape = [B] + [1] * (x.dim() - 3) + [H, W]
        return x * keep.reshape(shape).to(x.dtype)


class _PointTransform:
    """A :mod:`~spikeforge.data.points` augmentation (written for ``[B, N, C]``) on ``[B, C, N]`` clouds."""

    fn: Callable[..., torch.Tensor]

    def __init__(self, generator: torch.Generator | None = None, **options: float) -> None:
        self.generator, self.options = generator, options

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"{type(self).__name__} expects point clouds [B, C, N], got shape {tuple(x.shape)}")
        return type(self).fn(x.transpose(1, 2), generator=self.generator, **self.options).transpose(1, 2)


class PointScale(_PointTransform):
    """Scale xyz of each cloud by one factor ~ U(low, high) (default 0.8, 1.25)."""

    fn = staticmethod(points.random_scale)


class PointShift(_PointTransform):
    """Shift each cloud by one offset ~ U(-shift, shift)^3 (default 0.1)."""

    fn = staticmethod(points.random_shift)


class PointDropout(_PointTransform):
    """Drop each point with a per-cloud probability ~ U(0, max_ratio) (default 0.875), replaced by the first."""

    fn = staticmethod(points.random_point_dropout)


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        return f"Compose({[type(t).__name__ for t in self.transforms]})"


#: Recipe key -> transform class. Values: ``true`` (defaults), ``false``/``null`` (skip),
#: a dict of keyword arguments, or for ``hflip`` a number (= p).
TRANSFORMS: dict[str, type] = {"random_crop": RandomCrop, "hflip": HFlip, "cutout": Cutout,
                               "point_scale": PointScale, "point_shift": PointShift, "point_dropout": PointDropout}


def build(spec: Mapping[str, Any] | None, generator: torch.Generator | None = None) -> Compose:
    """Turn a recipe dict into a :class:`Compose` applied in the dict's order.

    Raises:
        ValueError: unknown key (the message lists the valid keys) or bad value type.
    """
    out: list[Callable[[torch.Tensor], torch.Tensor]] = []
    for key, val in (spec or {}).items():
        if key not in TRANSFORMS:
            extra = " (AutoAugment is not available, see docs/data.md)" if "auto" in key.lower() else ""
            raise ValueError(f"unknown augmentation {key!r}{extra}; valid keys: {', '.join(TRANSFORMS)}")
        cls = TRANSFORMS[key]
        if val is None or val is False:
            continue
        if val is True:
            kwargs: dict[str, Any] = {}
        elif isinstance(val, Mapping):
            kwargs = dict(val)
        elif key == "hflip" and isinstance(val, (int, float)):
            kwargs = {"p": float(val)}
        else:
            raise ValueError(f"augmentation {key!r}: expected true/false or a dict of options, got {val!r}")
        try:
            out.append(cls(**kwargs, generator=generator))
        except TypeError as e:
            raise ValueError(f"augmentation {key!r}: {e}") from None
    return Compose(out)
