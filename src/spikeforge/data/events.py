"""Event-stream processing: integration into frames, NeuroCLIP grey rendering, event transforms
and an on-disk frame cache.

Events are structured arrays of :data:`~spikeforge.data.event_formats.EVENT_DTYPE`
(``t`` us, ``x``, ``y``, ``p`` with 1 = ON, 0 = OFF).

Frames are ``float32 [T, 2, H, W]`` event counts; **channel 0 counts OFF events (p = 0) and
channel 1 counts ON events (p = 1)**. Events outside ``size`` are ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch

from .base import file_fingerprint, npz_cache
from .event_formats import read_events

__all__ = [
    "events_to_frames",
    "frames_from_columns",
    "bin_events",
    "render_grey",
    "denoise",
    "crop",
    "hflip",
    "random_drop",
    "cached_frames",
    "sensor_size",
]

SplitBy = Literal["number", "time"]


def sensor_size(events: np.ndarray) -> tuple[int, int]:
    """Smallest ``(H, W)`` containing all events (``(0, 0)`` for an empty array)."""
    if len(events) == 0:
        return (0, 0)
    return int(events["y"].max()) + 1, int(events["x"].max()) + 1


def bin_events(
    sample: np.ndarray,
    t: np.ndarray,
    pix: np.ndarray,
    p: np.ndarray,
    n_samples: int,
    T: int,
    n_pix: int,
    split_by: SplitBy = "number",
    time_sorted: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Count events into ``float32 [n_samples, T, 2, n_pix]`` given flat pixel indices
    ``pix in [0, n_pix)`` (see :func:`events_to_frames` for the binning rules).

    ``time_sorted=True`` promises the columns are already in time order (any sample order),
    which replaces the (sample, t) sort by a linear-time stable sort on ``sample``.
    ``out`` (float32, ``n_samples * T * 2 * n_pix`` elements) receives the counts in place."""
    if T < 1:
        raise ValueError("T must be >= 1")
    if split_by not in ("number", "time"):
        raise ValueError(f"split_by must be 'number' or 'time', got {split_by!r}")
    total = n_samples * T * 2 * n_pix
    if out is None:
        out = np.empty((n_samples, T, 2, n_pix), np.float32)
    elif out.size != total:
        raise ValueError(f"out has {out.size} elements, expected {total}")
    if len(t) == 0:
        out[...] = 0
        return out
    sample = np.asarray(sample)
    t = np.asarray(t, np.int64)
    it = np.int32 if total < 2**31 and len(t) < 2**31 else np.int64  # int32 halves memory traffic
    it = cast("type[np.signedinteger[Any]]", it)  # numpy's stubs mistype astype() given a union of scalar types
    b = sample.astype(it, copy=False)
    if time_sorted:
        order = np.argsort(b.astype(np.uint16) if n_samples <= 65536 else b, kind="stable")  # radix
    else:
        order = np.lexsort((t, b))  # by sample, then time; stable
    counts = np.bincount(b, minlength=n_samples).astype(it)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(it)
    if split_by == "number":
        # rank of each event within its sample in time order, written back in the input order;
        # np.array_split convention: the first n % T frames get one extra event.
        rank = np.empty(len(t), it)
        rank[order] = np.arange(len(t), dtype=it) - np.repeat(starts, counts)
        base, rem = counts // T, counts % T
        big = (rem * (base + 1))[b]
        k = np.where(rank < big, rank // (base + 1)[b], rem[b] + (rank - big) // np.maximum(base, 1)[b])
    else:
        nz = counts > 0
        t0 = np.zeros(n_samples, np.int64)
        t1 = np.zeros(n_samples, np.int64)
        t0[nz] = t[order[starts[nz]]]
        t1[nz] = t[order[starts[nz] + counts[nz] - 1]]
        k = (((t - t0[b]) * T) // (t1 - t0 + 1)[b]).astype(it)  # slice k = [t0 + kD/T, t0 + (k+1)D/T)
    flat = ((b * T + k) * 2 + (np.asarray(p) > 0).astype(it)) * n_pix + np.asarray(pix).astype(it, copy=False)
    out.reshape(-1)[...] = np.bincount(flat, minlength=total)
    return out


def frames_from_columns(
    sample: np.ndarray,
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    n_samples: int,
    T: int,
    size: tuple[int, int],
    split_by: SplitBy = "number",
    time_sorted: bool = False,
) -> np.ndarray:
    """Batched :func:`events_to_frames`: events of many recordings given as columns with a
    ``sample`` index; returns ``float32 [n_samples, T, 2, H, W]``. Same binning rules per sample
    (events outside the sensor are dropped before the split)."""
    H, W = int(size[0]), int(size[1])
    xs, ys = np.asarray(x, np.int64), np.asarray(y, np.int64)
    ok = (xs >= 0) & (xs < W) & (ys >= 0) & (ys < H)
    if not ok.all():
        sample, t, xs, ys, p = np.asarray(sample)[ok], np.asarray(t)[ok], xs[ok], ys[ok], np.asarray(p)[ok]
    out = bin_events(sample, t, ys * W + xs, p, n_samples, T, H * W, split_by, time_sorted)
    return out.reshape(n_samples, T, 2, H, W)


def events_to_frames(
    events: np.ndarray, T: int, size: tuple[int, int], split_by: SplitBy = "number"
) -> np.ndarray:
    """Integrate events into ``T`` count frames ``float32 [T, 2, H, W]``.

    The events are first sorted by time (stable). Then

    * ``split_by='number'``: frame k holds the events with sorted index in the k-th chunk of
      ``np.array_split(range(N), T)``: every frame gets ``N // T`` events and the first
      ``N % T`` frames one more. With ``N < T`` the last frames are empty.
    * ``split_by='time'``: with ``t0 = min t``, ``D = max t - t0 + 1``, an event goes to frame
      ``floor((t - t0) * T / D)``, i.e. ``T`` equal slices of the recording's duration.

    Channel 0 = OFF (p = 0), channel 1 = ON (p = 1). Events outside ``size = (H, W)`` are
    dropped first (they do not count towards the ``'number'`` split).
    """
    zeros = np.zeros(len(events), np.int64)
    return frames_from_columns(zeros, events["t"], events["x"], events["y"], events["p"], 1, T, size,
                               split_by)[0]


def render_grey(frame: np.ndarray | torch.Tensor, count_threshold: float = 0) -> np.ndarray | torch.Tensor:
    """NeuroCLIP grey image of a ``[..., 2, H, W]`` count frame (arXiv:2306.12073, event-to-frame module;
    docs/methods/neuroclip.md), as the official code renders it.

    Background 127; pixels whose **channel 0** count (p = 0) exceeds ``count_threshold`` become 255, then
    pixels whose **channel 1** count (p = 1) exceeds it become 0. Channel 1 is written last, so it wins
    where both polarities fired. ``count_threshold=1`` is the noise filter suggested for CIFAR10-DVS.
    Returns uint8 ``[..., H, W]``: a numpy array for numpy input, a tensor on the input's device for a tensor.
    """
    shape = tuple(frame.shape)
    if len(shape) < 3 or shape[-3] != 2:
        raise ValueError(f"render_grey: frame must be [..., 2, H, W] (2 polarity channels), got shape {shape}")
    if isinstance(frame, torch.Tensor):
        c0, c1 = frame[..., 0, :, :] > count_threshold, frame[..., 1, :, :] > count_threshold
        grey = torch.full(c0.shape, 127, dtype=torch.uint8, device=frame.device)
        return grey.masked_fill(c0, 255).masked_fill(c1, 0)
    f = np.asarray(frame)
    out = np.full(f.shape[:-3] + f.shape[-2:], 127, np.uint8)
    out[f[..., 0, :, :] > count_threshold] = 255
    out[f[..., 1, :, :] > count_threshold] = 0
    return out


def denoise(events: np.ndarray, time_window: int = 10_000, size: tuple[int, int] | None = None) -> np.ndarray:
    """Background-activity filter: keep an event only if at least one other event occurred at
    one of its 8 neighbouring pixels within ``|dt| <= time_window`` microseconds.

    Symmetric in time (a neighbour just after also counts), so the first event of a real
    edge is kept. Vectorised: events are keyed by ``pixel * span + t`` and each of the 8
    neighbour offsets is a pair of ``searchsorted`` range queries. Order is preserved.
    """
    n = len(events)
    if n == 0:
        return events.copy()
    H, W = size if size is not None else sensor_size(events)
    x, y, t = events["x"].astype(np.int64), events["y"].astype(np.int64), events["t"].astype(np.int64)
    t = t - t.min()
    span = int(t.max()) + 2 * int(time_window) + 2
    if (H + 2) * (W + 2) * span >= 2**62:
        raise ValueError("recording too long for the vectorised denoise; split it first")
    Wp = W + 2
    pix = (y + 1) * Wp + (x + 1)  # padded so that neighbours of border pixels stay distinct
    keys = np.sort(pix * span + t)
    keep = np.zeros(n, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            q = (pix + dy * Wp + dx) * span
            lo = np.searchsorted(keys, q + t - time_window, side="left")
            hi = np.searchsorted(keys, q + t + time_window, side="right")
            keep |= hi > lo
    return events[keep]


def crop(events: np.ndarray, x0: int, y0: int, width: int, height: int) -> np.ndarray:
    """Keep events inside ``[x0, x0 + width) x [y0, y0 + height)`` and shift them to the origin."""
    m = (events["x"] >= x0) & (events["x"] < x0 + width) & (events["y"] >= y0) & (events["y"] < y0 + height)
    out = events[m].copy()
    out["x"] -= x0
    out["y"] -= y0
    return out


def hflip(events: np.ndarray, width: int) -> np.ndarray:
    """Mirror horizontally: ``x -> width - 1 - x``."""
    out = events.copy()
    out["x"] = width - 1 - out["x"]
    return out


def random_drop(events: np.ndarray, p: float, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Drop each event independently with probability ``p`` (seedable)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError("p must be in [0, 1]")
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return events[g.random(len(events)) >= p]


_CACHE_VERSION = 1


def cached_frames(
    path: str | os.PathLike[str],
    T: int,
    size: tuple[int, int],
    split_by: SplitBy = "number",
    *,
    format: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    preprocess_key: Any = None,
) -> np.ndarray:
    """``events_to_frames(read_events(path))`` through an ``.npz`` cache.

    The cache key hashes the settings (``T``, ``size``, ``split_by``, ``format``,
    ``preprocess_key``) together with the source file's absolute path, size and mtime, so editing
    or replacing the recording invalidates the entry. ``cache_dir=None`` disables the cache.
    ``preprocess`` (e.g. a denoise/crop) is applied to the events first; give it a
    ``preprocess_key`` describing it, or it will not be cached.
    """
    if preprocess is not None and preprocess_key is None:
        cache_dir = None  # an anonymous callable cannot be part of a key

    def compute() -> dict[str, np.ndarray]:
        ev = read_events(path, format=format)
        if preprocess is not None:
            ev = preprocess(ev)
        return {"frames": events_to_frames(ev, T, size, split_by)}

    key = {"v": _CACHE_VERSION, "src": file_fingerprint(path), "T": T, "size": list(size),
           "split_by": split_by, "format": format, "pre": preprocess_key}
    H, W = int(size[0]), int(size[1])

    def valid(d: dict[str, np.ndarray]) -> bool:
        f = d.get("frames")
        return f is not None and f.dtype == np.float32 and f.shape == (T, 2, H, W)

    return npz_cache(cache_dir, key, compute, prefix=f"frames-{Path(path).stem}", check=valid)["frames"]

