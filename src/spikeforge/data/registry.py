"""Registry of offline datasets: :func:`get`, :func:`list_datasets`, :func:`info`, :func:`format_info`.

Nothing here downloads. Each dataset declares the folder names it is looked for under (see
:mod:`spikeforge.data.base` for the search order), how to recognise it, and how to load a split
fully into memory as a :class:`~spikeforge.data.base.DatasetSplit`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..registry import Registry
from . import event_datasets as evd
from . import imagefolder, static
from .base import DatasetSplit, Kind, candidate_dirs, file_fingerprint, find_dir, npz_cache
from .errors import DatasetNotFoundError
from .points import images_to_points, load_modelnet, modelnet_layout
from .simulate import SaccadeConfig, simulate_frames, upsample

__all__ = ["DatasetSpec", "register", "get", "list_datasets", "info", "format_info", "REGISTRY"]

PathLike = str | os.PathLike[str]
Labels = tuple[np.ndarray, list[str]]


@dataclass(frozen=True)
class DatasetSpec:
    """How to find and load one registered dataset.

    ``load(split, folder, limit, opts)`` returns ``(x, y, classes, source, meta)``;
    ``labels(split, folder, opts)`` returns ``(y, classes)`` cheaply (for :func:`info`).
    ``folder`` is ``None`` for embedded datasets (``dirnames == ()``).
    """

    name: str
    kind: Kind
    description: str
    num_classes: int
    sample_shape: str
    load: Callable[[str, Path | None, int | None, dict], tuple]
    labels: Callable[[str, Path | None, dict], Labels]
    dirnames: tuple[str, ...] = ()
    system_dirs: tuple[str, ...] = ()
    accept: Callable[[Path], bool] = lambda p: True
    expected: str = ""
    sizes: dict[str, int | None] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    simulated: bool = False
    needs_root: bool = False
    requires: tuple[str, ...] = ()  # other datasets whose files this one reads
    #: ``stream(split, folder, limit, opts)`` -> a split read from disk per sample (instead of ``load``)
    stream: Callable[[str, Path, int | None, dict], Any] | None = None

    @property
    def embedded(self) -> bool:
        return not self.dirnames and not self.needs_root and not self.requires


REGISTRY: Registry[str, DatasetSpec] = Registry("dataset")


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add (or replace) a dataset in the registry."""
    REGISTRY[spec.name] = spec
    return spec


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(REGISTRY)


def _spec(name: str) -> DatasetSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; registered: {', '.join(list_datasets())}") from None


def _search(spec: DatasetSpec, root: PathLike | None) -> list[Path]:
    return candidate_dirs(spec.dirnames, root, spec.system_dirs)


def _locate(spec: DatasetSpec, root: PathLike | None) -> Path | None:
    if spec.embedded:
        return None
    if spec.needs_root and root is None:
        raise ValueError(f"dataset {spec.name!r} needs root=<folder>")
    found = find_dir(_search(spec, root), spec.accept)
    if found is None:
        raise DatasetNotFoundError(spec.name, _search(spec, root), spec.expected)
    return found


def _check_opts(spec: DatasetSpec, opts: dict) -> dict:
    unknown = sorted(set(opts) - set(spec.options))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in spec.options.items()) or "none"
        raise TypeError(f"dataset {spec.name!r} got unknown option(s) {unknown}; valid options: {valid}")
    return {**spec.options, **opts}


def get(name: str, split: str = "train", *, root: PathLike | None = None, limit: int | None = None,
        **opts: Any) -> Any:
    """Load one split of a registered dataset into memory (a :class:`DatasetSplit`), or, for streamed
    datasets (``imagenet``), index it and return a :class:`~spikeforge.data.imagefolder.StreamingSplit`.

    Args:
        name: a name from :func:`list_datasets`.
        split: ``'train'`` or ``'test'``.
        root: folder holding the dataset (or its parent); default search: ``$SPIKEFORGE_DATA``,
            system locations, ``~/spikeforge-data``.
        limit: keep only the first ``limit`` samples (in the dataset's file/label order).
        **opts: dataset options (see ``info(name)['options']``), e.g. ``T=10, split_by='time'``.

    Raises:
        DatasetNotFoundError: files missing (message lists every searched path and the fix).
        CorruptFileError: a file does not follow its format.
    """
    spec = _spec(name)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    o = _check_opts(spec, opts)
    folder = _locate(spec, root)
    if spec.stream is not None:
        return spec.stream(split, _folder_of(folder, name), limit, o)
    x, y, classes, source, meta = spec.load(split, folder, limit, o)
    x, y = np.asarray(x)[:limit], np.asarray(y)[:limit]
    return DatasetSplit(
        x=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        y=torch.from_numpy(y.astype(np.int64)),
        num_classes=len(classes) or spec.num_classes, kind=spec.kind, classes=list(classes), name=name,
        source=source, meta={**meta, "options": o, "simulated": spec.simulated},
    )


def info(name: str, root: PathLike | None = None, counts: bool = True) -> dict[str, Any]:
    """Facts about a dataset without loading the samples.

    Returns a dict with ``name, kind, description, simulated, num_classes, sample_shape,
    sizes`` (the official split sizes), ``options``, ``expected`` (layout), ``searched`` (paths
    looked at), ``present``, ``location``, ``error`` and, when present and ``counts``,
    ``class_counts = {split: {class: n}}``.
    """
    spec = _spec(name)
    d: dict[str, Any] = {
        "name": spec.name, "kind": spec.kind, "description": spec.description,
        "simulated": spec.simulated, "num_classes": spec.num_classes, "sample_shape": spec.sample_shape,
        "sizes": dict(spec.sizes), "options": dict(spec.options), "expected": spec.expected,
        "requires": list(spec.requires),
        "searched": [] if spec.embedded or (spec.needs_root and root is None)
        else [str(p) for p in _search(spec, root)],
        "present": False, "location": None, "error": None,
    }
    try:
        folder = _locate(spec, root)
        d["present"] = True
        d["location"] = "embedded (scikit-learn)" if folder is None else str(folder)
        if counts:
            d["class_counts"] = {}
            for split in ("train", "test"):
                y, classes = spec.labels(split, folder, dict(spec.options))
                n = np.bincount(y, minlength=len(classes))
                d["class_counts"][split] = {c: int(k) for c, k in zip(classes, n, strict=False)}
                d.setdefault("found_sizes", {})[split] = int(len(y))
    except (DatasetNotFoundError, ValueError) as e:
        d["present"] = False
        d["error"] = str(e)
    return d


def format_info(d: dict[str, Any]) -> str:
    """Human-readable multi-line rendering of :func:`info` (for ``spikeforge data info NAME``)."""
    lines = [f"{d['name']} ({d['kind']}{', simulated' if d['simulated'] else ''}): {d['description']}",
             f"  classes: {d['num_classes']}   sample shape: {d['sample_shape']}"]
    sizes = ", ".join(f"{k}={v if v is not None else '?'}" for k, v in d["sizes"].items())
    if sizes:
        lines.append(f"  official sizes: {sizes}")
    if d["options"]:
        lines.append("  options: " + ", ".join(f"{k}={v!r}" for k, v in d["options"].items()))
    if d["expected"]:
        lines.append(f"  expected layout: {d['expected']}")
    if d.get("requires"):
        lines.append(f"  reads the files of: {', '.join(d['requires'])}")
    where = f" at {d['location']}" if d["location"] else ""
    lines.append(f"  present: {'yes' if d['present'] else 'no'}{where}")
    if not d["present"]:
        if d["searched"]:
            lines.append("  searched:")
            lines += [f"    - {p}" for p in d["searched"]]
        if d["error"] and not d["searched"]:
            lines.append("  " + d["error"].splitlines()[0])
    if d.get("found_sizes"):
        lines.append("  found: " + ", ".join(f"{k}={v}" for k, v in d["found_sizes"].items()))
    for split, cc in d.get("class_counts", {}).items():
        lines.append(f"  {split} class counts: " + ", ".join(f"{c}:{n}" for c, n in cc.items()))
    return "\n".join(lines)


# ============================================================================ static datasets
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                   "Bag", "Ankle boot"]
DIGIT_CLASSES = [str(i) for i in range(10)]
_IDX_EXPECTED = ("folder with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
                 "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]")


def _norm_meta(x: np.ndarray, stats: tuple, normalize: bool) -> tuple[np.ndarray, dict]:
    mean, std = stats
    if normalize:
        x = static.normalize(x, mean, std)
    return x, {"mean": list(mean), "std": list(std), "normalized": bool(normalize)}


def _digits_load(split, folder, limit, o):
    x, y = static.load_digits_split(split)
    stats = static.channel_stats(static.load_digits_split("train")[0])
    x, meta = _norm_meta(x, stats, o["normalize"])
    return x, y, DIGIT_CLASSES, "sklearn.datasets.load_digits", meta


register(DatasetSpec(
    name="digits", kind="static", num_classes=10, sample_shape="[1, 8, 8]",
    description="scikit-learn's embedded 8x8 handwritten digits; stratified 80/20 split (seed 0)",
    load=_digits_load, labels=lambda s, f, o: (static.load_digits_split(s)[1], DIGIT_CLASSES),
    sizes={"train": 1437, "test": 360}, options={"normalize": True},
))


def _idx_spec(name: str, classes: list[str], dirnames: tuple[str, ...], system: tuple[str, ...] = ()):
    def load(split, folder, limit, o):
        x, y = static.load_idx_split(folder, split)
        x, meta = _norm_meta(x[:limit], static.STATS[name], o["normalize"])
        return x, y[:limit], classes, str(folder), meta

    def labels(split, folder, o):
        _, lab_names = static.IDX_FILES[split]
        p = static._find_idx(folder, lab_names)
        return static.read_idx(p).astype(np.int64), classes

    register(DatasetSpec(
        name=name, kind="static", num_classes=10, sample_shape="[1, 28, 28]",
        description=f"{name} IDX files (gz or raw)", load=load, labels=labels,
        dirnames=dirnames, system_dirs=system, accept=static.idx_present, expected=_IDX_EXPECTED,
        sizes={"train": 60000, "test": 10000}, options={"normalize": True},
    ))


_idx_spec("mnist", DIGIT_CLASSES, ("mnist", "MNIST", "MNIST/raw", "mnist/raw"))
_idx_spec("fashion-mnist", FASHION_CLASSES,
          ("fashion-mnist", "fashion_mnist", "FashionMNIST", "FashionMNIST/raw", "fashion-mnist/raw"),
          ("/usr/share/datasets/fashion-mnist",))


def _cifar10_load(split, folder, limit, o):
    x, y, classes = static.load_cifar10(folder, split)
    x, meta = _norm_meta(x[:limit], static.STATS["cifar10"], o["normalize"])
    return x, y[:limit], classes, str(folder), meta


def _cifar10_labels(split, folder, o):
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    return np.concatenate([static.read_cifar_batch(folder / n)[1] for n in names]), static.CIFAR10_CLASSES


register(DatasetSpec(
    name="cifar10", kind="static", num_classes=10, sample_shape="[3, 32, 32]",
    description="CIFAR-10, python pickle batches (cifar-10-python.tar.gz extracted)",
    load=_cifar10_load, labels=_cifar10_labels,
    dirnames=("cifar-10-batches-py", "cifar10/cifar-10-batches-py", "cifar10", "CIFAR10"),
    accept=lambda p: (p / "data_batch_1").is_file() and (p / "test_batch").is_file(),
    expected="cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}",
    sizes={"train": 50000, "test": 10000}, options={"normalize": True},
))


def _cifar100_load(split, folder, limit, o):
    x, y, classes = static.load_cifar100(folder, split, o["label"])
    x, meta = _norm_meta(x[:limit], static.STATS["cifar100"], o["normalize"])
    return x, y[:limit], classes, str(folder), meta


def _cifar100_labels(split, folder, o):
    x, y, classes = static.load_cifar100(folder, split, o["label"])
    return y, classes


register(DatasetSpec(
    name="cifar100", kind="static", num_classes=100, sample_shape="[3, 32, 32]",
    description="CIFAR-100, python pickle files; option label='fine' (100 classes) or 'coarse' (20)",
    load=_cifar100_load, labels=_cifar100_labels,
    dirnames=("cifar-100-python", "cifar100/cifar-100-python", "cifar100", "CIFAR100"),
    accept=lambda p: (p / "train").is_file() and (p / "test").is_file(),
    expected="cifar-100-python/{train, test, meta}",
    sizes={"train": 50000, "test": 10000}, options={"normalize": True, "label": "fine"},
))

_IMAGEFOLDER_STATS: dict[tuple, tuple] = {}


def _imagefolder_load(split, folder, limit, o):
    size = tuple(o["size"]) if o["size"] is not None else None
    x, y, classes, src = static.load_imagefolder(folder, split, size, o["mode"], o["test_fraction"], limit)
    key = (str(folder), size, o["mode"], o["test_fraction"])
    if o["normalize"] and key not in _IMAGEFOLDER_STATS:
        xt = x if split == "train" and limit is None else \
            static.load_imagefolder(folder, "train", size, o["mode"], o["test_fraction"])[0]
        _IMAGEFOLDER_STATS[key] = static.channel_stats(xt)
    stats = _IMAGEFOLDER_STATS.get(key, ((0.0,) * x.shape[1], (1.0,) * x.shape[1]))
    x, meta = _norm_meta(x, stats, o["normalize"])
    return x, y, classes, src, meta


def _imagefolder_labels(split, folder, o):
    r = Path(folder)
    if (r / "train").is_dir() and (r / "test").is_dir():
        _, y, classes = static.list_imagefolder(r / split)
        return y, classes
    _, y, classes = static.list_imagefolder(r)
    out = []
    for c in range(len(classes)):
        n = int((y == c).sum())
        n_test = int(np.ceil(o["test_fraction"] * n)) if n > 1 else 0
        out += [c] * (n_test if split == "test" else n - n_test)
    return np.asarray(out, np.int64), classes



register(DatasetSpec(
    name="imagefolder", kind="static", num_classes=0, sample_shape="[C, H, W]",
    description="any <root>/<class>/*.png|jpg tree (or <root>/{train,test}/<class>/...) via Pillow; "
                "normalised with the train split's channel mean/std",
    load=_imagefolder_load, labels=_imagefolder_labels, needs_root=True,
    expected="<root>/<class>/<image> or <root>/{train,test}/<class>/<image>",
    options={"normalize": True, "size": None, "mode": "RGB", "test_fraction": 0.2},
))



def _imagenet_stream(split: str, folder: Path, limit: int | None, o: dict) -> imagefolder.StreamingSplit:
    files, y, classes = imagefolder.index_imagenet(folder, split)
    files, y = files[:limit], y[:limit]
    mean, std = (o["mean"], o["std"]) if o["normalize"] else ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    geometry: dict[str, Any] = {"crop": int(o["crop"]), "resize": int(o["resize"]), "scale": tuple(o["scale"]),
                                "ratio": tuple(o["ratio"]), "mean": tuple(mean), "std": tuple(std)}
    ds = imagefolder.ImageFolderStream(files, y, train=split == "train", **geometry)
    view = ds if split == "test" else imagefolder.ImageFolderStream(files, y, train=False, **geometry)
    meta = {"mean": list(mean), "std": list(std), "normalized": bool(o["normalize"]), "options": o,
            "simulated": False, "streaming": True}
    return imagefolder.StreamingSplit(
        dataset=ds, x=imagefolder.LazyImages(view), y=torch.from_numpy(y), num_classes=len(classes),
        classes=list(classes), name="imagenet", source=str(folder / ("train" if split == "train" else "val")),
        meta=meta)


def _streamed_only(split: str, folder: Path | None, limit: int | None, o: dict) -> tuple:
    raise NotImplementedError("imagenet is streamed from disk (DatasetSpec.stream), never loaded into memory")


def _imagenet_labels(split: str, folder: Path | None, o: dict) -> Labels:
    _, y, classes = imagefolder.index_imagenet(_folder_of(folder, "imagenet"), split)
    return y, classes


register(DatasetSpec(
    name="imagenet", kind="static", num_classes=1000, sample_shape="[3, crop, crop]",
    description="ImageNet-style folder train/<class>/ + val/<class>/, streamed from disk with Pillow: "
                "RandomResizedCrop (train), Resize + CenterCrop (test), ImageNet mean/std",
    load=_streamed_only,
    labels=_imagenet_labels, stream=_imagenet_stream,
    dirnames=("imagenet", "ImageNet", "ILSVRC2012", "imagenet-1k"), accept=imagefolder.imagenet_present,
    expected="<root>/train/<class>/<image> and <root>/val/<class>/<image> (or a flat val/ with "
             "LOC_val_solution.csv)",
    sizes={"train": 1281167, "test": 50000},
    options={"crop": 224, "resize": 256, "scale": [0.08, 1.0], "ratio": [0.75, 4 / 3], "normalize": True,
             "mean": list(imagefolder.IMAGENET_MEAN), "std": list(imagefolder.IMAGENET_STD)},
))


# ============================================================================= event datasets
#: cache_dir='auto' caches frames under $SPIKEFORGE_CACHE/event-frames; None disables the cache.
_EVENT_OPTS = {"T": 10, "split_by": "number", "cache_dir": "auto", "denoise_us": None}


def _folder_of(folder: Path | None, name: str) -> Path:
    """The located folder of a file-backed dataset (``None`` only ever comes from embedded datasets)."""
    if folder is None:
        raise ValueError(f"{name} reads its files from a folder, but none was located")
    return folder


def _ev_meta(o: dict) -> dict:
    return {"T": o["T"], "split_by": o["split_by"], "channels": ["OFF", "ON"]}


def _nmnist_load(split, folder, limit, o):
    files, y = evd.nmnist_index(folder, split)
    files, y = files[:limit], y[:limit]
    x = evd.load_frames(files, o["T"], evd.NMNIST_SIZE, o["split_by"], o["cache_dir"], o["denoise_us"])
    return x, y, DIGIT_CLASSES, str(folder), _ev_meta(o)


register(DatasetSpec(
    name="nmnist", kind="events", num_classes=10, sample_shape="[T, 2, 34, 34]",
    description="N-MNIST (Orchard et al. 2015), real ATIS recordings, .bin files",
    load=_nmnist_load, labels=lambda s, f, o: (evd.nmnist_index(_folder_of(f, "nmnist"), s)[1], DIGIT_CLASSES),
    dirnames=("N-MNIST", "nmnist", "NMNIST"), accept=evd.nmnist_present,
    expected="Train/<digit>/*.bin and Test/<digit>/*.bin",
    sizes={"train": 60000, "test": 10000}, options=dict(_EVENT_OPTS),
))


def _c10dvs_load(split, folder, limit, o):
    files, y = evd.cifar10dvs_index(folder, split)
    files, y = files[:limit], y[:limit]
    size = None if o["size"] is None else _size_pair(o["size"], "cifar10-dvs")
    x = evd.load_frames(files, o["T"], evd.CIFAR10DVS_SIZE, o["split_by"], o["cache_dir"], o["denoise_us"],
                        resize=size)
    return x, y, evd.CIFAR10DVS_CLASSES, str(folder), {**_ev_meta(o), "size": list(size or evd.CIFAR10DVS_SIZE)}


def _size_pair(value: Any, name: str) -> tuple[int, int]:
    pair = [value, value] if isinstance(value, int) else list(value) if isinstance(value, (list, tuple)) else []
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"{name}: option size must be null, an integer or [H, W] of positive integers, "
                         f"got {value!r}")
    return int(pair[0]), int(pair[1])


register(DatasetSpec(
    name="cifar10-dvs", kind="events", num_classes=10, sample_shape="[T, 2, 128, 128] (size=[48, 48]: 48x48)",
    description="CIFAR10-DVS (Li et al. 2017), AEDAT 2.0; SpikingJelly's 90/10 per-class split (name order); "
                "size=[H, W] resizes frames by nearest neighbour",
    load=_c10dvs_load, labels=lambda s, f, o: (evd.cifar10dvs_index(_folder_of(f, "cifar10-dvs"), s)[1],
                            evd.CIFAR10DVS_CLASSES),
    dirnames=("CIFAR10-DVS", "cifar10-dvs", "CIFAR10DVS", "cifar10_dvs"), accept=evd.cifar10dvs_present,
    expected="<class>/cifar10_<class>_<i>.aedat for airplane..truck",
    sizes={"train": 9000, "test": 1000}, options={**_EVENT_OPTS, "size": None},
))


def _gesture_load(split, folder, limit, o):
    files, tables = evd.gesture_index(folder, split)
    x, y = evd.load_gesture_frames(files, tables, o["T"], o["split_by"], o["cache_dir"], o["denoise_us"],
                                   limit)
    return x, y, evd.GESTURE_CLASSES, str(folder), _ev_meta(o)


def _gesture_labels(split, folder, o):
    _, tables = evd.gesture_index(folder, split)
    y = np.concatenate([t[:, 0] - 1 for t in tables]) if tables else np.zeros(0, np.int64)
    return y.astype(np.int64), evd.GESTURE_CLASSES


register(DatasetSpec(
    name="dvs-gesture", kind="events", num_classes=11, sample_shape="[T, 2, 128, 128]",
    description="IBM DVS128 Gesture (Amir et al. 2017), AEDAT 3.1 trials cut by their _labels.csv",
    load=_gesture_load, labels=_gesture_labels,
    dirnames=("DvsGesture", "dvs-gesture", "DVSGesture", "DVS128Gesture"), accept=evd.gesture_present,
    expected="userXX_<light>.aedat + userXX_<light>_labels.csv, trials_to_train.txt, trials_to_test.txt",
    sizes={"train": None, "test": None}, options=dict(_EVENT_OPTS),
))

_SIM_OPTS = {"T": 10, "split_by": "number", "cache_dir": None, **{
    k: v for k, v in SaccadeConfig().to_dict().items() if k != "margin"}}


def _sim_frames(images: np.ndarray, o: dict, key_src: Any) -> np.ndarray:
    cfg = SaccadeConfig(**{k: o[k] for k in SaccadeConfig().to_dict() if k in o})

    def compute() -> dict[str, np.ndarray]:
        return {"frames": simulate_frames(images, o["T"], o["split_by"], cfg)}

    key = {"v": 1, "src": key_src, "n": len(images), "T": o["T"], "split_by": o["split_by"],
           "cfg": cfg.to_dict()}
    return npz_cache(o["cache_dir"], key, compute, prefix="sim")["frames"]


def _nmnist_sim_load(split, folder, limit, o):
    x, y = static.load_digits_split(split)
    x, y = x[:limit], y[:limit]
    imgs = upsample(x[:, 0], (28, 28))
    frames = _sim_frames(imgs, o, {"digits": split})
    return frames, y, DIGIT_CLASSES, "simulated from sklearn.datasets.load_digits (8x8 -> 28x28)", _ev_meta(o)


register(DatasetSpec(
    name="nmnist-sim", kind="events", num_classes=10, sample_shape="[T, 2, 34, 34]",
    description="SIMULATED N-MNIST-style saccade recordings of the embedded 8x8 digits upsampled "
                "to 28x28 (not the real N-MNIST)",
    load=_nmnist_sim_load, labels=lambda s, f, o: (static.load_digits_split(s)[1], DIGIT_CLASSES),
    sizes={"train": 1437, "test": 360}, options=dict(_SIM_OPTS), simulated=True,
))

_FM = REGISTRY["fashion-mnist"]


def _nfm_sim_load(split, folder, limit, o):
    x, y = static.load_idx_split(folder, split)
    x, y = x[:limit], y[:limit]
    img_file = static._find_idx(folder, static.IDX_FILES[split][0])
    frames = _sim_frames(x[:, 0], o, file_fingerprint(img_file))
    return frames, y, FASHION_CLASSES, f"simulated from {folder}", _ev_meta(o)


register(DatasetSpec(
    name="n-fashion-mnist-sim", kind="events", num_classes=10, sample_shape="[T, 2, 34, 34]",
    description="SIMULATED N-MNIST-style saccade recordings of Fashion-MNIST (needs its IDX files)",
    load=_nfm_sim_load, labels=_FM.labels, dirnames=_FM.dirnames, system_dirs=_FM.system_dirs,
    accept=_FM.accept, expected=_IDX_EXPECTED, requires=("fashion-mnist",),
    sizes={"train": 60000, "test": 10000}, options=dict(_SIM_OPTS), simulated=True,
))


# ============================================================================= point clouds
def _modelnet_spec(classes: int) -> None:
    def load(split, folder, limit, o):
        def compute() -> dict[str, np.ndarray]:
            x, y, names = load_modelnet(folder, classes, split, o["n_points"], o["sampling"], o["normals"],
                                        limit, o["seed"])
            return {"x": x, "y": y, "names": np.asarray(names)}

        key = {"v": 1, "folder": str(Path(folder).resolve()), "classes": classes, "split": split,
               "limit": limit, **{k: o[k] for k in ("n_points", "sampling", "normals", "seed")}}
        r = npz_cache(o["cache_dir"], key, compute, prefix=f"modelnet{classes}")
        return r["x"], r["y"], [str(n) for n in r["names"]], str(folder), {"n_points": o["n_points"]}

    def labels(split, folder, o):
        from .points import _modelnet_index

        _, y, names = _modelnet_index(folder, classes, split)
        return y, names

    register(DatasetSpec(
        name=f"modelnet{classes}", kind="points", num_classes=classes, sample_shape="[3, n_points]",
        description=f"ModelNet{classes}: modelnet40_normal_resampled .txt layout or <class>/<split>/*.off "
                    "meshes; unit-sphere normalised",
        load=load, labels=labels,
        dirnames=("modelnet40_normal_resampled", f"modelnet{classes}_normal_resampled", f"ModelNet{classes}",
                  f"modelnet{classes}"),
        accept=lambda p: modelnet_layout(p, classes) is not None,
        expected=f"modelnet{classes}_shape_names.txt, modelnet{classes}_{{train,test}}.txt, "
                 "<class>/<class>_NNNN.txt  (or <class>/{train,test}/*.off)",
        sizes={"train": 9843, "test": 2468} if classes == 40 else {"train": 3991, "test": 908},
        options={"n_points": 1024, "sampling": "first", "normals": False, "seed": 0, "cache_dir": None},
    ))


_modelnet_spec(40)
_modelnet_spec(10)


def _points_from(images: np.ndarray, split: str, o: dict) -> np.ndarray:
    seed = o["seed"] * 2 + (0 if split == "train" else 1)  # distinct streams per split
    return images_to_points(images, o["n_points"], seed).transpose(0, 2, 1)


def _digits_points_load(split, folder, limit, o):
    x, y = static.load_digits_split(split)
    x, y = x[:limit], y[:limit]
    return _points_from(x[:, 0], split, o), y, DIGIT_CLASSES, "points from sklearn.datasets.load_digits", {
        "n_points": o["n_points"]}


register(DatasetSpec(
    name="digits-points", kind="points", num_classes=10, sample_shape="[3, n_points]",
    description="embedded digits as 2-D point clouds in 3-D (points ~ pixel intensity, z = 0; "
                "PointNet++ MNIST protocol)",
    load=_digits_points_load, labels=lambda s, f, o: (static.load_digits_split(s)[1], DIGIT_CLASSES),
    sizes={"train": 1437, "test": 360}, options={"n_points": 256, "seed": 0},
))


def _fmnist_points_load(split, folder, limit, o):
    x, y = static.load_idx_split(folder, split)
    x, y = x[:limit], y[:limit]
    meta = {"n_points": o["n_points"]}
    return _points_from(x[:, 0], split, o), y, FASHION_CLASSES, f"points from {folder}", meta


register(DatasetSpec(
    name="fmnist-points", kind="points", num_classes=10, sample_shape="[3, n_points]",
    description="Fashion-MNIST as 2-D point clouds in 3-D (points ~ pixel intensity, z = 0)",
    load=_fmnist_points_load, labels=_FM.labels, dirnames=_FM.dirnames, system_dirs=_FM.system_dirs,
    accept=_FM.accept, expected=_IDX_EXPECTED, requires=("fashion-mnist",),
    sizes={"train": 60000, "test": 10000}, options={"n_points": 256, "seed": 0},
))
