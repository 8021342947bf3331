"""Batched, device-agnostic tensor augmentations on ``[B, C, H, W]`` (or ``[B, T, C, H, W]``).

Each transform draws independent random parameters per sample from an optional
``torch.Generator`` (CPU); the random numbers are moved to the batch's device, so the same seed
gives the same augmentation on CPU and GPU. Leading dims beyond ``[B, ..., H, W]`` are kept: the
same crop/flip/hole is applied to all time steps of one sample, as needed for event frames.

* :class:`RandomCrop` - zero-pad by ``padding`` then crop back to ``H x W`` at a random offset.
* :class:`HFlip` - flip the width axis with probability ``p``.
* :class:`Cutout` - DeVries & Taylor 2017: zero ``n_holes`` squares of side ``length`` whose
  centres are uniform over the image (the squares are clipped at the border).
* :class:`AutoAugment` - Cubuk et al. 2019 (arXiv:1805.09501) learned policies (``cifar10``,
  ``imagenet``, ``svhn``) through kornia (extra ``augment``): one sub-policy drawn per sample.
* :class:`RandomRoll` - circular shift of each sample by ``(dy, dx)`` uniform in
  ``{-max_shift..max_shift}`` (with a flip, the CIFAR10-DVS augmentation of the group's event-data training).
* :class:`PointScale`, :class:`PointShift`, :class:`PointDropout` - the PointNet(++) augmentations of
  :mod:`spikeforge.data.points` on channel-first clouds ``[B, C, N]`` (as datasets store them).

Use :func:`build` to turn a recipe dict into a callable, e.g.
``build({"random_crop": {"padding": 4}, "hflip": True, "autoaugment": "cifar10", "cutout": {"length": 16}})``
(the order of the CIFAR recipes of the group, docs/methods/mpbn.md: crop, flip, AutoAugment, Cutout).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from . import points
from .errors import MissingDependencyError

__all__ = ["RandomCrop", "HFlip", "Cutout", "AutoAugment", "RandomRoll", "PointScale", "PointShift", "PointDropout",
           "Compose", "build",
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


class RandomRoll:
    """Circularly shift each sample by ``(dy, dx)``, both uniform integers in ``[-max_shift, max_shift]``.

    ``out[..., i, j] = x[..., (i - dy) mod H, (j - dx) mod W]`` (``torch.roll`` over the last two axes), the
    same shift for all time steps and channels of one sample.
    """

    def __init__(self, max_shift: int = 5, generator: torch.Generator | None = None) -> None:
        if max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {max_shift}")
        self.max_shift, self.generator = int(max_shift), generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"expected [B, ..., H, W], got shape {tuple(x.shape)}")
        B, dev = x.shape[0], x.device
        H, W = x.shape[-2:]
        m = self.max_shift
        dy = _randint(2 * m + 1, B, self.generator, dev) - m
        dx = _randint(2 * m + 1, B, self.generator, dev) - m
        rows = (torch.arange(H, device=dev) - dy[:, None]) % H  # [B, H]
        cols = (torch.arange(W, device=dev) - dx[:, None]) % W  # [B, W]
        flat = x.reshape(B, -1, H * W)
        idx = (rows[:, :, None] * W + cols[:, None, :]).reshape(B, 1, H * W).expand(-1, flat.shape[1], -1)
        return flat.gather(2, idx).reshape(x.shape)


class AutoAugment:
    """AutoAugment (Cubuk et al., arXiv:1805.09501) with kornia's policy tables, on a batch ``[B, C, H, W]``.

    Each sample draws its own sub-policy uniformly (as the per-image torchvision/``CIFAR10Policy``
    transforms of the official training code do; kornia alone draws one sub-policy per batch); within a
    sub-policy every operation fires with its own probability and a magnitude drawn per sample by kornia.
    kornia works on images in ``[0, 1]``: with ``mean``/``std`` (the dataset was normalised) the batch is
    mapped back to ``x * std + mean``, clamped to ``[0, 1]``, augmented and normalised again; without them
    the input must already lie in ``[0, 1]``. kornia draws from torch's global generator: it is re-seeded
    from ``generator`` inside :func:`torch.random.fork_rng`, so the result is a function of ``generator``
    alone and the global streams are left untouched.
    """

    POLICIES = ("cifar10", "imagenet", "svhn")

    def __init__(self, policy: str = "cifar10", mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, generator: torch.Generator | None = None) -> None:
        if policy not in self.POLICIES:
            raise ValueError(f"autoaugment policy must be one of {', '.join(self.POLICIES)}, got {policy!r}")
        if (mean is None) != (std is None):
            raise ValueError("autoaugment needs both mean and std, or neither")
        try:
            from kornia.augmentation.auto import AutoAugment as KorniaAutoAugment
        except ImportError:
            raise MissingDependencyError("kornia", "the autoaugment augmentation (pip install "
                                                   "'spikeforge[augment]')") from None
        self.policy, self.generator = policy, generator
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32)
        self._kornia = KorniaAutoAugment(policy=policy)
        self.subpolicies = list(self._kornia.children())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"autoaugment expects RGB images [B, 3, H, W], got shape {tuple(x.shape)}")
        B, dev = x.shape[0], x.device
        shape = (1, -1, 1, 1)
        if self.mean is not None and self.std is not None:
            if self.mean.numel() != x.shape[1]:
                raise ValueError(f"autoaugment got {self.mean.numel()} channel means for {x.shape[1]} channels")
            mean, std = self.mean.to(dev, x.dtype).view(shape), self.std.to(dev, x.dtype).view(shape)
            x01 = (x * std + mean).clamp(0.0, 1.0)
        else:
            lo, hi = float(x.min()), float(x.max())
            if lo < -1e-6 or hi > 1 + 1e-6:
                raise ValueError(f"autoaugment expects images in [0, 1] (values span [{lo:.3g}, {hi:.3g}]); "
                                 "normalised data must come with their mean/std")
            x01 = x
        choice = torch.randint(0, len(self.subpolicies), (B,), generator=self.generator)
        seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        self._kornia.to(dev)
        out = x01.clone()
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(seed)
            for k in torch.unique(choice).tolist():
                sel = torch.nonzero(choice == k).flatten().to(dev)
                out[sel] = self.subpolicies[k](x01[sel]).to(x.dtype)
        if self.mean is not None:
            return (out - mean) / std
        return out


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
#: a dict of keyword arguments, for ``hflip`` a number (= p), for ``roll`` an integer (= max_shift),
#: for ``autoaugment`` a policy name (``cifar10``).
TRANSFORMS: dict[str, type] = {"random_crop": RandomCrop, "hflip": HFlip, "cutout": Cutout,
                               "autoaugment": AutoAugment, "roll": RandomRoll,
                               "point_scale": PointScale, "point_shift": PointShift, "point_dropout": PointDropout}


def build(spec: Mapping[str, Any] | None, generator: torch.Generator | None = None, *,
          mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> Compose:
    """Turn a recipe dict into a :class:`Compose` applied in the dict's order.

    ``mean``/``std``: the normalisation of the data (``split.meta``), needed by ``autoaugment``, which
    works on ``[0, 1]`` images; ignored by the other transforms.

    Raises:
        ValueError: unknown key (the message lists the valid keys) or bad value type.
    """
    out: list[Callable[[torch.Tensor], torch.Tensor]] = []
    for key, val in (spec or {}).items():
        if key not in TRANSFORMS:
            raise ValueError(f"unknown augmentation {key!r}; valid keys: {', '.join(TRANSFORMS)}")
        cls = TRANSFORMS[key]
        if val is None or val is False:
            continue
        if val is True:
            kwargs: dict[str, Any] = {}
        elif isinstance(val, Mapping):
            kwargs = dict(val)
        elif key == "hflip" and isinstance(val, (int, float)):
            kwargs = {"p": float(val)}
        elif key == "roll" and isinstance(val, int):
            kwargs = {"max_shift": val}
        elif key == "autoaugment" and isinstance(val, str):
            kwargs = {"policy": val}
        else:
            raise ValueError(f"augmentation {key!r}: expected true/false or a dict of options, got {val!r}")
        if key == "autoaugment" and mean is not None and std is not None:
            kwargs.setdefault("mean", mean)
            kwargs.setdefault("std", std)
        try:
            out.append(cls(**kwargs, generator=generator))
        except TypeError as e:
            raise ValueError(f"augmentation {key!r}: {e}") from None
    return Compose(out)
