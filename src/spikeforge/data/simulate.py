"""N-MNIST-style event simulator: real images seen by a moving DVS camera.

The N-MNIST recordings (Orchard et al. 2015) were made by moving an ATIS camera in front of a
still MNIST digit in **three saccades** (~100 ms each) that trace a triangle. We reproduce this:

1. The image (``h x w``, values in [0, 1]) is placed on a ``(h + margin) x (w + margin)``
   canvas. Its top-left corner follows the closed triangle ``A -> B -> C -> A`` with
   ``A = (m/6, 5m/6)``, ``B = (m/2, m/6)``, ``C = (5m/6, 5m/6)`` (x, y in pixels, ``m = margin``),
   one saccade per edge at constant speed, sampled at ``steps_per_saccade`` time steps.
   Subpixel positions are rendered with bilinear interpolation (zero outside the image).
2. Each pixel sees the log intensity ``L = log(I + log_eps)``. A pixel keeps the level
   ``L_ref`` of its last event (initially the first rendered frame). Whenever
   ``|L - L_ref|`` crosses ``k * C_px`` (k = 1, 2, ...) it emits one event per crossing:
   ON (p = 1) for increases, OFF (p = 0) for decreases, and ``L_ref`` moves by ``k * C_px``.
3. The timestamp of each crossing is linearly interpolated between the two time steps that
   bracket it: ``t = t0 + dt * (L_ref + s*j*C_px - L0) / (L1 - L0)``.
4. ``C_px = C * (1 + mismatch * n_px)`` with ``n_px ~ N(0, 1)`` drawn once per call from
   ``seed`` (one sensor per seed; clipped at ``0.2 C``), so a recording only depends on the image
   and the seed, never on the batch it was simulated in.

All arithmetic is vectorised with numpy over images and pixels; Python only loops over the
``3 * steps_per_saccade`` time steps. Output frames from :func:`simulate_frames` follow
:func:`~spikeforge.data.events.events_to_frames` (channel 0 = OFF, 1 = ON).
These recordings are **simulated** and are not the real N-MNIST.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .event_formats import make_events
from .events import SplitBy, frames_from_columns

__all__ = ["SaccadeConfig", "simulate_events", "simulate_frames", "simulate_columns", "upsample"]


@dataclass(frozen=True)
class SaccadeConfig:
    """Simulator settings (defaults give 34x34 recordings of 28x28 images like N-MNIST)."""

    margin: int = 6
    threshold: float = 0.15
    mismatch: float = 0.0
    steps_per_saccade: int = 16
    saccade_us: int = 100_000
    log_eps: float = 0.25
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _path(cfg: SaccadeConfig) -> tuple[np.ndarray, np.ndarray]:
    """Top-left offsets ``[S+1, 2]`` (x, y) and times ``[S+1]`` in us along the triangle."""
    m = float(cfg.margin)
    verts = np.array([[m / 6, 5 * m / 6], [m / 2, m / 6], [5 * m / 6, 5 * m / 6]])
    n = cfg.steps_per_saccade
    pts = [verts[0][None]]
    for i in range(3):
        a, b = verts[i], verts[(i + 1) % 3]
        f = np.arange(1, n + 1)[:, None] / n
        pts.append(a + (b - a) * f)
    pos = np.concatenate(pts)
    times = np.round(np.arange(3 * n + 1) * (cfg.saccade_us / n)).astype(np.int64)
    return pos, times


def _render(img: np.ndarray, ox: float, oy: float, H: int, W: int) -> np.ndarray:
    """Bilinear placement of ``img [B, h, w]`` with top-left at (ox, oy) on a ``[B, H, W]`` canvas."""
    B, h, w = img.shape
    ix, iy = int(np.floor(ox)), int(np.floor(oy))
    fx, fy = np.float32(ox - ix), np.float32(oy - iy)
    blend = np.zeros((B, h + 1, w + 1), np.float32)
    blend[:, :h, :w] += (1 - fx) * (1 - fy) * img
    blend[:, :h, 1:] += fx * (1 - fy) * img
    blend[:, 1:, :w] += (1 - fx) * fy * img
    blend[:, 1:, 1:] += fx * fy * img
    canvas = np.zeros((B, H, W), np.float32)
    y0, x0 = max(iy, 0), max(ix, 0)
    y1, x1 = min(iy + h + 1, H), min(ix + w + 1, W)
    canvas[:, y0:y1, x0:x1] = blend[:, y0 - iy:y1 - iy, x0 - ix:x1 - ix]
    return canvas


def _thresholds(cfg: SaccadeConfig, H: int, W: int) -> np.ndarray:
    c = np.full((H, W), cfg.threshold, np.float32)
    if cfg.mismatch > 0:
        rng = np.random.default_rng(cfg.seed)
        c = c * (1 + cfg.mismatch * rng.standard_normal((H, W))).astype(np.float32)
        c = np.maximum(c, 0.2 * cfg.threshold)
    return c


def simulate_columns(images: np.ndarray, cfg: SaccadeConfig = SaccadeConfig()):
    """Simulate a batch ``images [B, h, w]`` (values in [0, 1]).

    Returns ``(sample, t, x, y, p, (H, W))``: event columns with the index of the source image
    (sorted by time, not by sample; ties in time keep pixel order), and the sensor size.
    """
    img = np.asarray(images, np.float32)
    if img.ndim != 3:
        raise ValueError(f"expected images [B, h, w], got shape {img.shape}")
    B, h, w = img.shape
    H, W = h + cfg.margin, w + cfg.margin
    HW = H * W
    C = _thresholds(cfg, H, W)
    inv_c = (1.0 / C)[None]
    c_flat = C.reshape(-1)
    pos, times = _path(cfg)
    eps = np.float32(cfg.log_eps)
    L_prev = np.log(_render(img, pos[0, 0], pos[0, 1], H, W) + eps).reshape(-1)
    L_ref = L_prev.copy()
    cols: list[tuple[np.ndarray, ...]] = []
    for s in range(1, len(times)):
        L = np.log(_render(img, pos[s, 0], pos[s, 1], H, W) + eps).reshape(-1)
        d = L - L_ref
        n = (np.abs(d).reshape(B, H, W) * inv_c).astype(np.int32).reshape(-1)  # floor(|d| / C_px)
        hit = np.flatnonzero(n)
        if hit.size:
            # per-pixel quantities (one entry per pixel that fires in this step)
            nh = n[hit]
            bh, pix = np.divmod(hit, HW)
            on = d[hit] > 0
            step = np.where(on, c_flat[pix], -c_flat[pix])
            l0 = L_prev[hit]
            span = L[hit] - l0
            span = np.where(span == 0, np.float32(1), span)
            a0 = (L_ref[hit] - l0) / span  # crossing j happens at frac = a0 + j * a1
            a1 = step / span
            L_ref[hit] += nh * step
            # per-event quantities
            rep = np.repeat(np.arange(hit.size, dtype=np.int32), nh)
            j = np.arange(rep.size, dtype=np.int32) - np.repeat(np.cumsum(nh) - nh, nh) + 1
            frac = np.clip(a0[rep] + j * a1[rep], 0, 1)
            dt = times[s] - times[s - 1]
            dt_us = np.rint(frac * dt).astype(np.int32)
            # sort this step's events by time (radix sort when dt fits 16 bits); steps are
            # already in order, so the concatenation is time-sorted for every image
            o = np.argsort(dt_us.astype(np.uint16) if dt < 65536 else dt_us, kind="stable")
            idx = rep[o]
            yy, xx = np.divmod(pix, W)
            cols.append((bh.astype(np.int32)[idx], times[s - 1] + dt_us[o].astype(np.int64),
                         xx.astype(np.int16)[idx], yy.astype(np.int16)[idx], on.astype(np.uint8)[idx]))
        L_prev = L
    if not cols:
        e = np.empty(0, np.int64)
        return e.astype(np.int32), e, e.astype(np.int16), e.astype(np.int16), e.astype(np.uint8), (H, W)
    out = [np.concatenate(c) for c in zip(*cols, strict=False)]
    return (*out, (H, W))


def simulate_events(images: np.ndarray, cfg: SaccadeConfig = SaccadeConfig()) -> list[np.ndarray]:
    """Simulate each image of ``[B, h, w]``; returns one time-sorted event array per image."""
    b, t, x, y, p, _ = simulate_columns(images, cfg)
    order = np.argsort(b, kind="stable")  # keeps the time order within each image
    b, t, x, y, p = b[order], t[order], x[order], y[order], p[order]
    bounds = np.searchsorted(b, np.arange(len(images) + 1))
    return [make_events(t[i:j], x[i:j], y[i:j], p[i:j]) for i, j in zip(bounds[:-1], bounds[1:], strict=True)]


def simulate_frames(
    images: np.ndarray,
    T: int = 10,
    split_by: SplitBy = "number",
    cfg: SaccadeConfig = SaccadeConfig(),
    batch_size: int = 64,
) -> np.ndarray:
    """Simulate and integrate into frames: ``float32 [N, T, 2, h + margin, w + margin]``."""
    img = np.asarray(images, np.float32)
    out = np.empty((len(img), T, 2, img.shape[1] + cfg.margin, img.shape[2] + cfg.margin), np.float32)
    for a in range(0, len(img), batch_size):
        chunk = img[a:a + batch_size]
        b, t, x, y, p, size = simulate_columns(chunk, cfg)
        frames_from_columns(b, t, x, y, p, len(chunk), T, size, split_by, time_sorted=True,
                            out=out[a:a + len(chunk)])
    return out


def upsample(images: np.ndarray, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Bilinear resize ``[N, h, w]`` to ``size`` (used to turn 8x8 digits into 28x28 images)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.asarray(images, np.float32))[:, None]
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)[:, 0].clamp(0, 1).numpy()
