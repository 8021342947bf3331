"""Shared pieces: the :class:`DatasetSplit` container, data-root resolution and an ``.npz`` cache.

Data roots are resolved offline-first, in this order:

1. an explicit ``root`` argument (the folder itself, or a parent that holds ``<dirname>/``);
2. ``$SPIKEFORGE_DATA/<dirname>`` (and ``$SPIKEFORGE_DATA`` itself);
3. dataset-specific system locations (e.g. ``/usr/share/datasets/fashion-mnist`` from the
   Debian package ``dataset-fashion-mnist``);
4. ``~/spikeforge-data/<dirname>``.

The cache folder is ``$SPIKEFORGE_CACHE`` or ``~/.cache/spikeforge``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch

from .errors import CorruptFileError

__all__ = [
    "DatasetSplit",
    "Kind",
    "data_home",
    "cache_home",
    "candidate_dirs",
    "find_dir",
    "file_fingerprint",
    "settings_hash",
    "npz_cache",
    "read_npz",
    "NPZ_MAX_BYTES",
]

Kind = Literal["static", "events", "points"]


@dataclass
class DatasetSplit:
    """One split of a dataset held in memory.

    Attributes:
        x: batch-first float tensor: static ``[N, C, H, W]``, event frames ``[N, T, 2, H, W]``
            (channel 0 = OFF, 1 = ON), point clouds ``[N, 3, P]`` (``[N, 6, P]`` with normals).
        y: ``torch.long`` labels ``[N]``.
        num_classes: number of classes of the dataset (not only those present in ``y``).
        kind: ``'static'``, ``'events'`` or ``'points'``.
        classes: class names, index = label.
        name: registered dataset name.
        source: where the samples came from (folder, file, or ``'sklearn.datasets.load_digits'``).
        meta: extra facts (normalisation mean/std, T, split_by, simulated=True, ...).
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    kind: Kind
    classes: list[str]
    name: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}")
        if self.y.dtype != torch.long:
            self.y = self.y.long()

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def tensor_dataset(self) -> torch.utils.data.TensorDataset:
        """``TensorDataset(x, y)`` for use with a ``DataLoader``."""
        return torch.utils.data.TensorDataset(self.x, self.y)

    def class_counts(self) -> dict[str, int]:
        counts = torch.bincount(self.y, minlength=self.num_classes).tolist()
        return {c: int(n) for c, n in zip(self.classes, counts, strict=False)}


def data_home() -> Path | None:
    """``$SPIKEFORGE_DATA`` as a path, or ``None`` when unset."""
    env = os.environ.get("SPIKEFORGE_DATA")
    return Path(env).expanduser() if env else None


def cache_home() -> Path:
    """``$SPIKEFORGE_CACHE`` or ``~/.cache/spikeforge``."""
    env = os.environ.get("SPIKEFORGE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "spikeforge"


def candidate_dirs(
    dirnames: Sequence[str], root: str | os.PathLike[str] | None, system: Iterable[str] = ()
) -> list[Path]:
    """Folders to search, in priority order (see module docstring)."""
    out: list[Path] = []
    if root is not None:
        r = Path(root).expanduser()
        out.append(r)
        out += [r / d for d in dirnames]
        return out  # an explicit root is never second-guessed
    home = data_home()
    if home is not None:
        out += [home / d for d in dirnames]
        out.append(home)
    out += [Path(s) for s in system]
    out += [Path.home() / "spikeforge-data" / d for d in dirnames]
    return out


def find_dir(candidates: Iterable[Path], accept: Callable[[Path], bool]) -> Path | None:
    """First candidate folder for which ``accept(folder)`` is true."""
    for c in candidates:
        try:
            if c.is_dir() and accept(c):
                return c
        except OSError:
            continue
    return None


def file_fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Absolute path, size and mtime (ns) of a file: the cache key of its derived data."""
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def settings_hash(settings: Any) -> str:
    """Stable SHA-256 (hex, 24 chars) of a JSON-serialisable settings object."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def npz_cache(
    cache_dir: str | os.PathLike[str] | None,
    key: Any,
    compute: Callable[[], dict[str, np.ndarray]],
    prefix: str = "cache",
    check: Callable[[dict[str, np.ndarray]], bool] | None = None,
) -> dict[str, np.ndarray]:
    """Return ``compute()`` through an ``.npz`` file named by ``settings_hash(key)``.

    ``cache_dir=None`` disables caching. A cache file that cannot be read with :func:`read_npz`
    (or fails ``check``) is recomputed and overwritten; writes are atomic (temp file + rename)
    so parallel workers never see half files.
    """
    if cache_dir is None:
        return compute()
    d = Path(cache_dir).expanduser()
    path = d / f"{prefix}-{settings_hash(key)}.npz"
    if path.exists():
        try:
            cached = read_npz(path)
            if check is None or check(cached):
                return cached
        except CorruptFileError:
            pass  # stale/corrupt cache entry: recompute below
    arrays = compute()
    d.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".npz.tmp")
    os.close(fd)
    try:
        # typed Any: mypy would match **dict[str, ndarray] against savez's own `allow_pickle: bool` keyword
        named_arrays: dict[str, Any] = arrays
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **named_arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return arrays


#: Largest decompressed ``.npz`` :func:`read_npz` loads.
NPZ_MAX_BYTES = 1 << 34


def read_npz(path: str | os.PathLike[str], max_bytes: int = NPZ_MAX_BYTES) -> dict[str, np.ndarray]:
    """Load an ``.npz`` of plain (non-object) arrays, checking every size before allocating.

    Each member's ``.npy`` header is read first; its declared size must match the member's size in
    the zip directory, the sum must stay under ``max_bytes`` and a compressed member cannot
    declare more than deflate's 1032:1 expansion. Anything else raises :class:`CorruptFileError`.
    """
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as z:
            infos = z.infolist()
            total = sum(i.file_size for i in infos)
            if total > max_bytes:
                raise CorruptFileError(p, f"members declare {total} bytes, above max_bytes={max_bytes}")
            out: dict[str, np.ndarray] = {}
            for info in infos:
                if not info.filename.endswith(".npy"):
                    raise CorruptFileError(p, f"member {info.filename!r} is not a .npy array")
                if info.compress_type != zipfile.ZIP_STORED and info.file_size > 1032 * info.compress_size + (1 << 16):
                    raise CorruptFileError(p, f"member {info.filename!r} declares {info.file_size} bytes from "
                                              f"{info.compress_size} compressed (more than deflate can expand)")
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version in ((2, 0), (3, 0)):
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise CorruptFileError(p, f"member {info.filename!r} has .npy version {version}")
                    if dtype.hasobject or dtype.itemsize == 0:
                        raise CorruptFileError(p, f"member {info.filename!r} has dtype {dtype} (plain numbers only)")
                    n = int(np.prod(shape, dtype=object)) * dtype.itemsize
                    if n != info.file_size - f.tell():
                        raise CorruptFileError(p, f"member {info.filename!r}: shape {shape} of {dtype} needs {n} "
                                                  f"bytes, the member holds {info.file_size - f.tell()}")
                    buf = np.empty(n, np.uint8)
                    view, got, stream = buf.data, 0, cast(Any, f)  # zipfile's stream has readinto
                    while got < n:
                        k = stream.readinto(view[got:])
                        if not k:
                            raise CorruptFileError(p, f"member {info.filename!r} is truncated")
                        got += k
                out[info.filename[:-4]] = buf.view(dtype).reshape(shape, order="F" if fortran else "C")
            return out
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, KeyError, zlib.error,
            NotImplementedError, RuntimeError, UnicodeDecodeError, SyntaxError, TypeError, RecursionError) as e:
        if isinstance(e, CorruptFileError):
            raise
        raise CorruptFileError(p, f"not a readable .npz ({type(e).__name__}: {e})") from None
