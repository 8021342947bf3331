"""PNG figures of a :class:`~spikeforge.analysis.MonitorResult` (matplotlib, Agg backend, imported lazily).

* :func:`plot_membrane_histograms` — one panel per spiking layer: histogram of the sampled membrane values that
  were compared with the threshold, threshold marked (``±V_th`` for ternary neurons; a shaded band
  ``[min, max]`` for per-channel/per-element thresholds). This is the distribution RMP-Loss (arXiv:2308.06787) and
  MPBN (arXiv:2308.08359) reshape.
* :func:`plot_firing_rates` — mean firing rate per layer (bars), the −1 share stacked for ternary layers.
* :func:`plot_raster` — spike trains of a few neurons of the first sample per layer (+1 dots, −1 crosses).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .monitor import MonitorResult

__all__ = ["plot_membrane_histograms", "plot_firing_rates", "plot_raster"]


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
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return p


def plot_membrane_histograms(result: Any, path: str | os.PathLike[str], *, bins: int = 60,
                             layers: list[str] | None = None) -> Path:
    """Histogram of sampled membrane potentials per spiking layer with the threshold(s) marked; returns the path."""
    res = _result(result)
    names = _pick(res, layers)
    plt = _plt()
    fig, axes = _grid(plt, len(names), (3.6, 2.8))
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
                ax.axvspan(a, b, color="tab:red", alpha=0.2, label="V_th range" if sgn > 0 else None)
            else:
                ax.axvline(a, color="tab:red", ls="--", label="V_th" if sgn > 0 else None)
        ax.set_title(f"{name} ({rec.spike}, n={rec.membrane_seen:,})", fontsize=8)
        ax.set_xlabel("membrane potential u", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    return _save(plt, fig, path)


def plot_firing_rates(result: Any, path: str | os.PathLike[str], *, layers: list[str] | None = None) -> Path:
    """Bar chart of the mean firing rate per spiking layer (−1 share hatched for ternary layers)."""
    res = _result(result)
    names = _pick(res, layers)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(names) + 2), 3.2))
    rates = [res.neurons[n].rate for n in names]
    neg = [res.neurons[n].rate * res.neurons[n].negative_fraction for n in names]
    xs = list(range(len(names)))
    ax.bar(xs, [r - m for r, m in zip(rates, neg)], color="tab:blue", label="+1 spikes")
    if any(neg):
        ax.bar(xs, neg, bottom=[r - m for r, m in zip(rates, neg)], color="tab:orange", hatch="//",
               label="−1 spikes")
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("spikes / neuron / step")
    ax.set_title(f"firing rate per layer ({res.samples} samples, T={res.time_steps:g})", fontsize=9)
    ax.legend(fontsize=7)
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
