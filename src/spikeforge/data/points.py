"""Point clouds: ModelNet readers (resampled ``.txt`` and ``.off`` meshes), farthest-point
sampling, unit-sphere normalisation, PointNet augmentations and image-to-point-cloud conversion.

Formats
-------
``modelnet40_normal_resampled`` (PointNet++ release): ``<root>/<class>/<class>_0001.txt``, one
point per line ``x,y,z,nx,ny,nz`` (10,000 points); ``modelnet40_shape_names.txt`` (one class
per line, label = line index), ``modelnet40_train.txt`` / ``modelnet40_test.txt`` (one sample
id per line, e.g. ``night_stand_0001``; class = id without the trailing ``_NNNN``). ModelNet10
uses the same folder with ``modelnet10_*.txt`` files.

OFF (Object File Format): first token ``OFF`` (the original ModelNet files sometimes glue the
counts to it, ``OFF490 518 0``), ``#`` comments, then ``n_vertices n_faces n_edges``, the vertex
coordinates and faces ``k i_1 ... i_k`` (polygons are fan-triangulated).

Surface sampling picks triangles with probability proportional to their area and samples
uniformly inside with barycentric coordinates ``u = 1 - sqrt(r1)``, ``v = sqrt(r1) (1 - r2)``,
``w = sqrt(r1) r2`` (Osada et al. 2002).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from .errors import CorruptFileError, DatasetNotFoundError

__all__ = [
    "read_modelnet_txt",
    "read_off",
    "write_off",
    "sample_surface",
    "farthest_point_sample",
    "normalize_unit_sphere",
    "random_scale",
    "random_shift",
    "random_point_dropout",
    "images_to_points",
    "modelnet_layout",
    "load_modelnet",
]


# ------------------------------------------------------------------------------------- readers
#: Largest text file the point-cloud readers accept (a ModelNet ``.off`` is at most a few MB).
TEXT_MAX_BYTES = 1 << 28


def _read_text(p: Path, max_bytes: int) -> str:
    if not p.is_file():
        raise DatasetNotFoundError(p.name, [p])
    size = p.stat().st_size
    if size > max_bytes:
        raise CorruptFileError(p, f"{size} bytes is above the limit max_bytes={max_bytes}")
    return p.read_text(encoding="ascii", errors="replace")


def _finite(p: Path, a: np.ndarray, what: str) -> np.ndarray:
    bad = ~np.isfinite(a)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise CorruptFileError(p, f"{what} {row} has a non-finite coordinate {a[row].tolist()} "
                                  "(NaN/Inf, or beyond the float32 range)")
    return a


def read_modelnet_txt(path: str | os.PathLike[str], max_bytes: int = TEXT_MAX_BYTES) -> np.ndarray:
    """Read a resampled ModelNet ``.txt`` file: float32 ``[N, 6]`` (xyz + normals).

    Every line must hold the same number (3 or 6) of comma-separated finite numbers."""
    p = Path(path)
    text = _read_text(p, max_bytes)
    rows = [r for r in text.splitlines() if r.strip()]
    if not rows:
        raise CorruptFileError(p, "file holds no points")
    ncol = rows[0].count(",") + 1
    odd = next((i for i, r in enumerate(rows) if r.count(",") + 1 != ncol), None)
    if ncol not in (3, 6) or odd is not None:
        where = f"line {odd + 1} has {rows[odd].count(',') + 1}" if odd is not None else f"the first line has {ncol}"
        raise CorruptFileError(p, f"expected lines of 3 or 6 comma-separated numbers; {where} columns")
    with np.errstate(over="ignore"):
        try:
            vals = np.array(" ".join(rows).replace(",", " ").split(), dtype=np.float32)
        except ValueError as e:
            raise CorruptFileError(p, f"non-numeric value ({e})") from None
    if vals.size != len(rows) * ncol:
        raise CorruptFileError(p, f"expected {len(rows)} lines of {ncol} comma-separated numbers, "
                                  f"got {vals.size} numbers")
    return _finite(p, vals.reshape(len(rows), ncol), "point")


def read_off(path: str | os.PathLike[str], max_bytes: int = TEXT_MAX_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """Parse an OFF mesh: vertices float32 ``[V, 3]`` and triangles int64 ``[F, 3]``.

    Vertex coordinates must be finite and every face index in ``[0, V)``."""
    p = Path(path)
    lines = []
    for raw in _read_text(p, max_bytes).splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    if not lines or not lines[0].upper().startswith("OFF"):
        got = lines[0][:20] if lines else "nothing"
        raise CorruptFileError(p, f"first token must be 'OFF', got {got!r}", 0)
    rest = lines[0][3:].strip()  # 'OFF490 518 0' or 'OFF'
    li = 1
    if not rest:
        if len(lines) < 2:
            raise CorruptFileError(p, "missing vertex/face counts line")
        rest, li = lines[1], 2
    m = re.match(r"^(\d{1,12})\s+(\d{1,12})(?:\s+(\d{1,12}))?\s*$", rest, flags=re.ASCII)
    if not m:
        raise CorruptFileError(p, f"bad counts line {rest[:40]!r}, expected 'n_vertices n_faces n_edges'")
    nv, nf = int(m.group(1)), int(m.group(2))
    if len(lines) < li + nv + nf:
        raise CorruptFileError(p, f"header announces {nv} vertices and {nf} faces, "
                                  f"file has only {len(lines) - li} data lines")
    vrows = [ln.split()[:3] for ln in lines[li:li + nv]]
    short = next((i for i, r in enumerate(vrows) if len(r) != 3), None)
    if short is not None:
        raise CorruptFileError(p, f"vertex {short} has {len(vrows[short])} coordinates, expected 3")
    with np.errstate(over="ignore"):
        try:
            verts = np.array(vrows, dtype=np.float32).reshape(nv, 3)
        except ValueError as e:
            raise CorruptFileError(p, f"bad vertex line ({e})") from None
    _finite(p, verts, "vertex")
    tris: list[list[int]] = []
    for ln in lines[li + nv:li + nv + nf]:
        try:
            tok = [int(v) for v in ln.split()]
        except ValueError:
            raise CorruptFileError(p, f"bad face line {ln[:40]!r}") from None
        k = tok[0] if tok else 0
        idx = tok[1:1 + k]
        if k < 3 or len(idx) != k:
            raise CorruptFileError(p, f"face line {ln[:40]!r} does not list {k} >= 3 vertex indices")
        if min(idx) < 0 or max(idx) >= nv:  # Python ints: 10**20 is caught here, not as an int64 overflow
            raise CorruptFileError(p, f"face line {ln[:40]!r}: vertex index out of range [0, {nv})")
        tris += [[idx[0], idx[i], idx[i + 1]] for i in range(1, k - 1)]  # fan triangulation
    faces = np.asarray(tris, dtype=np.int64).reshape(-1, 3)
    return verts, faces


def write_off(path: str | os.PathLike[str], vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Write a triangle mesh as OFF."""
    out = [f"OFF\n{len(vertices)} {len(faces)} 0"]
    out += [" ".join(f"{v:.6g}" for v in row) for row in np.asarray(vertices)]
    out += [f"{len(f)} " + " ".join(str(int(i)) for i in f) for f in np.asarray(faces)]
    p = Path(path)
    p.write_text("\n".join(out) + "\n")
    return p


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int,
                   rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Sample ``n`` points uniformly on the mesh surface (area-weighted, barycentric)."""
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    v = np.asarray(vertices, np.float64)
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    if len(faces) == 0 or area.sum() <= 0:
        raise ValueError("mesh has no surface area to sample")
    f = g.choice(len(faces), size=n, p=area / area.sum())
    r1, r2 = g.random((n, 1)), g.random((n, 1))
    s1 = np.sqrt(r1)
    pts = (1 - s1) * a[f] + s1 * (1 - r2) * b[f] + s1 * r2 * c[f]
    return pts.astype(np.float32)


# ----------------------------------------------------------------------------------- geometry
def farthest_point_sample(points: torch.Tensor, m: int, start: torch.Tensor | int | None = 0) -> torch.Tensor:
    """Batched farthest-point sampling.

    Args:
        points: ``[B, N, D]`` (only the coordinates used for distances; pass xyz).
        m: number of points to select (``m <= N``).
        start: index of the first point, per batch ``[B]`` or one int; ``None`` = random.
    Returns:
        ``long [B, m]`` indices; each new point maximises the distance to the selected set.
    """
    if points.dim() != 3:
        raise ValueError(f"expected [B, N, D], got {tuple(points.shape)}")
    B, N, _ = points.shape
    if not 0 < m <= N:
        raise ValueError(f"m must be in [1, {N}], got {m}")
    dev = points.device
    idx = torch.empty(B, m, dtype=torch.long, device=dev)
    dist = torch.full((B, N), float("inf"), device=dev, dtype=points.dtype)
    if start is None:
        cur = torch.randint(0, N, (B,), device=dev)
    elif isinstance(start, int):
        cur = torch.full((B,), start, dtype=torch.long, device=dev)
    else:
        cur = start.to(dev).long()
    ar = torch.arange(B, device=dev)
    for i in range(m):
        idx[:, i] = cur
        d = ((points - points[ar, cur][:, None]) ** 2).sum(-1)
        dist = torch.minimum(dist, d)
        cur = dist.argmax(dim=1)
    return idx


def normalize_unit_sphere(points: torch.Tensor) -> torch.Tensor:
    """Centre ``[..., N, 3+]`` clouds on their centroid and scale xyz by the max norm (-> unit ball).

    Columns beyond the first three (normals) are left unchanged.
    """
    xyz = points[..., :3]
    xyz = xyz - xyz.mean(dim=-2, keepdim=True)
    scale = xyz.norm(dim=-1).amax(dim=-1, keepdim=True)[..., None].clamp_min(1e-12)
    return torch.cat([xyz / scale, points[..., 3:]], dim=-1)


def _gen(generator: torch.Generator | None) -> dict:
    return {"generator": generator} if generator is not None else {}


def random_scale(points: torch.Tensor, low: float = 0.8, high: float = 1.25,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Multiply xyz of each cloud in ``[B, N, 3+]`` by one factor ~ U(low, high) (PointNet++)."""
    s = torch.rand(points.shape[0], 1, 1, **_gen(generator)).to(points) * (high - low) + low
    return torch.cat([points[..., :3] * s, points[..., 3:]], dim=-1)


def random_shift(points: torch.Tensor, shift: float = 0.1,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Add one offset ~ U(-shift, shift)^3 to each cloud of ``[B, N, 3+]``."""
    o = (torch.rand(points.shape[0], 1, 3, **_gen(generator)).to(points) * 2 - 1) * shift
    return torch.cat([points[..., :3] + o, points[..., 3:]], dim=-1)


def random_point_dropout(points: torch.Tensor, max_ratio: float = 0.875,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """PointNet++ dropout on ``[B, N, C]``: per cloud draw ``r ~ U(0, max_ratio)``, drop each point
    with probability ``r`` and overwrite dropped points with the cloud's first point (so N stays)."""
    B, N = points.shape[:2]
    r = torch.rand(B, 1, **_gen(generator)) * max_ratio
    drop = (torch.rand(B, N, **_gen(generator)) <= r).to(points.device)
    first = points[:, :1].expand_as(points)
    return torch.where(drop[..., None], first, points)


# ------------------------------------------------------------------------------ image -> points
def images_to_points(images: np.ndarray, n_points: int = 256, seed: int = 0) -> np.ndarray:
    """Turn grey images ``[N, H, W]`` into 2-D-in-3-D clouds ``float32 [N, n_points, 3]``.

    PointNet++ MNIST protocol: pixel indices are drawn with replacement with probability
    proportional to intensity, each point is jittered uniformly within its pixel, coordinates
    are mapped to ``x = 2 (col + u) / W - 1``, ``y = 1 - 2 (row + v) / H`` (so up is +y), z = 0.
    Blank images yield points spread uniformly. Deterministic for a given ``seed``.
    """
    img = np.asarray(images, np.float64)
    N, H, W = img.shape
    w = img.reshape(N, -1).clip(min=0)
    w[w.sum(1) == 0] = 1.0
    cdf = np.cumsum(w, axis=1)
    cdf /= cdf[:, -1:]
    g = np.random.default_rng(seed)
    u = g.random((N, n_points))
    off = np.arange(N)[:, None]
    # one flat searchsorted: row r's cdf lives in (r, r + 1]
    pix = np.searchsorted((cdf + off).ravel(), (u + off).ravel(), side="right").reshape(N, n_points)
    pix = np.minimum(pix - off * H * W, H * W - 1)
    row, col = np.divmod(pix, W)
    jit = g.random((N, n_points, 2))
    pts = np.zeros((N, n_points, 3), np.float32)
    pts[..., 0] = 2 * (col + jit[..., 0]) / W - 1
    pts[..., 1] = 1 - 2 * (row + jit[..., 1]) / H
    return pts


# ---------------------------------------------------------------------------------- ModelNet
def modelnet_layout(folder: Path, classes: int) -> str | None:
    """``'txt'`` for the resampled layout, ``'off'`` for ``<class>/{train,test}/*.off``, else None."""
    if (folder / f"modelnet{classes}_shape_names.txt").is_file():
        return "txt"
    subs = [d for d in folder.iterdir() if d.is_dir()] if folder.is_dir() else []
    if subs and any((d / "train").is_dir() for d in subs):
        return "off"
    return None


def _modelnet_index(folder: Path, classes: int, split: str) -> tuple[list[Path], np.ndarray, list[str]]:
    layout = modelnet_layout(folder, classes)
    if layout == "txt":
        names = [ln.strip() for ln in (folder / f"modelnet{classes}_shape_names.txt").read_text().splitlines()
                 if ln.strip()]
        list_file = folder / f"modelnet{classes}_{split}.txt"
        if not list_file.is_file():
            raise DatasetNotFoundError(f"modelnet{classes}", [list_file])
        ids = [ln.strip() for ln in list_file.read_text().splitlines() if ln.strip()]
        lookup = {n: i for i, n in enumerate(names)}
        files, labels = [], []
        for sid in ids:
            cls = sid.rsplit("_", 1)[0]
            if cls not in lookup:
                raise CorruptFileError(list_file, f"sample {sid!r} has class {cls!r} not in the shape names")
            files.append(folder / cls / f"{sid}.txt")
            labels.append(lookup[cls])
        return files, np.asarray(labels, np.int64), names
    if layout == "off":
        names = sorted(d.name for d in folder.iterdir() if (d / split).is_dir())
        files, labels = [], []
        for i, c in enumerate(names):
            fs = sorted((folder / c / split).glob("*.off"))
            files += fs
            labels += [i] * len(fs)
        return files, np.asarray(labels, np.int64), names
    raise DatasetNotFoundError(f"modelnet{classes}", [folder / f"modelnet{classes}_shape_names.txt",
                                                      folder / "<class>/train/*.off"])


def load_modelnet(
    folder: str | os.PathLike[str],
    classes: int,
    split: str,
    n_points: int = 1024,
    sampling: str = "first",
    normals: bool = False,
    limit: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load ModelNet{10,40}: clouds ``float32 [N, 3 or 6, n_points]``, labels, class names.

    ``sampling='first'`` keeps the first ``n_points`` points of each resampled file (PointNet++
    default), ``'fps'`` uses :func:`farthest_point_sample`. OFF meshes are always surface
    sampled (seeded per file index) and have no normals. Clouds are normalised to the unit ball.
    """
    if sampling not in ("first", "fps"):
        raise ValueError("sampling must be 'first' or 'fps'")
    files, labels, names = _modelnet_index(Path(folder), classes, split)
    if limit is not None:
        files, labels = files[:limit], labels[:limit]
    clouds = []
    for i, f in enumerate(files):
        if f.suffix == ".off":
            v, fc = read_off(f)
            pts = sample_surface(v, fc, n_points if sampling == "first" else 4 * n_points, rng=seed + i)
        else:
            pts = read_modelnet_txt(f)
            if not normals:
                pts = pts[:, :3]
        if normals and pts.shape[1] < 6:
            raise ValueError(f"{f} has no normals; use normals=False")
        t = torch.from_numpy(np.ascontiguousarray(pts))[None]
        if len(pts) < n_points:
            raise CorruptFileError(f, f"has {len(pts)} points, fewer than n_points={n_points}")
        if sampling == "fps":
            t = t[:, farthest_point_sample(t[..., :3], n_points)[0]]
        else:
            t = t[:, :n_points]
        clouds.append(normalize_unit_sphere(t)[0].T.numpy())
    c = 6 if normals else 3
    x = np.stack(clouds) if clouds else np.zeros((0, c, n_points), np.float32)
    return x.astype(np.float32), labels, names
