"""File indexing and loading for the real event-camera datasets (N-MNIST, CIFAR10-DVS,
DVS128 Gesture). Each loader returns frames ``float32 [N, T, 2, H, W]`` (channel 0 = OFF,
1 = ON) through the per-file ``.npz`` frame cache of :func:`~spikeforge.data.events.cached_frames`.

Layouts (as distributed by the dataset authors):

* **N-MNIST** (34x34): ``Train/<digit>/<id>.bin`` and ``Test/<digit>/<id>.bin``.
* **CIFAR10-DVS** (128x128): ``<class>/cifar10_<class>_<i>.aedat`` for the ten CIFAR-10 classes
  (1000 AEDAT 2.0 files each). No official split; we use SpikingJelly's
  ``split_to_train_test_set(0.9, ..., random_split=False)`` (the loader of the NeuroCLIP code,
  arXiv:2306.12073): per class, files in name order (as ``torchvision``'s ``DatasetFolder``
  lists them: ``..._0, _1, _10, _100, ...``), the first ``ceil(0.9 n)`` train, the rest test.
  ``resize=(48, 48)`` resamples the frames by nearest neighbour at pixel centres (the 48x48 input of
  the MPBN / Ternary Spike CIFAR10-DVS experiments).
* **DVS128 Gesture** (128x128): ``userXX_<lighting>.aedat`` (AEDAT 3.1) with
  ``userXX_<lighting>_labels.csv`` (header ``class,startTime_usec,endTime_usec``, classes
  1..11), and ``trials_to_train.txt`` / ``trials_to_test.txt`` listing the ``.aedat`` files.
  Each labelled segment ``[start, end)`` is one sample, label = class - 1.
"""

from __future__ import annotations

import math
import os
import re
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .base import cache_home, file_fingerprint, npz_cache
from .errors import CorruptFileError, DatasetNotFoundError
from .event_formats import read_events
from .events import SplitBy, cached_frames, denoise, events_to_frames

__all__ = [
    "NMNIST_SIZE", "CIFAR10DVS_SIZE", "GESTURE_SIZE", "CIFAR10DVS_CLASSES", "GESTURE_CLASSES",
    "nmnist_index", "cifar10dvs_index", "gesture_index", "load_frames", "load_gesture_frames", "resize_frames",
]

NMNIST_SIZE = (34, 34)
CIFAR10DVS_SIZE = (128, 128)
GESTURE_SIZE = (128, 128)
CIFAR10DVS_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"
]
GESTURE_CLASSES = [
    "hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
    "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise",
    "arm_roll", "air_drums", "air_guitar", "other_gestures",
]


def _natural_key(p: Path) -> tuple:
    return tuple(int(s) if s.isdigit() else s for s in re.split(r"(\d+)", p.name))


def nmnist_present(folder: Path) -> bool:
    return (folder / "Train").is_dir() and (folder / "Test").is_dir()


def nmnist_index(folder: Path, split: str) -> tuple[list[Path], np.ndarray]:
    """Files and labels of ``Train``/``Test`` ``/<digit>/*.bin``, in digit then natural order."""
    d = folder / ("Train" if split == "train" else "Test")
    if not d.is_dir():
        raise DatasetNotFoundError("nmnist", [d])
    files, labels = [], []
    for digit in range(10):
        fs = sorted((d / str(digit)).glob("*.bin"), key=_natural_key)
        files += fs
        labels += [digit] * len(fs)
    return files, np.asarray(labels, np.int64)


def cifar10dvs_present(folder: Path) -> bool:
    return any((folder / c).is_dir() for c in CIFAR10DVS_CLASSES)


def cifar10dvs_index(folder: Path, split: str, train_fraction: float = 0.9) -> tuple[list[Path], np.ndarray]:
    """Deterministic per-class split (SpikingJelly's ``split_to_train_test_set``, ``random_split=False``):
    files of each class folder sorted by name, the first ``ceil(train_fraction * n)`` train, the rest test."""
    files, labels = [], []
    for i, c in enumerate(CIFAR10DVS_CLASSES):
        fs = sorted((folder / c).glob("*.aedat"), key=lambda p: p.name)
        n_tr = math.ceil(len(fs) * train_fraction)
        sel = fs[:n_tr] if split == "train" else fs[n_tr:]
        files += sel
        labels += [i] * len(sel)
    return files, np.asarray(labels, np.int64)


def gesture_present(folder: Path) -> bool:
    return (folder / "trials_to_train.txt").is_file() and (folder / "trials_to_test.txt").is_file()


def read_gesture_labels(path: Path) -> np.ndarray:
    """Parse a ``*_labels.csv``: int64 ``[n, 3]`` rows ``(class 1..11, start_us, end_us)``."""
    if not path.is_file():
        raise DatasetNotFoundError(path.name, [path], "each .aedat trial needs its _labels.csv")
    rows = []
    for i, line in enumerate(path.read_text().splitlines()):
        line = line.strip()
        if not line or (i == 0 and not line[0].isdigit()):
            continue  # header 'class,startTime_usec,endTime_usec'
        parts = line.split(",")
        try:
            c, a, b = (int(float(v)) for v in parts[:3])
        except ValueError:
            raise CorruptFileError(path, f"line {i + 1} {line!r} is not 'class,start_us,end_us'") from None
        if not 1 <= c <= 11 or b <= a:
            raise CorruptFileError(path, f"line {i + 1}: class {c} outside 1..11 or end <= start")
        rows.append((c, a, b))
    return np.asarray(rows, np.int64).reshape(-1, 3)


def gesture_index(folder: Path, split: str) -> tuple[list[Path], list[np.ndarray]]:
    """Trial files of a split and their label tables."""
    lst = folder / f"trials_to_{split}.txt"
    if not lst.is_file():
        raise DatasetNotFoundError("dvs-gesture", [lst])
    files = [folder / ln.strip() for ln in lst.read_text().splitlines() if ln.strip()]
    tables = [read_gesture_labels(f.with_name(f.stem + "_labels.csv")) for f in files]
    return files, tables


def resolve_cache(cache_dir: str | os.PathLike[str] | None) -> Path | None:
    """``'auto'`` -> ``$SPIKEFORGE_CACHE/event-frames`` (default ``~/.cache/spikeforge``); ``None`` = off."""
    if cache_dir is None:
        return None
    if str(cache_dir) == "auto":
        return cache_home() / "event-frames"
    return Path(cache_dir)


def _denoise_pre(window: int | None, size: tuple[int, int]):
    return None if not window else partial(denoise, time_window=int(window), size=size)


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resampling of ``[..., H, W]`` to ``size`` at pixel centres:
    ``out[i, j] = x[floor((i + 0.5) H / h), floor((j + 0.5) W / w)]`` (counts are not interpolated)."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    t = torch.from_numpy(np.ascontiguousarray(frames, np.float32))
    lead = t.shape[:-2]
    out = F.interpolate(t.reshape(1, -1, *t.shape[-2:]), size=tuple(size), mode="nearest-exact")
    return out.reshape(*lead, *size).numpy()


def load_frames(
    files: list[Path], T: int, size: tuple[int, int], split_by: SplitBy,
    cache_dir: str | os.PathLike[str] | None, denoise_us: int | None = None,
    resize: tuple[int, int] | None = None,
) -> np.ndarray:
    """Frames of one recording per file: ``[len(files), T, 2, H, W]`` (``resize`` -> ``[.., *resize]``,
    resized file by file so the full-size frames of the whole split are never held at once)."""
    out_size = (int(resize[0]), int(resize[1])) if resize is not None else size
    out = np.zeros((len(files), T, 2, *out_size), np.float32)
    cache_dir = resolve_cache(cache_dir)
    pre = _denoise_pre(denoise_us, size)
    for i, f in enumerate(files):
        fr = cached_frames(f, T, size, split_by, cache_dir=cache_dir, preprocess=pre,
                           preprocess_key={"denoise_us": denoise_us} if pre else None)
        out[i] = fr if resize is None else resize_frames(fr, out_size)
    return out


def load_gesture_frames(
    files: list[Path], tables: list[np.ndarray], T: int, split_by: SplitBy,
    cache_dir: str | os.PathLike[str] | None, denoise_us: int | None = None, limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames and labels of every labelled segment of the given trials (in file, row order)."""
    frames, labels = [], []
    cache_dir = resolve_cache(cache_dir)
    pre = _denoise_pre(denoise_us, GESTURE_SIZE)
    n = 0
    for f, tab in zip(files, tables, strict=True):
        if limit is not None and n >= limit:
            break
        tab = tab if limit is None else tab[: limit - n]

        def compute(f: Path = f, tab: np.ndarray = tab) -> dict[str, np.ndarray]:
            ev = read_events(f)
            if pre is not None:
                ev = pre(ev)
            fr = [events_to_frames(ev[(ev["t"] >= a) & (ev["t"] < b)], T, GESTURE_SIZE, split_by)
                  for _, a, b in tab]
            return {"frames": np.stack(fr) if fr else np.zeros((0, T, 2, *GESTURE_SIZE), np.float32)}

        key = {"v": 1, "src": file_fingerprint(f), "rows": tab.tolist(), "T": T, "split_by": split_by,
               "denoise_us": denoise_us}
        frames.append(npz_cache(cache_dir, key, compute, prefix=f"gesture-{f.stem}")["frames"])
        labels.append(tab[:, 0] - 1)
        n += len(tab)
    if not frames:
        return np.zeros((0, T, 2, *GESTURE_SIZE), np.float32), np.zeros(0, np.int64)
    return np.concatenate(frames), np.concatenate(labels).astype(np.int64)
