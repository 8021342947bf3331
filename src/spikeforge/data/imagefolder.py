"""ImageNet-style image folders streamed from disk (never held in memory).

Layout: ``root/train/<class>/<image>`` and ``root/val/<class>/<image>`` (``root/test/...`` is accepted
instead of ``val``). A *flat* validation folder ``root/val/<image>`` is accepted only together with the
Kaggle ImageNet ground-truth file ``LOC_val_solution.csv`` (``ImageId,PredictionString``; the first token
of the prediction string is the class folder name) in ``root`` or ``root/val``; otherwise the loader
refuses it with an error that says how to arrange the files.

Per-sample transforms (decoded with Pillow, Krizhevsky et al. 2012 / He et al. 2016 ImageNet protocol,
docs/methods/ternary_spike.md):

* training: RandomResizedCrop(224) - area fraction ``s ~ U(0.08, 1)``, log aspect ratio
  ``~ U(log 3/4, log 4/3)``, crop ``w = round(sqrt(s A r))``, ``h = round(sqrt(s A / r))`` at a uniform
  position, up to 10 attempts, then the central crop clamped to the ratio range; resized bilinearly to
  224 x 224. The horizontal flip is a batch augmentation (``data.augment.hflip``), applied on the device.
* evaluation: Resize(256) of the shorter side (the longer side ``int(256 * long / short)``), then
  CenterCrop(224) at ``(round((H - 224) / 2), round((W - 224) / 2))``.
* both: ``x / 255`` then ``(x - mean) / std`` with the ImageNet channel statistics.

Randomness is a pure function of a per-sample seed that the sampler sends with each index
(:func:`sample_seed`), so results do not depend on the number of loader workers or on which worker
decodes which image, and a resumed run replays the same crops.
"""

from __future__ import annotations

import csv
import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import CorruptFileError, DatasetNotFoundError, MissingDependencyError

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "index_imagenet", "imagenet_present", "random_resized_crop_box",
    "resize_shorter_size", "center_crop_box", "sample_seed", "ImageFolderStream", "LazyImages", "StreamingSplit",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
_VAL_NAMES = ("val", "test")
_SOLUTION = "LOC_val_solution.csv"


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is in the dev env
        raise MissingDependencyError("pillow", "reading image folders (pip install 'spikeforge[images]')") from None
    return Image


# ------------------------------------------------------------------------------------------------- layout
def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in _EXTENSIONS and p.is_file())


def _class_dirs(folder: Path) -> list[str]:
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _val_dir(root: Path) -> Path | None:
    for name in _VAL_NAMES:
        if (root / name).is_dir():
            return root / name
    return None


def imagenet_present(root: Path) -> bool:
    """True when ``root`` holds ``train/`` with class folders and a ``val/`` (or ``test/``) folder."""
    return (root / "train").is_dir() and _val_dir(root) is not None


def _flat_val_labels(root: Path, val: Path, classes: list[str]) -> tuple[list[Path], np.ndarray]:
    sol = next((p for p in (root / _SOLUTION, val / _SOLUTION) if p.is_file()), None)
    if sol is None:
        raise DatasetNotFoundError(
            "imagenet", [val / "<class>", root / _SOLUTION],
            f"{val} holds images directly but no class folders, and there is no {_SOLUTION} to label them. "
            f"Either move each validation image into {val}/<class>/ (the class folder names of train/), or put "
            f"the Kaggle ground truth file {_SOLUTION} (ImageId,PredictionString) in {root}")
    index = {c: i for i, c in enumerate(classes)}
    by_stem = {p.stem: p for p in _images_in(val) if p.parent == val}
    files: list[Path] = []
    labels: list[int] = []
    with sol.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
            raise CorruptFileError(sol, f"header must be 'ImageId,PredictionString', got {header!r}", 0)
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 2 or not row[1].split():
                raise CorruptFileError(sol, f"line {line}: expected 'ImageId,<class> ...', got {row!r}")
            image_id, wnid = row[0].strip(), row[1].split()[0]
            if wnid not in index:
                raise CorruptFileError(sol, f"line {line}: class {wnid!r} of {image_id} is not a folder of train/")
            if image_id not in by_stem:
                raise DatasetNotFoundError("imagenet", [val / f"{image_id}.JPEG"],
                                           f"{sol.name} line {line} names an image that is not in {val}")
            files.append(by_stem[image_id])
            labels.append(index[wnid])
    order = sorted(range(len(files)), key=lambda k: files[k].name)
    return [files[k] for k in order], np.asarray([labels[k] for k in order], np.int64)


def index_imagenet(root: str | os.PathLike[str], split: str) -> tuple[list[Path], np.ndarray, list[str]]:
    """Files, labels and class names of one split; classes are the sorted folder names of ``train/``.

    ``split`` is ``'train'`` or ``'test'`` (the ``val/`` folder). Files are sorted per class by path.
    """
    r = Path(root)
    train = r / "train"
    val = _val_dir(r)
    if not train.is_dir() or val is None:
        raise DatasetNotFoundError("imagenet", [train, r / "val"],
                                   "expected <root>/train/<class>/<image> and <root>/val/<class>/<image>")
    classes = _class_dirs(train)
    if not classes:
        raise DatasetNotFoundError("imagenet", [train / "<class>"], f"{train} has no class folders")
    if split == "train":
        folder, names = train, classes
    elif split == "test":
        folder, names = val, _class_dirs(val)
        if not names:
            flat_files, flat_labels = _flat_val_labels(r, val, classes)
            if not flat_files:
                raise DatasetNotFoundError("imagenet", [val], "no validation images listed")
            return flat_files, flat_labels, classes
        extra = sorted(set(names) - set(classes))
        if extra:
            raise DatasetNotFoundError("imagenet", [train / extra[0]],
                                       f"{val} has class folders missing from train/: {extra[:5]}")
    else:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    index = {c: i for i, c in enumerate(classes)}
    files: list[Path] = []
    labels: list[int] = []
    for c in names:
        fs = _images_in(folder / c)
        files += fs
        labels += [index[c]] * len(fs)
    if not files:
        raise DatasetNotFoundError("imagenet", [folder / names[0]], f"no images ({', '.join(_EXTENSIONS)}) found")
    return files, np.asarray(labels, np.int64), classes


# --------------------------------------------------------------------------------------------- geometry
def random_resized_crop_box(rng: random.Random, height: int, width: int,
                            scale: Sequence[float] = (0.08, 1.0),
                            ratio: Sequence[float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a RandomResizedCrop (Szegedy et al. 2015, the Inception crop).

    Up to 10 draws of area fraction ``s ~ U(scale)`` and ``log r ~ U(log ratio)``; the first with
    ``0 < w <= width`` and ``0 < h <= height`` is placed uniformly. Fallback: the whole image cropped
    centrally to the nearest aspect ratio inside ``ratio``.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def resize_shorter_size(height: int, width: int, size: int) -> tuple[int, int]:
    """``(H', W')`` with the shorter side ``size`` and the longer ``int(size * long / short)``."""
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


def center_crop_box(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a central ``size x size`` crop (``round((H - size) / 2)``)."""
    if size > height or size > width:
        raise ValueError(f"center crop {size} is larger than the resized image {height}x{width}")
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0)), size, size


def sample_seed(base: int, index: int) -> int:
    """A 63-bit seed for the augmentation of sample ``index`` in the epoch seeded by ``base``."""
    z = (base * 0x9E3779B97F4A7C15 + (index + 1) * 0xD1B54A32D192ED03) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


# ---------------------------------------------------------------------------------------------- dataset
class ImageFolderStream(torch.utils.data.Dataset):
    """Decode one image per ``__getitem__``: ``dataset[i]`` or ``dataset[(i, seed)]`` -> ``(x [3, s, s], y)``.

    ``train=True`` applies RandomResizedCrop(``crop``) drawn from ``seed`` (0 when the key is a plain
    index); ``train=False`` applies Resize(``resize``) + CenterCrop(``crop``). Both end with
    ``(x / 255 - mean) / std``.
    """

    def __init__(self, files: Sequence[Path], labels: np.ndarray, *, train: bool, crop: int = 224,
                 resize: int = 256, scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3), mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        if len(files) != len(labels):
            raise ValueError(f"{len(files)} files but {len(labels)} labels")
        if crop < 1 or resize < crop:
            raise ValueError(f"need 1 <= crop <= resize, got crop={crop}, resize={resize}")
        if not (0 < scale[0] <= scale[1] <= 1):
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {tuple(scale)}")
        if not (0 < ratio[0] <= ratio[1]):
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {tuple(ratio)}")
        self.files = [str(f) for f in files]
        self.labels = np.asarray(labels, np.int64)
        self.train, self.crop, self.resize = bool(train), int(crop), int(resize)
        self.scale, self.ratio = (float(scale[0]), float(scale[1])), (float(ratio[0]), float(ratio[1]))
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int, seed: int = 0) -> torch.Tensor:
        """The transformed image ``[3, crop, crop]`` (float32, normalised)."""
        Image = _pil()
        path = self.files[index]
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                W, H = im.size
                if self.train:
                    top, left, h, w = random_resized_crop_box(random.Random(seed), H, W, self.scale, self.ratio)
                    # crop, then resize (torchvision's resized_crop): the filter never reads outside the crop
                    out = im.crop((left, top, left + w, top + h)).resize((self.crop, self.crop), Image.BILINEAR)
                else:
                    rh, rw = resize_shorter_size(H, W, self.resize)
                    im = im.resize((rw, rh), Image.BILINEAR)
                    top, left, h, w = center_crop_box(rh, rw, self.crop)
                    out = im.crop((left, top, left + w, top + h))
                a = np.asarray(out, dtype=np.uint8)
        except OSError as e:
            raise CorruptFileError(Path(path), f"Pillow cannot decode the image ({e})") from None
        x = torch.from_numpy(a.copy()).permute(2, 0, 1).float().div_(255.0)
        return (x - self.mean) / self.std

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (int(key), 0)
        return self.load(index, seed), int(self.labels[index])


class LazyImages:
    """A read-only, tensor-like view ``[N, C, H, W]`` of a stream: slicing decodes only the selected images.

    Supports ``.shape``, ``len()``, ``view[i]`` (one image), ``view[a:b]`` and ``view[index_tensor]``
    (stacked batches), so evaluation and analysis code written for in-memory tensors works unchanged.
    """

    def __init__(self, dataset: ImageFolderStream) -> None:
        self.dataset = dataset
        self.shape = torch.Size([len(dataset), 3, dataset.crop, dataset.crop])

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | slice | torch.Tensor | Sequence[int]) -> torch.Tensor:
        if isinstance(key, (int, np.integer)):
            return self.dataset.load(int(key) % len(self.dataset))
        if isinstance(key, slice):
            idx = list(range(*key.indices(len(self.dataset))))
        else:
            idx = [int(i) for i in (key.tolist() if isinstance(key, torch.Tensor) else key)]
        if not idx:
            return torch.empty((0,) + tuple(self.shape[1:]))
        return torch.stack([self.dataset.load(i) for i in idx])


@dataclass
class StreamingSplit:
    """One split of a streamed dataset: the :class:`~spikeforge.data.base.DatasetSplit` fields, but ``x`` is a
    :class:`LazyImages` view (evaluation transform) and ``dataset`` is the torch ``Dataset`` to load from
    (the training transform for the train split)."""

    dataset: ImageFolderStream
    x: LazyImages
    y: torch.Tensor
    num_classes: int
    classes: list[str]
    name: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = "static"
    streaming: bool = True

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def class_counts(self) -> dict[str, int]:
        counts = torch.bincount(self.y, minlength=self.num_classes).tolist()
        return {c: int(n) for c, n in zip(self.classes, counts, strict=False)}
