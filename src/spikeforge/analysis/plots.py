"""PNG figures of a :class:`~spikeforge.analysis.MonitorResult` (matplotlib, Agg backend, imported lazily).

* :func:`plot_membrane_histograms` — one panel per spiking layer: histogram of the sampled membrane values that
  were compared with the threshold, threshold marked (``±V_th`` for ternary neurons; a shaded band
  ``[min, max]`` for per-channel/per-element thresholds). This is the distribution RMP-Loss (arXiv:2308.06787) and
  MPBN (arXiv:2308.08359) reshape.
* :func:`plot_firing_rates` — mean firing rate per layer (bars), the −1 share stacked for ternary layers.
* :func:`plot_raster` — spike trains of a few neurons of the first sample per layer (+1 dots, −1 crosses).
* :func:`plot_confusion` — a confusion matrix (rows: true class, columns: predicted class).

``labels`` maps a recorded layer name to the text shown for it (default: the qualified module name).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .monitor import MonitorResult

__all__ = ["plot_membrane_histograms", "plot_firing_rates", "plot_raster", "plot_confusion"]


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'spikeforge[viz]'") from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _result(obj: Any) -> MonitorResult:
    res = getattr(obj, "monitor", obj)  # an EnergyReport carries its MonitorResult
    if not isinstance(res, MonitorResult):
        raise TypeError(f"expected a MonitorResult or an EnergyReport with one, got {type(obj).__name__}")
    if not res.neurons:
        raise ValueError("the monitor recorded no spiking layer (did the model run while it was attached?)")
    return res


def _pick(res: MonitorResult, layers: list[str] | None) -> list[str]:
    if layers is None:
        return list(res.neurons)
    missing = [n for n in layers if n not in res.neurons]
    if missing:
        raise ValueError(f"no recorded spiking layer {missing}; recorded: {list(res.neurons)}")
    return list(layers)


def _grid(plt: Any, n: int, cell: tuple[float, float]) -> tuple[Any, list[Any]]:
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cell[0] * cols, cell[1] * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _save(plt: Any, fig: Any, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(p, dpi=100, bbox_inches="tight")  # keeps legends placed outside the axes
    plt.close(fig)
    return p


def plot_membrane_histograms(result: Any, path: str | os.PathLike[str], *, bins: int = 60,
                             layers: list[str] | None = None, labels: dict[str, str] | None = None) -> Path:
    """Histogram of sampled membrane potentials per spiking layer with the threshold(s) marked; returns the path.

    Each panel states how many values it plots out of how many the monitor saw (a uniform reservoir sample)."""
    res = _result(result)
    names = _pick(res, layers)
    plt = _plt()
    fig, axes = _grid(plt, len(names), (3.6, 2.9))
    handles: dict[str, Any] = {}
    for ax, name in zip(axes, names):
        rec = res.neurons[name]
        v = rec.membrane.float()
        if v.numel():
            ax.hist(v.numpy(), bins=bins, color="tab:blue", alpha=0.8)
        else:
            ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
        lo, hi = rec.threshold_min, rec.threshold_max
        signs = (1.0, -1.0) if rec.spike == "ternary" else (1.0,)
        for sgn in signs:
            a, b = sorted((sgn * lo, sgn * hi))
            if hi > lo:
                h = ax.axvspan(a, b, color="tab:red", alpha=0.2)
                handles.setdefault("threshold range [min, max]" + (" and its negative" if len(signs) > 1 else ""), h)
            else:
                h = ax.axvline(a, color="tab:red", ls="--")
                handles.setdefault("threshold V_th" + (" and −V_th" if len(signs) > 1 else ""), h)
        title = (labels or {}).get(name, name)
        ax.set_title(f"{title}\n{rec.spike}, n = {v.numel():,} plotted of {rec.membrane_seen:,}", fontsize=8)
        ax.set_xlabel("membrane potential before firing", fontsize=8)
        ax.set_ylabel("count", fontsize=8)
        ax.tick_params(labelsize=7)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), fontsize=8,
                   bbox_to_anchor=(0.5, -0.04), frameon=False)
    return _save(plt, fig, path)


def plot_firing_rates(result: Any, path: str | os.PathLike[str], *, layers: list[str] | None = None,
                      labels: dict[str, str] | None = None) -> Path:
    """Bar chart of the mean firing rate per spiking layer (−1 share hatched for ternary layers); the legend sits
    outside the axes so it never covers a bar."""
    res = _result(result)
    names = _pick(res, layers)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.5, 0.7 * len(names) + 2.5), 3.4))
    rates = [res.neurons[n].rate for n in names]
    neg = [res.neurons[n].rate * res.neurons[n].negative_fraction for n in names]
    xs = list(range(len(names)))
    ax.bar(xs, [r - m for r, m in zip(rates, neg)], color="tab:blue", label="+1 spikes")
    if any(neg):
        ax.bar(xs, neg, bottom=[r - m for r, m in zip(rates, neg)], color="tab:orange", hatch="//",
               label="−1 spikes")
    ax.set_xticks(xs)
    ax.set_xticklabels([(labels or {}).get(n, n) for n in names], rotation=30, ha="right", fontsize=7)
    ax.set_xlabel("spiking layer", fontsize=8)
    ax.set_ylabel("spikes / neuron / time step", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylim(0, max(rates + [1e-9]) * 1.15)
    ax.set_title(f"mean firing rate per layer ({res.samples:,} samples, T = {res.time_steps:g})", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(plt, fig, path)


def plot_confusion(matrix: Any, classes: list[str], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Confusion matrix ``matrix[true, predicted]`` (counts) as a PNG: row-normalised colours, counts written in
    the cells when there are at most 20 classes."""
    import numpy as np

    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(classes):
        raise ValueError(f"matrix must be [C, C] with C = len(classes) = {len(classes)}, got shape {m.shape}")
    plt = _plt()
    n = len(classes)
    size = min(12.0, max(4.0, 0.35 * n + 2.5))
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    rows = m.sum(1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("fraction of the true class", fontsize=8)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if m[i, j]:
                    ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=7,
                            color="white" if frac[i, j] > 0.5 else "black")
    ticks = list(range(n)) if n <= 40 else list(range(0, n, max(1, n // 20)))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    long_names = max((len(c) for c in classes), default=0) > 3
    ax.set_xticklabels([classes[i] for i in ticks], rotation=45 if long_names else 0,
                       ha="right" if long_names else "center", fontsize=8)
    ax.set_yticklabels([classes[i] for i in ticks], fontsize=8)
    ax.set_xlabel("predicted class", fontsize=8)
    ax.set_ylabel("true class", fontsize=8)
    ax.set_title(title or f"confusion matrix ({int(m.sum()):,} samples)", fontsize=9)
    return _save(plt, fig, path)


def plot_raster(result: Any, path: str | os.PathLike[str], *, layers: list[str] | None = None) -> Path:
    """Spike raster (time × neuron) of the recorded neurons of each layer, first sample of the first batch."""
    res = _result(result)
    names = [n for n in _pick(res, layers) if res.neurons[n].raster is not None]
    if not names:
        raise ValueError("no raster was recorded (Monitor(raster_neurons=0)?)")
    plt = _plt()
    fig, axes = _grid(plt, len(names), (3.6, 2.6))
    for ax, name in zip(axes, names):
        rec = res.neurons[name]
        r = rec.raster
        assert r is not None
        pos = (r > 0).nonzero()
        neg = (r < 0).nonzero()
        ax.scatter(pos[:, 0].numpy(), pos[:, 1].numpy(), marker="s", s=12, color="black", label="+1")
        if neg.numel():
            ax.scatter(neg[:, 0].numpy(), neg[:, 1].numpy(), marker="x", s=20, color="tab:red", label="−1")
            ax.legend(fontsize=7)
        ax.set_xlim(-0.5, r.shape[0] - 0.5)
        ax.set_ylim(-0.5, r.shape[1] - 0.5)
        ax.set_yticks(range(r.shape[1]))
        ax.set_yticklabels([str(i) for i in rec.raster_neurons], fontsize=5)
        ax.set_xlabel("time step", fontsize=8)
        ax.set_title(name, fontsize=8)
    return _save(plt, fig, path)
