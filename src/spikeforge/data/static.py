"""Static image datasets: IDX (MNIST, Fashion-MNIST), CIFAR-10/100 python batches, ImageFolder
trees and the embedded scikit-learn ``digits``.

All loaders return whole splits in memory as ``float32`` arrays ``[N, C, H, W]`` scaled to
``[0, 1]`` plus ``int64`` labels; :func:`normalize` applies per-dataset mean/std.

Formats
-------
IDX (LeCun, "THE MNIST DATABASE"): big-endian. Bytes 0-1 are zero, byte 2 is the type code
(0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), byte 3 the number
of dimensions ``d``; then ``d`` big-endian uint32 sizes; then the data, C order. Files may be
gzip-compressed (detected from the ``1f 8b`` magic, not the extension).

CIFAR "python version" (Krizhevsky): each batch is a pickle (protocol 2, written by Python 2) of
a dict with byte-string keys: ``b'data'`` uint8 ``[10000, 3072]`` (1024 R, 1024 G, 1024 B, rows
of 32 pixels) and ``b'labels'`` (CIFAR-10) or ``b'fine_labels'``/``b'coarse_labels'``
(CIFAR-100). We unpickle with :class:`RestrictedUnpickler`, which only resolves the numpy
array-reconstruction globals, so a malicious file cannot execute code.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import pickletools
import struct
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CorruptFileError, DatasetNotFoundError, MissingDependencyError

__all__ = [
    "read_idx",
    "write_idx",
    "load_idx_split",
    "IDX_FILES",
    "read_cifar_batch",
    "load_cifar10",
    "load_cifar100",
    "RestrictedUnpickler",
    "load_imagefolder",
    "load_digits_split",
    "normalize",
    "STATS",
    "IMAGE_EXTENSIONS",
]

_IDX_TYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_CODES: dict[str, int] = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C,
                              "float32": 0x0D, "float64": 0x0E}

#: Per-dataset channel mean/std of the training images scaled to [0, 1].
STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}

#: File names of the four IDX files per split; the first existing spelling wins.
IDX_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "train": (("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
              ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte")),
    "test": (("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
             ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte")),
}

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


# ----------------------------------------------------------------------------------------- IDX
#: Largest IDX payload :func:`read_idx` accepts by default (bytes after decompression).
IDX_MAX_BYTES = 1 << 33
#: deflate cannot expand data by more than ~1032:1; a gzip IDX declaring more is rejected unread.
GZIP_MAX_RATIO = 1032
_IDX_MAX_DIMS = 32
_CHUNK = 1 << 20


def _open_idx(path: Path):
    """Binary stream of the IDX bytes (decompressing on the fly when the file starts with 1f 8b)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb"), True
    return open(path, "rb"), False


def _read_exact(stream, n: int, path: Path, what: str, offset: int) -> bytes:
    try:
        b = stream.read(n)
    except (OSError, EOFError, zlib.error) as e:
        raise CorruptFileError(path, f"gzip stream is damaged ({e})", offset) from None
    if len(b) != n:
        raise CorruptFileError(path, f"{what} (file has {offset + len(b)} bytes)", offset)
    return b


def read_idx(path: str | os.PathLike[str], max_bytes: int = IDX_MAX_BYTES) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian numpy array.

    The header is read first and every limit is checked before any data is allocated or
    decompressed: the declared size (product of the dims, exact Python integers) must not exceed
    ``max_bytes``; a raw file must hold exactly that many bytes; a gzip file cannot declare more
    than ``GZIP_MAX_RATIO`` times its compressed size (the deflate limit) and is then streamed in
    1 MiB chunks into the result, so a stream that is shorter or longer than declared is rejected
    after reading at most the declared size plus one byte.

    Raises:
        DatasetNotFoundError: the file does not exist.
        CorruptFileError: bad magic, unknown type code, too many dims, data size != product of
            the dims, a size above ``max_bytes``, or a damaged gzip stream.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetNotFoundError(p.name, [p])
    file_size = p.stat().st_size
    stream, gz = _open_idx(p)
    with stream:
        magic = _read_exact(stream, 4, p, "shorter than the 4-byte IDX magic", 0)
        if magic[0] != 0 or magic[1] != 0:
            raise CorruptFileError(p, f"IDX magic must start with two zero bytes, got {magic.hex()}", 0)
        code, ndim = magic[2], magic[3]
        if code not in _IDX_TYPES:
            raise CorruptFileError(p, f"unknown IDX type code 0x{code:02x}", 2)
        if ndim == 0 or ndim > _IDX_MAX_DIMS:
            raise CorruptFileError(p, f"IDX header declares {ndim} dimensions (allowed 1..{_IDX_MAX_DIMS})", 3)
        head = 4 + 4 * ndim
        dim_bytes = _read_exact(stream, 4 * ndim, p, f"header needs {head} bytes for {ndim} dims", 4)
        dims = struct.unpack(f">{ndim}I", dim_bytes)
        dtype = np.dtype(_IDX_TYPES[code])
        expected = math.prod(dims) * dtype.itemsize  # exact: no int64 overflow
        if expected > max_bytes:
            raise CorruptFileError(p, f"dims {dims} of {dtype} declare {expected} data bytes, above the "
                                      f"limit max_bytes={max_bytes} (pass a larger max_bytes if it is real)", 4)
        if not gz and file_size - head != expected:
            raise CorruptFileError(
                p, f"dims {dims} of {dtype} need {expected} data bytes, found {file_size - head}", head
            )
        if gz and expected > GZIP_MAX_RATIO * file_size + (1 << 16):
            raise CorruptFileError(p, f"dims {dims} of {dtype} declare {expected} data bytes, more than a "
                                      f"{file_size}-byte gzip file can hold (deflate expands at most "
                                      f"{GZIP_MAX_RATIO}:1)", 4)
        out = np.empty(expected, np.uint8)  # pages are committed only as the stream fills them
        view = out.data  # writable memoryview of the array
        got = 0
        try:
            while got < expected:
                n = stream.readinto(view[got:got + _CHUNK])
                if not n:
                    break
                got += n
            extra = len(stream.read(1)) if got == expected else 0
        except (OSError, EOFError, zlib.error) as e:
            raise CorruptFileError(p, f"gzip stream is damaged ({e})", head + got) from None
        if got != expected or extra:
            found = f"{got}" if got != expected else f"more than {expected}"
            raise CorruptFileError(p, f"dims {dims} of {dtype} need {expected} data bytes, found {found}", head)
    arr = out.view(dtype).reshape(dims)
    if dtype.byteorder == ">":
        arr = arr.byteswap(inplace=True).view(dtype.newbyteorder("="))  # in place: `out` is ours
    return arr


def write_idx(path: str | os.PathLike[str], array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzip if ``compress`` or the name ends with ``.gz``)."""
    p = Path(path)
    a = np.ascontiguousarray(array)
    if a.dtype.name not in _IDX_CODES:
        raise TypeError(f"IDX cannot store dtype {a.dtype}; use one of {sorted(_IDX_CODES)}")
    head = bytes([0, 0, _IDX_CODES[a.dtype.name], a.ndim]) + np.asarray(a.shape, ">u4").tobytes()
    body = head + a.astype(a.dtype.newbyteorder(">")).tobytes()
    if compress or (compress is None and p.suffix == ".gz"):
        body = gzip.compress(body, mtime=0)
    p.write_bytes(body)
    return p


def _find_idx(folder: Path, names: Sequence[str]) -> Path | None:
    for n in names:
        for cand in (folder / n, folder / f"{n}.gz"):
            if cand.is_file():
                return cand
    return None


def idx_present(folder: Path) -> bool:
    """True when ``folder`` holds the four MNIST-style IDX files."""
    return all(_find_idx(folder, names) is not None for pair in IDX_FILES.values() for names in pair)


def load_idx_split(folder: str | os.PathLike[str], split: str) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of an MNIST-layout folder: images ``[N, 1, H, W]`` in [0, 1], labels ``[N]``."""
    f = Path(folder)
    img_names, lab_names = IDX_FILES[_check_split(split)]
    img_p, lab_p = _find_idx(f, img_names), _find_idx(f, lab_names)
    missing = [n[0] for n, p in ((img_names, img_p), (lab_names, lab_p)) if p is None]
    if missing or img_p is None or lab_p is None:
        raise DatasetNotFoundError(f"IDX files {missing}", [f / m for m in missing])
    images, labels = read_idx(img_p), read_idx(lab_p)
    if images.ndim != 3:
        raise CorruptFileError(img_p, f"expected a 3-D image array [N, H, W], got shape {images.shape}")
    if labels.ndim != 1:
        raise CorruptFileError(lab_p, f"expected 1-D labels, got shape {labels.shape}")
    if len(images) != len(labels):
        raise CorruptFileError(lab_p, f"{len(labels)} labels for {len(images)} images in {img_p.name}")
    x = images.astype(np.float32)[:, None]
    if images.dtype == np.uint8:
        x /= 255.0
    return x, labels.astype(np.int64)


def _check_split(split: str) -> str:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


# --------------------------------------------------------------------------------------- CIFAR
#: Largest pickle :func:`read_cifar_batch` reads (the CIFAR-100 train file is ~160 MB).
PICKLE_MAX_BYTES = 1 << 30
#: Number of classes per label key of the CIFAR python batches.
CIFAR_LABEL_CLASSES = {"labels": 10, "fine_labels": 100, "coarse_labels": 20}


class _NdarrayName:
    """Stands for ``numpy.ndarray`` inside a pickle: usable as _reconstruct's class argument only
    (calling numpy.ndarray(shape) directly would allocate whatever shape the file asks for)."""


def _safe_reconstruct(cls: Any, shape: Any, dtype_code: Any) -> Any:
    # numpy pickles arrays as _reconstruct(ndarray, (0,), b'b') + BUILD(state); only that empty
    # placeholder is allowed, so a pickle cannot ask for an allocation its data does not back.
    if cls is not _NdarrayName or shape != (0,):
        raise pickle.UnpicklingError(f"numpy _reconstruct({cls!r}, {shape!r:.40}) is not a plain array placeholder")
    return np.ndarray.__new__(np.ndarray, (0,), np.uint8)


def _safe_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    # protocol-5 numpy pickles: an array view of bytes the pickle holds (nothing is allocated)
    if not isinstance(buf, (bytes, bytearray, pickle.PickleBuffer)) or not isinstance(dtype, np.dtype):
        raise pickle.UnpicklingError("numpy _frombuffer needs bytes and a dtype")
    if dtype.kind not in "biuf" or order not in ("C", "F"):
        raise pickle.UnpicklingError(f"numpy _frombuffer of dtype {dtype} / order {order!r} is not allowed")
    return np.frombuffer(memoryview(buf), dtype).reshape(shape, order=order).copy()


def _safe_scalar(dtype: Any, data: Any = None) -> Any:
    # numpy scalars (e.g. np.int64 labels) pickle as scalar(dtype, raw bytes of one item)
    if not isinstance(dtype, np.dtype) or not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("numpy scalar needs a numeric dtype and exactly one item of bytes")
    return np.frombuffer(data, dtype)[0]


def _safe_encode(obj: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    # Python 3 writes bytes at protocol 2 as _codecs.encode(str, 'latin1'); nothing else is needed
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError(f"_codecs.encode only allowed as encode(str, 'latin1'), got {encoding!r}")
    return obj.encode("latin1")


def _safe_dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    if not isinstance(spec, str) or len(spec) > 8:
        raise pickle.UnpicklingError(f"numpy.dtype({spec!r}) is not a plain scalar type")
    dt = np.dtype(spec, align=bool(align))
    if dt.kind not in "biuf" or dt.itemsize > 16:
        raise pickle.UnpicklingError(f"numpy dtype {dt} is not allowed in a data file (numbers only)")
    return dt


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the globals needed for plain numeric numpy arrays.

    Plain containers (dict, list, bytes, str, int) need no globals at all; numpy arrays need
    ``numpy.core.multiarray._reconstruct`` (``numpy._core`` on numpy 2; ``numeric._frombuffer`` at
    protocol 5) and ``numpy.dtype`` (plus ``_codecs.encode``, which Python 3 uses for bytes at
    protocol 2). Each is replaced by a checked version: ``_reconstruct`` only builds numpy's empty
    ``(0,)`` placeholder (the array's data then comes from the pickle itself), ``_frombuffer`` only
    views bytes held by the pickle, ``dtype`` only numeric scalar types, ``scalar`` only one item
    of those, ``encode`` only ``encode(str, 'latin1')``. Anything else (``os.system``, ``builtins.eval`` ...) raises
    :class:`pickle.UnpicklingError`.
    """

    _ALLOWED: dict[tuple[str, str], Any] = {
        ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy.core.numeric", "_frombuffer"): _safe_frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _safe_frombuffer,
        ("numpy.core.multiarray", "scalar"): _safe_scalar,
        ("numpy._core.multiarray", "scalar"): _safe_scalar,
        ("numpy", "ndarray"): _NdarrayName,
        ("numpy", "dtype"): _safe_dtype,
        ("_codecs", "encode"): _safe_encode,
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data file")
        return self._ALLOWED[(module, name)]


def _restricted_load(path: Path, max_bytes: int = PICKLE_MAX_BYTES) -> Any:
    size = path.stat().st_size
    if size > max_bytes:
        raise CorruptFileError(path, f"pickle of {size} bytes is above the limit max_bytes={max_bytes}")
    raw = path.read_bytes()
    try:
        # Walk the opcodes first (pure Python, nothing built): every counted length (BINBYTES8,
        # LONG4 ...) is checked against the bytes really present, so the C unpickler below never
        # allocates a buffer the file does not back.
        with warnings.catch_warnings():  # genops decodes STRING args: bad escapes only warn
            warnings.simplefilter("ignore", DeprecationWarning)
            for _op, _arg, _pos in pickletools.genops(io.BytesIO(raw)):
                pass
        return RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise CorruptFileError(path, f"refused or invalid pickle ({e})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, LookupError,
            OverflowError, MemoryError, RecursionError) as e:
        raise CorruptFileError(path, f"truncated or invalid pickle ({type(e).__name__}: {e})") from None


def _key(d: dict, name: str) -> Any:
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    raise KeyError(name)


def read_cifar_batch(
    path: str | os.PathLike[str], label_key: str = "labels", num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR python batch: uint8 images ``[N, 3, 32, 32]`` and int64 labels ``[N]``.

    ``data`` must be a uint8 numpy array ``[N, 3072]``; the labels a list/array of ``N``
    integers in ``[0, num_classes)`` (default from ``label_key``: ``labels`` 10,
    ``fine_labels`` 100, ``coarse_labels`` 20), so a bad label fails here and not as an
    ``IndexError`` in the loss.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetNotFoundError(p.name, [p])
    n_cls = num_classes if num_classes is not None else CIFAR_LABEL_CLASSES.get(label_key)
    if n_cls is None:
        raise ValueError(f"num_classes is required for label_key={label_key!r} "
                         f"(known keys: {', '.join(CIFAR_LABEL_CLASSES)})")
    d = _restricted_load(p)
    if not isinstance(d, dict):
        raise CorruptFileError(p, f"expected a pickled dict, got {type(d).__name__}")
    try:
        data, labels = _key(d, "data"), _key(d, label_key)
    except (KeyError, TypeError) as e:
        raise CorruptFileError(p, f"missing key {e.args[0]!r}") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise CorruptFileError(p, f"'data' must be a uint8 [N, 3072] array, got {got}")
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise CorruptFileError(p, f"{label_key!r} must be 1-D integers, got {labels.dtype} {labels.shape}")
        lo, hi = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
    elif isinstance(labels, (list, tuple)):
        bad = next((v for v in labels if type(v) is not int and not isinstance(v, np.integer)), None)
        if bad is not None:
            raise CorruptFileError(p, f"{label_key!r} holds a non-integer label {str(bad)[:40]!r}")
        lo, hi = (int(min(labels)), int(max(labels))) if labels else (0, 0)
    else:
        raise CorruptFileError(p, f"{label_key!r} must be a list of integers, got {type(labels).__name__}")
    if lo < 0 or hi >= n_cls:
        raise CorruptFileError(p, f"{label_key!r} range [{lo}, {hi}] is outside the {n_cls} classes [0, {n_cls})")
    y = np.asarray(labels, dtype=np.int64)
    if len(y) != data.shape[0]:
        raise CorruptFileError(p, f"{len(y)} labels for {data.shape[0]} images")
    return data.reshape(-1, 3, 32, 32), y


def _read_meta(path: Path, key: str) -> list[str] | None:
    if not path.is_file():
        return None
    d = _restricted_load(path)
    try:
        return [n.decode() if isinstance(n, bytes) else str(n) for n in _key(d, key)]
    except (KeyError, TypeError, ValueError):
        return None


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def load_cifar10(folder: str | os.PathLike[str], split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load ``cifar-10-batches-py`` (``data_batch_1..5``, ``test_batch``, ``batches.meta``)."""
    f = Path(folder)
    names = [f"data_batch_{i}" for i in range(1, 6)] if _check_split(split) == "train" else ["test_batch"]
    parts = [read_cifar_batch(f / n) for n in names]
    classes = _read_meta(f / "batches.meta", "label_names") or CIFAR10_CLASSES
    x = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    return x, np.concatenate([p[1] for p in parts]), classes


def load_cifar100(
    folder: str | os.PathLike[str], split: str, label: str = "fine"
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load ``cifar-100-python`` (``train``, ``test``, ``meta``); ``label`` is 'fine' or 'coarse'."""
    if label not in ("fine", "coarse"):
        raise ValueError(f"label must be 'fine' or 'coarse', got {label!r}")
    f = Path(folder)
    x, y = read_cifar_batch(f / _check_split(split), label_key=f"{label}_labels")
    n = 100 if label == "fine" else 20
    classes = _read_meta(f / "meta", f"{label}_label_names") or [str(i) for i in range(n)]
    return x.astype(np.float32) / 255.0, y, classes


# --------------------------------------------------------------------------------- ImageFolder
def _pil():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is present in the dev env
        raise MissingDependencyError("pillow", "reading ImageFolder trees") from None
    return Image


def list_imagefolder(folder: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """Files and labels of ``folder/<class>/<image>``; classes sorted by name."""
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    files: list[Path] = []
    labels: list[int] = []
    for i, c in enumerate(classes):
        fs = sorted(p for p in (folder / c).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        files += fs
        labels += [i] * len(fs)
    return files, np.asarray(labels, dtype=np.int64), classes


def load_imagefolder(
    root: str | os.PathLike[str],
    split: str,
    size: tuple[int, int] | None = None,
    mode: str = "RGB",
    test_fraction: float = 0.2,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """Load an ImageFolder tree with Pillow.

    Layout: ``root/train/<class>/*`` and ``root/test/<class>/*`` when both exist; otherwise
    ``root/<class>/*`` split per class deterministically (files sorted by name, the last
    ``ceil(test_fraction * n)`` of each class form the test split).

    Args:
        size: ``(H, W)`` to resize to (bilinear); required when the images differ in size.
        mode: Pillow mode, ``'RGB'`` (3 channels) or ``'L'`` (1 channel).
    Returns:
        images ``[N, C, H, W]`` in [0, 1], labels, class names, and the folder read.
    """
    Image = _pil()
    r = Path(root)
    if not r.is_dir():
        raise DatasetNotFoundError("imagefolder", [r], "imagefolder needs root=<folder of class folders>")
    _check_split(split)
    if (r / "train").is_dir() and (r / "test").is_dir():
        src = r / split
        files, labels, classes = list_imagefolder(src)
    else:
        src = r
        files, labels, classes = list_imagefolder(r)
        keep = np.zeros(len(files), bool)
        for c in range(len(classes)):
            idx = np.flatnonzero(labels == c)
            n_test = int(np.ceil(test_fraction * len(idx))) if len(idx) > 1 else 0
            sel = idx[len(idx) - n_test:] if split == "test" else idx[: len(idx) - n_test]
            keep[sel] = True
        files = [f for f, k in zip(files, keep, strict=False) if k]
        labels = labels[keep]
    if not files:
        raise DatasetNotFoundError("imagefolder", [src], f"no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    if limit is not None:
        files, labels = files[:limit], labels[:limit]
    arrays = []
    for fp in files:
        try:
            with Image.open(fp) as im:
                im = im.convert(mode)
                if size is not None:
                    im = im.resize((size[1], size[0]), Image.BILINEAR)
                a = np.asarray(im, dtype=np.float32) / 255.0
        except OSError as e:
            raise CorruptFileError(fp, f"Pillow cannot decode the image ({e})") from None
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"images in {src} differ in size {sorted(shapes)[:3]}...; pass size=(H, W)")
    return np.stack(arrays), labels, classes, str(src)


# -------------------------------------------------------------------------------------- digits
def load_digits_split(split: str, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's embedded 8x8 ``digits`` (1797 samples, ships with sklearn, no download).

    Pixel values 0..16 are scaled to [0, 1]. The split is a stratified
    ``train_test_split(test_size=test_fraction, random_state=seed)``: 1437 train / 360 test by
    default, identical on every machine.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return (x_tr, y_tr) if _check_split(split) == "train" else (x_te, y_te)


# ------------------------------------------------------------------------------- normalisation
def normalize(x: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(x - mean[c]) / std[c]`` per channel of ``[N, C, H, W]`` (float32)."""
    m = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
    return ((x - m) / s).astype(np.float32)


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``[N, C, H, W]`` (float64 accumulation)."""
    m = x.mean(axis=(0, 2, 3), dtype=np.float64)
    s = x.std(axis=(0, 2, 3), dtype=np.float64)
    s = np.where(s > 0, s, 1.0)
    return tuple(float(v) for v in m), tuple(float(v) for v in s)
