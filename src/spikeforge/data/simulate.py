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
from .events import SplitBy, bin_events

__all__ = ["SaccadeConfig", "simulate_events", "simulate_frames", "simulate_columns", "upsample"]


@dataclass(frozen=True)
class SaccadeConfig:
    """Simulator settings (defaults give 34x34 recordings of 28x28 images like N-MNIST)."""

    margin: int = 6
    threshold: float = 0.15
    mismatch: float = 0.0
    steps_per_saccade: int = 12
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
    """Bilinear placement of ``img [B, h, w]`` with top-left at (ox, oy) on a ``[B, H, W]`` canvas
    (zero outside the image): the sum of four integer shifts weighted by the fractional parts."""
    B, h, w = img.shape
    ix, iy = int(np.floor(ox)), int(np.floor(oy))
    fx, fy = np.float32(ox - ix), np.float32(oy - iy)
    canvas = np.zeros((B, H, W), np.float32)
    for dy, dx, wt in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        if wt == 0:
            continue
        y0, x0 = iy + dy, ix + dx  # where img[0, 0] lands
        cy0, cx0, cy1, cx1 = max(y0, 0), max(x0, 0), min(y0 + h, H), min(x0 + w, W)
        if cy1 <= cy0 or cx1 <= cx0:
            continue
        canvas[:, cy0:cy1, cx0:cx1] += wt * img[:, cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    return canvas


def _thresholds(cfg: SaccadeConfig, H: int, W: int) -> np.ndarray:
    c = np.full((H, W), cfg.threshold, np.float32)
    if cfg.mismatch > 0:
        rng = np.random.default_rng(cfg.seed)
        c = c * (1 + cfg.mismatch * rng.standard_normal((H, W))).astype(np.float32)
        c = np.maximum(c, 0.2 * cfg.threshold)
    return c


def _simulate_raw(images: np.ndarray, cfg: SaccadeConfig):
    """Core loop. Returns ``(flat, t, p, (H, W))`` with ``flat = image * H * W + y * W + x``
    (int32/int64), ``t`` int64 us and ``p`` uint8, in time order (ties keep pixel order)."""
    img = np.asarray(images, np.float32)
    if img.ndim != 3:
        raise ValueError(f"expected images [B, h, w], got shape {img.shape}")
    B, h, w = img.shape
    H, W = h + cfg.margin, w + cfg.margin
    HW = H * W
    C = _thresholds(cfg, H, W)
    inv_c = (1.0 / C).reshape(-1)
    c_flat = C.reshape(-1)
    pos, times = _path(cfg)
    it = np.int32 if B * HW < 2**31 else np.int64
    tt = np.int32 if times[-1] < 2**31 else np.int64
    eps = np.float32(cfg.log_eps)
    L_prev = np.log(_render(img, pos[0, 0], pos[0, 1], H, W) + eps).reshape(-1)
    L_ref = L_prev.copy()
    cols: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for s in range(1, len(times)):
        L = np.log(_render(img, pos[s, 0], pos[s, 1], H, W) + eps).reshape(-1)
        d = L - L_ref
        hit = np.flatnonzero(np.abs(d).reshape(B, HW) >= c_flat).astype(it)
        if not hit.size:
            L_prev = L
            continue
        # per-pixel quantities (one entry per pixel that fires in this step)
        pix = hit % HW
        dh = d[hit]
        nh = (np.abs(dh) * inv_c[pix]).astype(np.int32)  # floor(|d| / C_px) >= 1
        np.maximum(nh, 1, out=nh)  # guard the rounding of 1/C
        on = dh > 0
        step = np.where(on, c_flat[pix], -c_flat[pix])
        l0 = L_prev[hit]
        span = L[hit] - l0
        span[span == 0] = 1
        dt = times[s] - times[s - 1]
        a0 = (L_ref[hit] - l0) / span * dt  # crossing j happens at (a0 + j * a1) us into the step
        a1 = step / span * dt
        L_ref[hit] += nh * step
        # per-event quantities
        rep = np.repeat(np.arange(hit.size, dtype=np.int32), nh)
        j = np.arange(rep.size, dtype=np.int32) - np.repeat(np.cumsum(nh) - nh, nh) + 1
        dt_us = np.rint(np.clip(a0[rep] + j * a1[rep], 0, dt)).astype(tt)
        # sort this step's events by time (radix sort when dt fits 16 bits); steps are
        # already in order, so the concatenation is time-sorted for every image
        o = np.argsort(dt_us.astype(np.uint16) if dt < 65536 else dt_us, kind="stable")
        idx = rep[o]
        dt_us = dt_us[o]
        dt_us += tt(times[s - 1])
        cols.append((hit[idx], dt_us, on.view(np.uint8)[idx]))
        L_prev = L
    if not cols:
        return np.empty(0, it), np.empty(0, np.int64), np.empty(0, np.uint8), (H, W)
    flat, t, p = (np.concatenate(c) for c in zip(*cols, strict=True))
    return flat, t.astype(np.int64), p, (H, W)


def simulate_columns(images: np.ndarray, cfg: SaccadeConfig = SaccadeConfig()):
    """Simulate a batch ``images [B, h, w]`` (values in [0, 1]).

    Returns ``(sample, t, x, y, p, (H, W))``: event columns with the index of the source image
    (sorted by time, not by sample; ties in time keep pixel order), and the sensor size.
    """
    flat, t, p, (H, W) = _simulate_raw(images, cfg)
    b, pix = np.divmod(flat, H * W)
    y, x = np.divmod(pix, W)
    return b.astype(np.int32), t, x.astype(np.int16), y.astype(np.int16), p, (H, W)


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
        flat, t, p, (H, W) = _simulate_raw(chunk, cfg)
        b, pix = np.divmod(flat, H * W)
        bin_events(b, t, pix, p, len(chunk), T, H * W, split_by, time_sorted=True, out=out[a:a + len(chunk)])
    return out


def upsample(images: np.ndarray, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Bilinear resize ``[N, h, w]`` to ``size`` (used to turn 8x8 digits into 28x28 images)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.asarray(images, np.float32))[:, None]
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)[:, 0].clamp(0, 1).numpy()


def benchmark(
    n: int = 2048, source: str = "digits", T: int = 10, root: str | None = None
) -> dict[str, float]:
    """Throughput of :func:`simulate_frames` on ``n`` 28x28 images (after one warm-up).

    Returns ``{'images_per_s': wall-clock rate, 'images_per_cpu_s': rate per CPU second of this
    process}``; the second is the fair number on a shared machine.

    ``source='digits'`` uses the embedded digits upsampled to 28x28 (repeated to ``n``);
    ``'fashion-mnist'`` reads the Fashion-MNIST test images from ``root`` or the default location.
    """
    import time

    from . import static

    if source == "digits":
        x, _ = static.load_digits_split("train")
        imgs = upsample(np.resize(x[:, 0], (n, 8, 8)), (28, 28))
    elif source == "fashion-mnist":
        from .base import candidate_dirs, find_dir

        folder = find_dir(candidate_dirs(("fashion-mnist",), root, ("/usr/share/datasets/fashion-mnist",)),
                          static.idx_present)
        if folder is None:
            raise FileNotFoundError("Fashion-MNIST IDX files not found; pass root=")
        imgs = static.load_idx_split(folder, "test")[0][:n, 0]
    else:
        raise ValueError("source must be 'digits' or 'fashion-mnist'")
    simulate_frames(imgs[:64], T)
    t0, c0 = time.perf_counter(), time.process_time()
    simulate_frames(imgs, T)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"images_per_s": len(imgs) / wall, "images_per_cpu_s": len(imgs) / cpu}

