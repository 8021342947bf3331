"""NeuroCLIP protocol (arXiv:2306.12073; docs/methods/neuroclip.md): events -> grey frames -> frozen CLIP
features (cached on disk) -> zero-shot or few-shot classification, with a validation split carved from the
training data for every choice (frame-weight search, best epoch) and the test split evaluated once at the end.

* :func:`clip_images`: ``[N, T, 2, H, W]`` count frames -> ``[N*T, 3, S, S]`` CLIP inputs: official grey rendering
  (:func:`spikeforge.data.events.render_grey`), bilinear resize to S, 3 channels, ``img / 255 - 0.5``.
* :class:`FeatureStore`: per-frame CLIP features of one split, computed once per sample and kept in an ``.npz``
  keyed by the CLIP weights' fingerprint, the dataset, its options and the rendering settings.
* :func:`split_train_val`, :func:`kshot_indices`: seeded per-class validation split and K-shot sampler.
* :func:`search_frame_weights`: the official exhaustive grid search of per-frame weights, on validation features.
* :func:`run_zeroshot`, :func:`run_fewshot`: the two protocols writing ``metrics.json``, ``report.md`` and
  ``config.yaml`` (few-shot also ``metrics.csv`` and ``adapter.safetensors``) into a run directory.

The CLIP model is any :class:`spikeforge.interop.clip.ClipEncoder` (``spikeforge.interop.clip.load_clip``).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor

from .. import data as data_mod
from ..data.base import cache_home, settings_hash
from ..models import (
    FewShotHead,
    InterTimestepAdapter,
    class_prompts,
    frame_cosines,
    prompt_template,
    zero_shot_logits,
)

if TYPE_CHECKING:
    from ..interop.clip import ClipEncoder

__all__ = [
    "NeuroClipConfig", "clip_images", "FeatureStore", "split_train_val", "kshot_indices", "per_class_sample",
    "search_frame_weights", "lr_for_epoch", "run_zeroshot", "run_fewshot", "run", "bundled_neuroclip_recipes",
    "load_neuroclip_config",
]

_RENDER_VERSION = "grey127-ch0w-ch1b/bilinear/img255-0.5/v1"


@dataclass
class NeuroClipConfig:
    """Settings of a NeuroCLIP run; defaults are the official code's (see docs/methods/neuroclip.md).

    ``limit`` keeps the first N samples of each split (file order: class-ordered datasets such as N-MNIST need
    a limit large enough to reach every class). ``val_per_class=None`` means 16 per class for the zero-shot
    weight search and ``min(shots, 4)`` for few-shot (Dassl's few-shot validation size). ``count_threshold``
    1 is the noise filter suggested for CIFAR10-DVS. SGD momentum 0.9 and weight decay 5e-4 are Dassl's defaults.
    """

    protocol: str = "zeroshot"
    description: str = ""
    data: str = "nmnist-sim"
    root: str | None = None
    limit: int | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    T: int = 10
    count_threshold: float = 0.0
    prompt: str | None = None
    seed: int = 0
    val_per_class: int | None = None
    search: bool = True
    search_grid: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0])
    shots: int = 16
    adapter: str = "spiking"
    reduction: int = 8
    ratio: float = 0.6
    dropout: float = 0.5
    epochs: int = 250
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 1
    warmup_lr: float = 1e-5
    batch_size: int = 32
    eval_batch_size: int = 100
    label_smoothing: float = 0.0
    encode_batch_size: int = 32
    cache_dir: str | None = "auto"
    device: str = "auto"

    def __post_init__(self) -> None:
        checks = [
            (self.protocol in ("zeroshot", "fewshot"), "protocol must be 'zeroshot' or 'fewshot'"),
            (isinstance(self.T, int) and self.T >= 1, "T must be an integer >= 1"),
            (self.limit is None or (isinstance(self.limit, int) and self.limit >= 1), "limit must be null or >= 1"),
            (isinstance(self.shots, int) and self.shots >= 1,
             "shots must be an integer >= 1 (1/2/4/8/16 in the paper)"),
            (self.val_per_class is None or (isinstance(self.val_per_class, int) and self.val_per_class >= 1),
             "val_per_class must be null or an integer >= 1"),
            (self.adapter in ("spiking", "relu"), "adapter must be 'spiking' (LIF) or 'relu' (ANN baseline)"),
            (0.0 <= self.ratio <= 1.0, "ratio must lie in [0, 1]"),
            (0.0 <= self.dropout < 1.0, "dropout must lie in [0, 1)"),
            (isinstance(self.epochs, int) and self.epochs >= 1, "epochs must be an integer >= 1"),
            (self.lr > 0 and self.warmup_lr > 0, "lr and warmup_lr must be > 0"),
            (isinstance(self.warmup_epochs, int) and 0 <= self.warmup_epochs, "warmup_epochs must be an integer >= 0"),
            (self.batch_size >= 2 and self.eval_batch_size >= 1 and self.encode_batch_size >= 1,
             "batch_size must be >= 2 (BatchNorm), eval/encode batch sizes >= 1"),
            (0.0 <= self.label_smoothing < 1.0, "label_smoothing must lie in [0, 1)"),
            (len(self.search_grid) >= 1 and all(float(w) >= 0 for w in self.search_grid),
             "search_grid must be a non-empty list of weights >= 0"),
            (self.count_threshold >= 0, "count_threshold must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"neuroclip: {msg} (got {self.to_dict()})")
        if "T" in self.data_options and self.data_options["T"] != self.T:
            raise ValueError(f"neuroclip: data_options.T={self.data_options['T']} contradicts T={self.T}; set T only")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NeuroClipConfig:
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - valid)
        if unknown:
            raise ValueError(f"neuroclip: unknown setting(s) {unknown}; valid: {sorted(valid)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def val_size(self) -> int:
        if self.val_per_class is not None:
            return self.val_per_class
        return 16 if self.protocol == "zeroshot" else min(self.shots, 4)


# ----------------------------------------------------------------------------------------------- recipes
def bundled_neuroclip_recipes() -> dict[str, Path]:
    """Bundled NeuroCLIP recipe name -> path (``spikeforge/recipes/neuroclip/*.yaml``)."""
    folder = resources.files("spikeforge") / "recipes" / "neuroclip"
    out = {e.name[:-5]: Path(str(e)) for e in folder.iterdir() if e.name.endswith(".yaml")}
    return dict(sorted(out.items()))


def load_neuroclip_config(recipe: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                          **settings: Any) -> NeuroClipConfig:
    """Recipe (file or bundled name, optional) <- keyword settings <- ``key=value`` overrides (YAML-typed;
    ``data_options.KEY=VALUE`` for dataset options)."""
    from .config import parse_override

    raw: dict[str, Any] = {}
    if recipe is not None:
        p = Path(recipe)
        if not p.is_file():
            bundled = bundled_neuroclip_recipes()
            key = str(recipe)[:-5] if str(recipe).endswith(".yaml") else str(recipe)
            if key not in bundled:
                raise ValueError(f"no recipe file or bundled NeuroCLIP recipe {str(recipe)!r}; bundled: "
                                 f"{', '.join(bundled)}")
            p = bundled[key]
        loaded = yaml.safe_load(p.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"recipe {p} must be a mapping of settings")
        raw.update(loaded)
    raw.update({k: v for k, v in settings.items() if v is not None})
    for text in overrides:
        path, value = parse_override(text)
        if len(path) == 2 and path[0] == "data_options":
            raw.setdefault("data_options", {})
            raw["data_options"] = {**raw["data_options"], path[1]: value}
        elif len(path) == 1:
            raw[path[0]] = value
        else:
            raise ValueError(f"--set {'.'.join(path)}: NeuroCLIP settings are flat (or data_options.KEY)")
    for k in ("lr", "warmup_lr", "weight_decay"):  # YAML 1.1 reads 1e-5 as a string
        if isinstance(raw.get(k), str):
            raw[k] = float(raw[k])
    return NeuroClipConfig.from_dict(raw)


# ----------------------------------------------------------------------------------- events -> CLIP images
def clip_images(frames: Tensor, image_size: int, count_threshold: float = 0.0) -> Tensor:
    """``[N, T, 2, H, W]`` count frames -> ``[N*T, 3, S, S]`` CLIP inputs (frame-major within each sample).

    Official NeuroCLIP preprocessing: grey rendering (background 127, channel 0 -> 255, channel 1 -> 0), bilinear
    resize to ``S = image_size``, the grey value replicated to 3 channels, scaled ``img / 255 - 0.5`` (no CLIP
    mean/std normalisation)."""
    if frames.ndim != 5 or frames.shape[2] != 2:
        raise ValueError(f"frames must be [N, T, 2, H, W], got shape {tuple(frames.shape)}")
    N, T, _, H, W = frames.shape
    grey = data_mod.render_grey(frames, count_threshold)
    assert isinstance(grey, Tensor)
    img = grey.reshape(N * T, 1, H, W).float()
    if (H, W) != (image_size, image_size):
        img = F.interpolate(img, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return (img / 255.0 - 0.5).expand(-1, 3, -1, -1)


# ---------------------------------------------------------------------------------------- feature cache
def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(fd)
    try:
        named: dict[str, Any] = arrays
        with open(tmp, "wb") as f:
            np.savez(f, **named)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class FeatureStore:
    """Per-frame CLIP features ``[T, D]`` of the samples of one split, each computed once.

    The ``.npz`` file (``<cache>/neuroclip/clipfeat-<data>-<split>-<hash>.npz``) holds the split's labels and
    class names, the indices encoded so far and their features; asking for new indices encodes only those.
    The hash covers the CLIP fingerprint, dataset name/root/limit/options, T, the count threshold, the image
    size and the rendering version. ``cache_dir=None`` keeps everything in memory. ``encoded`` counts the
    samples this store sent through the image encoder.
    """

    def __init__(self, cfg: NeuroClipConfig, clip: ClipEncoder, split: str):
        self.cfg, self.clip, self.split = cfg, clip, split
        key = {"v": 1, "clip": clip.fingerprint, "data": cfg.data, "root": cfg.root, "split": split,
               "limit": cfg.limit, "options": {**cfg.data_options, "T": cfg.T},
               "count_threshold": float(cfg.count_threshold), "image_size": int(clip.image_size),
               "render": _RENDER_VERSION}
        cache = _cache_dir(cfg.cache_dir)
        self.path = None if cache is None else cache / f"clipfeat-{cfg.data}-{split}-{settings_hash(key)}.npz"
        self._data: Any = None
        self.encoded = 0
        self.y: np.ndarray | None = None
        self.classes: list[str] = []
        self.idx = np.zeros(0, np.int64)
        self.feats = np.zeros((0, cfg.T, int(clip.feature_dim)), np.float32)
        if self.path is not None and self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as z:
                    self.y, self.classes = z["y"], [str(c) for c in z["classes"]]
                    self.idx, self.feats = z["idx"], z["feats"]
            except (OSError, ValueError, KeyError, EOFError):
                self.y = None  # unreadable entry: start over

    def _split(self) -> Any:
        if self._data is None:
            c = self.cfg
            if c.data not in data_mod.REGISTRY:
                raise ValueError(f"unknown dataset {c.data!r}; registered: {', '.join(data_mod.list_datasets())}")
            kind = data_mod.REGISTRY[c.data].kind
            if kind != "events":
                events = [n for n in data_mod.list_datasets() if data_mod.REGISTRY[n].kind == "events"]
                raise ValueError(f"NeuroCLIP needs an event dataset; {c.data!r} is {kind!r} (event datasets: "
                                 f"{', '.join(events)})")
            self._data = data_mod.get(c.data, self.split, root=c.root, limit=c.limit, **{**c.data_options, "T": c.T})
        return self._data

    def labels(self) -> tuple[np.ndarray, list[str]]:
        """Labels ``[N]`` and class names of the split (loads the data only when not cached)."""
        if self.y is None:
            d = self._split()
            self.y, self.classes = d.y.numpy().astype(np.int64), list(d.classes)
            self._save()
        return self.y, self.classes

    def features(self, indices: np.ndarray) -> Tensor:
        """``[len(indices), T, D]`` float32 features (encodes the indices not yet stored)."""
        self.labels()
        indices = np.asarray(indices, np.int64)
        missing = np.setdiff1d(indices, self.idx)
        if len(missing):
            x = self._split().x
            D, T, S = int(self.clip.feature_dim), self.cfg.T, int(self.clip.image_size)
            if x.shape[1] != T:
                raise ValueError(f"{self.cfg.data} gave {x.shape[1]} frames per sample, expected T={T}")
            new = np.empty((len(missing), T, D), np.float32)
            bs = self.cfg.encode_batch_size
            for a in range(0, len(missing), bs):
                sel = torch.from_numpy(missing[a:a + bs])
                f = self.clip.encode_images(clip_images(x[sel], S, self.cfg.count_threshold))
                new[a:a + len(sel)] = f.reshape(len(sel), T, D).numpy()
                self.encoded += len(sel)
            idx = np.concatenate([self.idx, missing])
            order = np.argsort(idx, kind="stable")
            self.idx, self.feats = idx[order], np.concatenate([self.feats, new])[order]
            self._save()
        pos = np.searchsorted(self.idx, indices)
        return torch.from_numpy(self.feats[pos])

    def _save(self) -> None:
        if self.path is None or self.y is None:
            return
        _atomic_savez(self.path, {"y": self.y, "classes": np.asarray(self.classes, dtype=str), "idx": self.idx,
                                  "feats": self.feats})


def _cache_dir(setting: str | None) -> Path | None:
    if setting is None:
        return None
    return cache_home() / "neuroclip" if setting == "auto" else Path(setting).expanduser()


# ------------------------------------------------------------------------------------- splits, sampler
def per_class_sample(y: np.ndarray, n: int, seed: int, pool: np.ndarray | None = None,
                     what: str = "samples") -> np.ndarray:
    """Exactly ``n`` indices of every class (in ``0..max(y)``), drawn without replacement from ``pool``
    (default: all indices) with a generator seeded by ``seed``; sorted. A class with fewer than ``n`` candidates
    raises a ``ValueError`` naming it."""
    y = np.asarray(y)
    pool = np.arange(len(y)) if pool is None else np.asarray(pool, np.int64)
    rng = np.random.default_rng(seed)
    picked = []
    for c in range(int(y.max()) + 1 if len(y) else 0):
        cand = pool[y[pool] == c]
        if len(cand) < n:
            raise ValueError(f"class {c} has only {len(cand)} candidate samples for {n} {what} per class; "
                             f"raise limit (the first N samples are used) or lower the number")
        picked.append(rng.choice(cand, size=n, replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def split_train_val(y: np.ndarray, val_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_pool, val)``: ``val_per_class`` indices per class (seeded) held out of the training split."""
    val = per_class_sample(y, val_per_class, seed, what="validation samples")
    pool = np.setdiff1d(np.arange(len(y)), val)
    return pool, val


def kshot_indices(y: np.ndarray, shots: int, seed: int, pool: np.ndarray) -> np.ndarray:
    """The K-shot training set: exactly ``shots`` indices per class from ``pool`` (seeded)."""
    return per_class_sample(y, shots, seed + 1, pool, what="shots")


# --------------------------------------------------------------------------------------- weight search
def search_frame_weights(features: Tensor, y: Tensor, text: Tensor, grid: list[float] | tuple[float, ...],
                         chunk_elems: int = 1 << 23) -> tuple[Tensor, float]:
    """Exhaustive search of per-frame weights ``w in grid^T`` maximising the accuracy of the weighted zero-shot
    logits ``sum_t w_t cos(f_t, e_c)`` on ``features[T, N, D]`` / labels ``y[N]`` (use validation data).

    Combinations are visited in nested-loop order (frame 1 outermost) and the first with the highest accuracy is
    kept, as the official search does; ``len(grid) ** T`` combinations (4^10 for the official setting).
    Returns ``(weights[T], accuracy)``."""
    cos = frame_cosines(features, text)  # [T, N, C]
    T, N, C = cos.shape
    g = torch.as_tensor([float(w) for w in grid], dtype=cos.dtype)
    G = len(g)
    total = G ** T
    place = torch.tensor([G ** (T - 1 - t) for t in range(T)], dtype=torch.long)
    step = max(1, chunk_elems // max(1, N * C))
    best_acc, best_id = -1, 0
    y = y.to(torch.long)
    for start in range(0, total, step):
        ids = torch.arange(start, min(start + step, total), dtype=torch.long)
        W = g[(ids[:, None] // place) % G]  # [M, T]
        logits = torch.einsum("mt,tnc->mnc", W, cos)
        correct = (logits.argmax(-1) == y).sum(-1)
        m = int(correct.max())
        if m > best_acc:
            best_acc, best_id = m, int(ids[int((correct == m).nonzero()[0])])
    weights = g[(torch.tensor(best_id) // place) % G]
    return weights, best_acc / max(1, N)


# -------------------------------------------------------------------------------------------- protocols
def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _accuracy(logits: Tensor, y: Tensor) -> float:
    return int((logits.argmax(1) == y).sum()) / len(y) if len(y) else float("nan")


def _text_features(cfg: NeuroClipConfig, clip: ClipEncoder, classes: list[str]) -> tuple[Tensor, str]:
    template = cfg.prompt or prompt_template(cfg.data)
    return clip.encode_text(class_prompts(classes, template)).float(), template


def lr_for_epoch(cfg: NeuroClipConfig, epoch: int) -> float:
    """Per-epoch learning rate (Dassl's constant warm-up then cosine): ``warmup_lr`` for the first
    ``warmup_epochs`` epochs, then ``lr (1 + cos(pi e / E)) / 2`` for epoch ``e`` (0-based) of ``E``."""
    if epoch < cfg.warmup_epochs:
        return cfg.warmup_lr
    return cfg.lr * (1 + math.cos(math.pi * epoch / cfg.epochs)) / 2


def _write_run(out: Path, cfg: NeuroClipConfig, metrics: dict[str, Any], report: list[str]) -> None:
    from ..runs import save_json

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    save_json(out / "metrics.json", metrics)
    (out / "report.md").write_text("\n".join(report) + "\n")


def _pct(v: float | None) -> str:
    return "n/a" if v is None or v != v else f"{100 * v:.2f} %"


def _header(cfg: NeuroClipConfig, clip: ClipEncoder, template: str, title: str) -> list[str]:
    sim = cfg.data in data_mod.REGISTRY and data_mod.REGISTRY[cfg.data].simulated
    lines = [f"# NeuroCLIP {title}: {cfg.data}", "",
             f"CLIP: `{clip.fingerprint.get('source')}` (image size {clip.image_size}, feature size "
             f"{clip.feature_dim}); T = {cfg.T} frames by equal event count; count threshold > {cfg.count_threshold}; "
             f"prompt `{template}`.", ""]
    if sim:
        lines += ["Data are **simulated** events (not the real recordings).", ""]
    lines += ["Accuracies depend entirely on the CLIP weights: a randomly initialised CLIP gives chance-level "
              "numbers. Model choices use a validation split carved from the training data; the test split is "
              "evaluated once (docs/methods/neuroclip.md).", ""]
    return lines


def run_zeroshot(cfg: NeuroClipConfig, clip: ClipEncoder, out: str | Path | None = None) -> dict[str, Any]:
    """Zero-shot NeuroCLIP: uniform frame weights, and (``cfg.search``) weights searched on a validation split of
    the training data. Writes the run directory when ``out`` is given; returns the metrics."""
    t0 = time.perf_counter()
    test = FeatureStore(cfg, clip, "test")
    y_test_np, classes = test.labels()
    text, template = _text_features(cfg, clip, classes)
    f_test = test.features(np.arange(len(y_test_np))).transpose(0, 1)  # [T, N, D]
    y_test = torch.from_numpy(y_test_np)
    acc_uniform = _accuracy(zero_shot_logits(f_test, text, clip.logit_scale), y_test)
    metrics: dict[str, Any] = {
        "protocol": "zeroshot", "dataset": cfg.data, "clip": clip.fingerprint.get("source"), "T": cfg.T,
        "classes": classes, "prompt": template, "test_samples": len(y_test_np), "test_acc_uniform": acc_uniform,
        "test_acc": acc_uniform, "frame_weights": [1.0] * cfg.T,
    }
    encoded = test.encoded
    val_idx: list[int] = []
    if cfg.search:
        train = FeatureStore(cfg, clip, "train")
        y_tr, _ = train.labels()
        _, val = split_train_val(y_tr, cfg.val_size(), cfg.seed)
        f_val = train.features(val).transpose(0, 1)
        y_val = torch.from_numpy(y_tr[val])
        w, val_acc = search_frame_weights(f_val, y_val, text, cfg.search_grid)
        encoded += train.encoded
        val_idx = val.tolist()
        metrics.update(
            val_samples=len(val), val_acc_uniform=_accuracy(zero_shot_logits(f_val, text), y_val),
            val_acc_searched=val_acc, frame_weights=[float(v) for v in w],
            test_acc=_accuracy(zero_shot_logits(f_test, text, clip.logit_scale, w), y_test),
        )
    metrics.update(encoded_samples=encoded, seconds=time.perf_counter() - t0)
    if out is not None:
        lines = _header(cfg, clip, template, "zero-shot") + [
            "| metric | value |", "|---|---|",
            f"| test accuracy, uniform frame weights | {_pct(metrics['test_acc_uniform'])} |"]
        if cfg.search:
            lines += [f"| validation accuracy, uniform / searched weights | {_pct(metrics['val_acc_uniform'])} / "
                      f"{_pct(metrics['val_acc_searched'])} |",
                      f"| test accuracy, searched frame weights | {_pct(metrics['test_acc'])} |",
                      f"| frame weights (searched on {metrics['val_samples']} validation samples) | "
                      f"{', '.join(f'{v:g}' for v in metrics['frame_weights'])} |"]
        lines += [f"| test samples | {metrics['test_samples']} |"]
        _write_run(Path(out), cfg, metrics, lines)
        if cfg.search:
            from ..runs import save_json

            save_json(Path(out) / "splits.json", {"split": "train", "val": val_idx})
    return metrics


def _batches(n: int, batch_size: int, gen: torch.Generator) -> list[Tensor]:
    """Shuffled mini-batches; the last partial batch is dropped when at least one full batch exists (Dassl's
    ``drop_last`` for training), and a batch of one sample never forms (BatchNorm needs two)."""
    perm = torch.randperm(n, generator=gen)
    chunks = list(perm.split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) < batch_size:
        chunks = chunks[:-1]
    return [c for c in chunks if len(c) >= 2]


def _predict(model: torch.nn.Module, f: Tensor, batch_size: int, device: torch.device) -> Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(f[:, a:a + batch_size].to(device)).cpu() for a in range(0, f.shape[1], batch_size)])


def run_fewshot(cfg: NeuroClipConfig, clip: ClipEncoder, out: str | Path | None = None,
                verbose: bool = False) -> dict[str, Any]:
    """Few-shot NeuroCLIP: train the inter-timestep adapter on K shots per class (CLIP frozen, features cached),
    pick the epoch with the best validation accuracy (validation split from the training data, disjoint from the
    shots), then evaluate the test split once. Writes the run directory when ``out`` is given."""
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    device = _device(cfg.device)
    train = FeatureStore(cfg, clip, "train")
    y_tr, classes = train.labels()
    pool, val = split_train_val(y_tr, cfg.val_size(), cfg.seed)
    shots = kshot_indices(y_tr, cfg.shots, cfg.seed, pool)
    text, template = _text_features(cfg, clip, classes)
    f_shot, y_shot = train.features(shots).transpose(0, 1), torch.from_numpy(y_tr[shots])
    f_val, y_val = train.features(val).transpose(0, 1), torch.from_numpy(y_tr[val])
    adapter = InterTimestepAdapter(int(clip.feature_dim), cfg.reduction, cfg.ratio, cfg.dropout,
                                   activation=cfg.adapter)  # type: ignore[arg-type]
    model = FewShotHead(adapter, text, clip.logit_scale).to(device)
    opt = torch.optim.SGD(adapter.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    best_acc, best_epoch, best_state = -1.0, 0, copy.deepcopy(adapter.state_dict())
    history = []
    for epoch in range(cfg.epochs):
        lr = lr_for_epoch(cfg, epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        loss_sum, seen = 0.0, 0
        for b in _batches(len(y_shot), cfg.batch_size, gen):
            logits = model(f_shot[:, b].to(device))
            loss = F.cross_entropy(logits, y_shot[b].to(device), label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum, seen = loss_sum + float(loss.detach()) * len(b), seen + len(b)
        val_acc = _accuracy(_predict(model, f_val, cfg.eval_batch_size, device), y_val)
        if val_acc > best_acc:
            best_acc, best_epoch, best_state = val_acc, epoch + 1, copy.deepcopy(adapter.state_dict())
        history.append({"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / max(1, seen), "val_acc": val_acc})
        if verbose:
            print(f"epoch {epoch + 1}/{cfg.epochs}  lr {lr:.3g}  loss {history[-1]['train_loss']:.4f}  "
                  f"val {100 * val_acc:.2f} %")
    adapter.load_state_dict(best_state)
    test = FeatureStore(cfg, clip, "test")
    y_test_np, _ = test.labels()
    f_test, y_test = test.features(np.arange(len(y_test_np))).transpose(0, 1), torch.from_numpy(y_test_np)
    test_acc = _accuracy(_predict(model, f_test, cfg.eval_batch_size, device), y_test)
    zs_acc = _accuracy(zero_shot_logits(f_test, text, clip.logit_scale), y_test)
    metrics: dict[str, Any] = {
        "protocol": "fewshot", "dataset": cfg.data, "clip": clip.fingerprint.get("source"), "T": cfg.T,
        "shots": cfg.shots, "adapter": cfg.adapter, "classes": classes, "prompt": template,
        "train_samples": len(shots), "val_samples": len(val), "test_samples": len(y_test_np),
        "epochs": cfg.epochs, "best_epoch": best_epoch, "best_val_acc": best_acc, "test_acc": test_acc,
        "zeroshot_test_acc": zs_acc, "adapter_params": sum(p.numel() for p in adapter.parameters()),
        "encoded_samples": train.encoded + test.encoded, "seconds": time.perf_counter() - t0,
    }
    if out is not None:
        run = Path(out)
        run.mkdir(parents=True, exist_ok=True)
        from safetensors.torch import save_file

        from ..runs import save_json

        save_file({k: v.detach().cpu().contiguous() for k, v in adapter.state_dict().items()},
                  str(run / "adapter.safetensors"))
        save_json(run / "splits.json", {"split": "train", "shots": shots.tolist(), "val": val.tolist()})
        with (run / "metrics.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(history[0]))
            w.writeheader()
            w.writerows(history)
        name = "spiking (LIF)" if cfg.adapter == "spiking" else "ANN (ReLU) baseline"
        lines = _header(cfg, clip, template, f"{cfg.shots}-shot") + [
            "| metric | value |", "|---|---|",
            f"| adapter | {name}, {metrics['adapter_params']:,} parameters |",
            f"| shots per class / validation per class | {cfg.shots} / {cfg.val_size()} |",
            f"| best epoch (by validation accuracy) | {best_epoch} of {cfg.epochs} |",
            f"| best validation accuracy | {_pct(best_acc)} |",
            f"| **test accuracy** (evaluated once) | {_pct(test_acc)} |",
            f"| zero-shot test accuracy (same features, uniform weights) | {_pct(zs_acc)} |",
            f"| test samples | {len(y_test_np)} |", "",
            "Per-epoch learning rate, training loss and validation accuracy: `metrics.csv`; adapter weights: "
            "`adapter.safetensors`; indices of the shots and the validation samples in the training split: "
            "`splits.json`."]
        _write_run(run, cfg, metrics, lines)
    return metrics


def run(cfg: NeuroClipConfig, clip: ClipEncoder, out: str | Path | None = None,
        verbose: bool = False) -> dict[str, Any]:
    """:func:`run_zeroshot` or :func:`run_fewshot` according to ``cfg.protocol``."""
    if cfg.protocol == "zeroshot":
        return run_zeroshot(cfg, clip, out)
    return run_fewshot(cfg, clip, out, verbose)

