"""``report.md`` for a run directory, and a comparison of several runs.

The report holds the metrics table, the recipe's hyper-parameters, training curves, a confusion matrix with
per-class accuracy, the fold check (maximum deviation, spikes equal), the energy estimate with the constants used
(E_MAC, E_AC), and per-layer firing rates and membrane potential histograms before firing (via
:mod:`spikeforge.analysis`). Spiking layers are named by their qualified module names (``model.named_modules()``)
together with the synaptic layer that drives them. :func:`write_comparison` puts the metrics and the differing
hyper-parameters of several runs side by side.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..runs import CheckpointError

__all__ = ["write_report", "write_comparison", "read_history", "plot_curves", "summary_lines", "layer_labels",
           "flatten_config", "confusion_matrix"]

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
    from matplotlib.ticker import MaxNLocator

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
    a1.set_title("loss", fontsize=9)
    a1.legend(fontsize=8)
    for key, label in (("train_acc", "train"), ("test_acc", "test")):
        xs, ys = series(key)
        if xs:
            a2.plot(xs, [100 * y for y in ys], marker="o", ms=3, label=label)
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy (%)")
    a2.set_title("accuracy", fontsize=9)
    a2.legend(fontsize=8)
    for ax in (a1, a2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
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


# ------------------------------------------------------------------------------------------------ helpers
def _synapse_text(module: nn.Module) -> str | None:
    kind = type(module).__name__
    if isinstance(module, nn.modules.conv._ConvNd):
        return f"{kind} {module.in_channels}→{module.out_channels}"
    if isinstance(module, nn.Linear):
        return f"{kind} {module.in_features}→{module.out_features}"
    return None


def layer_labels(model: nn.Module) -> dict[str, str]:
    """``{qualified name: label}`` of every spiking layer: the name from ``model.named_modules()`` and the synaptic
    layer (conv/linear) that precedes it in module order, e.g. ``'2': '2 (after 0: Conv2d 1→32)'``."""
    from ..neurons import Neuron

    labels: dict[str, str] = {}
    last: str | None = None
    for name, module in model.named_modules():
        text = _synapse_text(module)
        if text is not None:
            last = f"{name}: {text}"
        elif isinstance(module, Neuron):
            labels[name] = f"{name} (after {last})" if last else name
    return labels


def flatten_config(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested recipe dict -> ``{dotted key: value}`` (the keys ``--set`` takes)."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten_config(v, key + "."))
        else:
            out[key] = v
    return out


def _value(v: Any) -> str:
    text = json.dumps(v, default=str) if not isinstance(v, str) else v
    return text.replace("|", "\\|") if text else '""'


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[C, C]`` counts, rows = true class, columns = predicted class."""
    idx = target.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _predict(model: nn.Module, cfg: Mapping[str, Any], x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    from ..encode import readout
    from .builders import build_objective, encode_input, input_kind

    objective = build_objective(cfg)
    kind = input_kind(model)
    T = int(cfg.get("eval_T") or cfg["T"])
    mode = getattr(objective, "readout", "mean")
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            out = objective.forward(model, encode_input(x[i:i + batch], kind, T))
            preds.append(readout(objective.logits(out).float(), mode).argmax(1))
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


# ------------------------------------------------------------------------------------------------ report
def write_report(run_dir: str | Path, samples: int = 128, eval_samples: int | None = 2000) -> tuple[Path, list[str]]:
    """Write ``RUN/report.md`` (+ PNGs in ``RUN/report/``); returns its path and the summary lines.

    Args:
        run_dir: a finished run directory (holding ``metrics.json`` and ``config.yaml``).
        samples: test samples for the firing-rate, membrane and energy measurement and the fold check (a fresh
            :func:`spikeforge.analysis.measure` of the final model; membrane = the value compared with the
            threshold, before firing).
        eval_samples: test samples for the confusion matrix and per-class accuracy (``None``: the whole split).
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
    lines += _hyper_section(run)
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
    lines += _analysis_sections(run, figdir, samples, eval_samples, notes)
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    out = run / "report.md"
    out.write_text("\n".join(lines) + "\n")
    return out, summary_lines(metrics)


def _hyper_section(run: Path) -> list[str]:
    from ..runs import read_config
    from .config import DEFAULTS

    try:
        cfg = read_config(run)
    except (CheckpointError, OSError, ValueError):
        return ["", "## Hyper-parameters", "", "(no config.yaml in the run directory)"]
    flat = flatten_config({k: v for k, v in cfg.items() if k != "description"})
    defaults = flatten_config(DEFAULTS)
    changed = [k for k in sorted(flat) if k not in defaults or defaults[k] != flat[k]]
    same = [k for k in sorted(flat) if k not in changed]
    lines = ["", "## Hyper-parameters", "",
             "The resolved recipe (`config.yaml`): the keys set by the recipe or `--set`, then the library defaults "
             "it kept (`spikeforge train --help-keys` lists every key).", "",
             "| key (set) | value |", "|---|---|"]
    lines += [f"| {k} | `{_value(flat[k])}` |" for k in changed]
    if same:
        lines += ["", f"<details><summary>{len(same)} keys at their defaults</summary>", "",
                  "| key (default) | value |", "|---|---|"]
        lines += [f"| {k} | `{_value(flat[k])}` |" for k in same]
        lines += ["", "</details>"]
    return lines


def _analysis_sections(run: Path, figdir: Path, samples: int, eval_samples: int | None,
                       notes: list[str]) -> list[str]:
    from .. import data
    from ..runs import load_run

    model, cfg = load_run(run)
    d = cfg["data"]
    opts = dict(d.get("options") or {})
    limits = [n for n in (eval_samples, d.get("limit")) if n is not None]  # data.limit also bounds the test split
    test = data.get(d["name"], "test", root=d.get("root"), limit=min(limits) if limits else None, **opts)
    lines = _confusion_section(model, cfg, test, figdir, min(limits) if limits else None, notes)
    x = test.x[:samples]
    lines += _fold_section(model, cfg, x)
    from ..analysis import plot_firing_rates, plot_membrane_histograms
    from .finalize import measure_energy

    report = measure_energy(model, x, int(cfg.get("eval_T") or cfg["T"]))
    lines += _energy_section(report, model)
    labels = layer_labels(model)
    lines += ["", "## Firing rates and membrane potentials", "",
              f"Measured on the first {report.samples:,} test samples at T = {report.time_steps:g}. Spiking layers "
              "are named by their qualified module name and the synaptic layer that drives them.", "",
              "| spiking layer | spike | neurons / sample | firing rate | −1 share |", "|---|---|---|---|---|"]
    mon = report.monitor
    for name, rate in report.firing_rates.items():
        rec = mon.neurons[name] if mon is not None else None
        kind = rec.spike if rec is not None else "?"
        count = f"{rec.num_neurons:,}" if rec is not None else "?"
        lines.append(f"| `{labels.get(name, name)}` | {kind} | {count} | {rate:.4f} | "
                     f"{report.negative_fractions.get(name, 0.0):.3f} |")
    try:
        plot_firing_rates(report, figdir / "firing_rates.png", labels=labels)
        plot_membrane_histograms(report, figdir / "membranes.png", labels=labels)
    except ImportError as exc:
        notes.append(f"plots skipped: {exc} (install spikeforge[viz])")
        return lines + ["", "(plots unavailable)"]
    lines += ["", "![firing rates](report/firing_rates.png)", "",
              "Membrane potential before firing, thresholds marked. Each panel plots a uniform sample of the values "
              "the monitor saw (n = plotted of total):", "", "![membrane histograms](report/membranes.png)"]
    return lines


def _confusion_section(model: nn.Module, cfg: Mapping[str, Any], test: Any, figdir: Path,
                       eval_samples: int | None, notes: list[str]) -> list[str]:
    n = len(test)
    pred = _predict(model, cfg, test.x)
    cm = confusion_matrix(pred, test.y, test.num_classes)
    classes = list(test.classes) or [str(i) for i in range(test.num_classes)]
    scope = f"the first {n:,} test samples" if eval_samples is not None and n == eval_samples else \
        f"all {n:,} test samples"
    acc = float(cm.diag().sum()) / max(1, n)
    lines = ["", "## Confusion matrix and per-class accuracy", "",
             f"On {scope} at T = {int(cfg.get('eval_T') or cfg['T'])}: accuracy {100 * acc:.2f} %.", "",
             "| class | samples | correct | accuracy | most confused with |", "|---|---|---|---|---|"]
    for i, name in enumerate(classes):
        total = int(cm[i].sum())
        right = int(cm[i, i])
        off = cm[i].clone()
        off[i] = 0
        worst = f"{classes[int(off.argmax())]} ({int(off.max())})" if int(off.max()) > 0 else "—"
        share = f"{100 * right / total:.1f} %" if total else "n/a"
        lines.append(f"| {name} | {total:,} | {right:,} | {share} | {worst} |")
    from ..analysis import plot_confusion

    try:  # matplotlib is optional ([viz])
        plot_confusion(cm.numpy(), classes, figdir / "confusion.png",
                       title=f"confusion matrix ({n:,} test samples)")
        lines += ["", "![confusion matrix](report/confusion.png)"]
    except ImportError as exc:
        notes.append(f"confusion plot skipped: {exc}")
    return lines


def _fold_section(model: nn.Module, cfg: Mapping[str, Any], x: torch.Tensor) -> list[str]:
    from .builders import encode_input, input_kind

    lines = ["", "## Fold check", ""]
    if not cfg.get("fold", {}).get("enabled", True):
        return lines + ["Folding is disabled in this recipe (`fold.enabled: false`)."]
    from ..folding import fold, verify_fold

    xin = encode_input(x, input_kind(model), int(cfg.get("eval_T") or cfg["T"]))
    try:
        folded = fold(model)
        rep = verify_fold(model, folded, xin)
    except Exception as exc:  # a model the fold rules do not cover: the report says so instead of failing
        return lines + [f"The fold failed: {type(exc).__name__}: {exc}"]
    rows = [("max deviation of the logits (relative, float64)", f"{float(getattr(rep, 'max_dev', rep)):.3g}"),
            ("spikes equal in every layer (float64)", str(getattr(rep, "spikes_equal", "n/a")))]
    for attr, label in (("spike_values_ok", "spike values plain ({0, 1} or {−1, 0, 1})"),
                        ("float32_spike_agreement", "spike agreement in float32"),
                        ("float32_prediction_agreement", "prediction agreement in float32")):
        if hasattr(rep, attr):
            v = getattr(rep, attr)
            rows.append((label, f"{v:.6f}" if isinstance(v, float) else str(v)))
    lines += [f"`spikeforge.fold` of the final model, checked by `verify_fold` on {x.shape[0]:,} test samples:", "",
              "| check | result |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    mismatch = {k: v for k, v in (getattr(rep, "layer_mismatch", None) or {}).items() if v}
    if mismatch:
        lines += ["", "Layers with differing spikes: " + ", ".join(f"`{k}` ({v})" for k, v in mismatch.items())]
    return lines


def _energy_section(report: Any, model: nn.Module) -> list[str]:
    modules = dict(model.named_modules())
    lines = ["", "## Energy estimate", "",
             f"E = E_MAC · MACs + E_AC · SOPs per sample with **E_MAC = {report.e_mac_pj:g} pJ** (32-bit float "
             f"multiply-add) and **E_AC = {report.e_ac_pj:g} pJ** (32-bit float add), 45 nm CMOS (Horowitz, ISSCC "
             "2014). Layers fed with spikes are charged SOPs, layers fed with real values (the encoding layer) "
             "dense MACs at every time step; the ANN reference is the same architecture evaluated once with dense "
             f"MACs. Measured on {report.samples:,} test samples at T = {report.time_steps:g}.", "",
             "| quantity | value |", "|---|---|",
             f"| SOPs / sample | {report.sops:.4g} |", f"| MACs / sample (charged) | {report.macs:.4g} |",
             f"| energy / sample | {report.energy_pj:.4g} pJ |",
             f"| ANN energy / sample | {report.ann_energy_pj:.4g} pJ |",
             f"| ANN / SNN energy | {report.energy_ratio:.3g} |", "",
             "| synaptic layer | type | input | SOPs / sample | MACs / sample | energy (pJ) |",
             "|---|---|---|---|---|---|"]
    for layer in report.layers:
        text = _synapse_text(modules[layer.name]) if layer.name in modules else None
        lines.append(f"| `{layer.name}` | {text or layer.layer_type} | {layer.mode} | {layer.sops:.4g} | "
                     f"{layer.macs:.4g} | {layer.energy_pj:.4g} |")
    return lines


# ------------------------------------------------------------------------------------------------ comparison
def write_comparison(run_dirs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> Path:
    """A Markdown table of the metrics of several finished runs side by side, followed by the hyper-parameters
    that differ between them; returns the path written."""
    from ..runs import read_config

    runs = [Path(r) for r in run_dirs]
    if len(runs) < 2:
        raise ValueError(f"a comparison needs at least two run directories, got {len(runs)}")
    metrics, configs = [], []
    for r in runs:
        mpath = r / "metrics.json"
        if not mpath.is_file():
            raise CheckpointError(f"{r} has no metrics.json: the run has not finished (train it, or resume it)")
        metrics.append(json.loads(mpath.read_text()))
        try:
            configs.append(flatten_config({k: v for k, v in read_config(r).items() if k != "description"}))
        except (CheckpointError, OSError, ValueError):
            configs.append({})
    names = _unique_names(runs)
    head = "| | " + " | ".join(f"[{n}]({_rel(r / 'report.md', Path(out).parent)})" for n, r in zip(names, runs))
    lines = [f"# spikeforge run comparison ({len(runs)} runs)", "", head + " |", "|---" * (len(runs) + 1) + "|"]
    for key, label, how in [("model", "model", "str"), ("dataset", "dataset", "str")] + _TABLE_KEYS:
        if any(key in m for m in metrics):
            cells = [str(m.get(key, "n/a")) if how == "str" else _fmt(m.get(key), how) for m in metrics]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    keys = sorted(set().union(*configs))
    differ = [k for k in keys if len({json.dumps(c.get(k), default=str, sort_keys=True) for c in configs}) > 1]
    lines += ["", "## Hyper-parameters that differ", ""]
    if differ:
        lines += ["| key | " + " | ".join(names) + " |", "|---" * (len(runs) + 1) + "|"]
        lines += [f"| {k} | " + " | ".join(f"`{_value(c[k])}`" if k in c else "—" for c in configs) + " |"
                  for k in differ]
    else:
        lines.append("(none: the runs share every hyper-parameter)")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _unique_names(runs: list[Path]) -> list[str]:
    names = [r.name for r in runs]
    if len(set(names)) == len(names):
        return names
    return [str(r) for r in runs]


def _rel(target: Path, start: Path) -> str:
    try:
        return os.path.relpath(target.resolve(), start.resolve())
    except ValueError:  # different drives (Windows)
        return str(target.resolve())
