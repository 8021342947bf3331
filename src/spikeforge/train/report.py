"""``report.md`` for a run directory: the metrics table, training curves, per-layer firing rates and membrane
potential histograms before firing (via :mod:`spikeforge.analysis`), and a short text summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ..runs import CheckpointError

__all__ = ["write_report", "read_history", "plot_curves", "summary_lines"]

_TABLE_KEYS = [
    ("test_acc", "test accuracy", "pct"), ("best_test_acc", "best test accuracy", "pct"),
    ("best_epoch", "best epoch", "int"), ("epochs", "epochs", "int"), ("T", "T (train)", "int"),
    ("eval_T", "T (test)", "int"), ("params", "parameters", "int"), ("train_seconds", "training time (s)", "f1"),
    ("fold_max_dev", "fold max deviation", "g"), ("mean_firing_rate", "mean firing rate", "f4"),
    ("sops", "SOPs / sample", "g"), ("macs", "MACs / sample", "g"), ("energy_pj", "energy / sample (pJ)", "g"),
    ("ann_energy_pj", "ANN energy / sample (pJ)", "g"),
]


def _fmt(v: Any, how: str) -> str:
    if v is None:
        return "n/a"
    if how == "pct":
        return f"{100 * float(v):.2f} %"
    if how == "int":
        return f"{int(v):,}"
    if how == "f1":
        return f"{float(v):.1f}"
    if how == "f4":
        return f"{float(v):.4f}"
    return f"{float(v):.4g}"


def read_history(run_dir: Path) -> list[dict[str, float]]:
    """Rows of ``metrics.csv`` as floats (empty cells skipped)."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    rows = []
    with path.open() as f:
        for r in csv.DictReader(f):
            rows.append({k: float(v) for k, v in r.items() if v not in ("", None)})
    return rows


def plot_curves(history: list[dict[str, float]], path: Path) -> Path:
    """Loss and accuracy per epoch (train and test) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(key: str) -> tuple[list[float], list[float]]:
        rows = [r for r in history if key in r]  # test columns are empty on epochs without evaluation
        return [r["epoch"] for r in rows], [r[key] for r in rows]

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    for key, label in (("train_loss", "train"), ("test_loss", "test")):
        xs, ys = series(key)
        if xs:
            a1.plot(xs, ys, marker="o", ms=3, label=label)
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.legend()
    for key, label in (("train_acc", "train"), ("test_acc", "test")):
        xs, ys = series(key)
        if xs:
            a2.plot(xs, [100 * y for y in ys], marker="o", ms=3, label=label)
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy (%)")
    a2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    out = [f"{metrics.get('model')} on {metrics.get('dataset')}: test accuracy {_fmt(metrics.get('test_acc'), 'pct')}"
           f" (best {_fmt(metrics.get('best_test_acc'), 'pct')}), {metrics.get('epochs')} epochs, "
           f"{_fmt(metrics.get('train_seconds'), 'f1')} s"]
    if metrics.get("fold_max_dev") is not None:
        out.append(f"folded: max deviation {_fmt(metrics['fold_max_dev'], 'g')}")
    elif metrics.get("fold_error"):
        out.append(f"fold failed: {metrics['fold_error']}")
    if metrics.get("energy_pj") is not None:
        ann = _fmt(metrics.get("ann_energy_pj"), "g")
        out.append(f"energy {_fmt(metrics['energy_pj'], 'g')} pJ/sample vs ANN {ann} pJ; mean firing rate "
                   f"{_fmt(metrics.get('mean_firing_rate'), 'f4')}")
    return out


def write_report(run_dir: str | Path, samples: int = 128) -> tuple[Path, list[str]]:
    """Write ``RUN/report.md`` (+ PNGs in ``RUN/report/``); returns its path and the summary lines.

    The firing-rate and membrane plots come from a fresh :func:`spikeforge.analysis.measure` of the final model on
    the first ``samples`` test samples (membrane = the value compared with the threshold, before firing).
    """
    run = Path(run_dir)
    mpath = run / "metrics.json"
    if not mpath.is_file():
        raise CheckpointError(f"{run} has no metrics.json: the run has not finished (train it, or resume it)")
    metrics = json.loads(mpath.read_text())
    figdir = run / "report"
    figdir.mkdir(exist_ok=True)
    lines = [f"# spikeforge run report: {run.name}", ""]
    if metrics.get("recipe"):
        lines += [f"Recipe: {metrics['recipe']}", ""]
    lines += ["| metric | value |", "|---|---|"]
    for key, label, how in _TABLE_KEYS:
        if key in metrics:
            lines.append(f"| {label} | {_fmt(metrics[key], how)} |")
    if metrics.get("T_sweep"):
        lines += ["", "## Accuracy per inference length T", "", "| T | test accuracy |", "|---|---|"]
        lines += [f"| {t} | {_fmt(a, 'pct')} |" for t, a in metrics["T_sweep"].items()]
    notes = list(metrics.get("notes", []))
    history = read_history(run)
    lines += ["", "## Training curves", ""]
    try:
        if history:
            plot_curves(history, figdir / "curves.png")
            lines.append("![training curves](report/curves.png)")
        else:
            lines.append("(no metrics.csv)")
    except ImportError:
        lines.append("(matplotlib is not installed: `pip install spikeforge[viz]`)")
    lines += _analysis_section(run, figdir, samples, notes)
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    out = run / "report.md"
    out.write_text("\n".join(lines) + "\n")
    return out, summary_lines(metrics)


def _analysis_section(run: Path, figdir: Path, samples: int, notes: list[str]) -> list[str]:
    lines = ["", "## Firing rates and membrane potentials", ""]
    from .. import data
    from ..analysis import plot_firing_rates, plot_membrane_histograms
    from ..runs import load_run
    from .finalize import measure_energy

    try:  # data readers and plots may need optional dependencies (e.g. matplotlib)
        model, cfg = load_run(run)
        d = cfg["data"]
        test = data.get(d["name"], "test", root=d.get("root"), limit=samples, **dict(d.get("options") or {}))
        report = measure_energy(model, test.x[:samples], int(cfg.get("eval_T") or cfg["T"]))
        plot_firing_rates(report, figdir / "firing_rates.png")
        plot_membrane_histograms(report, figdir / "membranes.png")
    except ImportError as exc:
        notes.append(f"plots skipped: {exc} (install spikeforge[viz])")
        return lines + ["(plots unavailable)"]
    rates = report.firing_rates
    lines += ["| spiking layer | firing rate | -1 share |", "|---|---|---|"]
    lines += [f"| {k} | {v:.4f} | {report.negative_fractions.get(k, 0.0):.3f} |" for k, v in rates.items()]
    lines += ["", "![firing rates](report/firing_rates.png)", "",
              "Membrane potential before firing (sampled), thresholds marked:", "",
              "![membrane histograms](report/membranes.png)"]
    return lines
