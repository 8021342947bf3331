"""``docs/results.md`` from the study's result files alone (``results/*.json``), plus optional plots.

Every number in the report is computed here from the result files: tables of mean ± std over seeds, the paired
difference to the part's baseline with its 95 % t interval (:mod:`.stats`), folded vs unfolded accuracy, energy
and firing rates, training time and peak memory. The claims, labels and cut sizes come from :mod:`.plan` (the
study's definition, not its results). A hand-written ``notes.md`` beside the result files (findings, checks of
disagreements) is appended verbatim.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .plan import CUTS, PARTS, Method, Part
from .stats import mean_std, paired_difference, verdict

__all__ = ["load_results", "render", "write_report", "write_plots", "plot_names", "fold_exact"]

COMMAND = "spikeforge study --seeds 3 --out results --report docs/results.md"


def load_results(folder: str | Path) -> list[dict[str, Any]]:
    """Every ``*.json`` result in ``folder`` (sorted by name); a file that is not a study result is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no result folder {folder}")
    out = []
    for p in sorted(folder.glob("*.json")):
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p} is not valid JSON: {exc}") from None
        missing = [k for k in ("run_id", "part", "method", "T", "seed", "metrics", "timings") if k not in data]
        if missing:
            raise ValueError(f"{p} is not a study result (missing {missing})")
        out.append(data)
    return out


def _pct(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{100 * v:.{digits}f}"


def _ms(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    if not values:
        return "–"
    m, sd = mean_std(values)
    return f"{scale * m:.{digits}f}" + ("" if sd is None else f" ± {scale * sd:.{digits}f}")


def _diff_text(d: Any) -> str:
    if d is None:
        return "–"
    if d.low is None:
        return f"{100 * d.mean:+.2f} (1 seed)"
    return f"{100 * d.mean:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}]"


def _by(results: Iterable[dict[str, Any]]) -> dict[tuple[str, str, int], dict[int, dict[str, Any]]]:
    table: dict[tuple[str, str, int], dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in results:
        table[(r["part"], r["method"], int(r["T"]))][int(r["seed"])] = r
    return table


def _acc(runs: dict[int, dict[str, Any]], key: str = "test_acc") -> dict[int, float]:
    return {s: float(r["metrics"][key]) for s, r in runs.items() if r["metrics"].get(key) is not None}


def _sweep(runs: dict[int, dict[str, Any]], T: int) -> dict[int, float]:
    out = {}
    for s, r in runs.items():
        v = (r["metrics"].get("T_sweep") or {}).get(str(T))
        if v is not None:
            out[s] = float(v)
    return out


def fold_exact(m: dict[str, Any]) -> bool | None:
    """The fold kept every prediction: in float32, or else in float64 (model and fold), where float32 threshold
    ties vanish; None when the run was not folded."""
    if m.get("folded_test_acc") is None:
        return None
    if m.get("fold_predictions_differ", None) == 0 or (
            "fold_predictions_differ" not in m and m["folded_test_acc"] == m["test_acc"]):
        return True
    f64 = m.get("fold_check_float64")
    return isinstance(f64, dict) and f64.get("predictions_differ") == 0


def _fold_cell(runs: dict[int, dict[str, Any]]) -> str:
    checks = [(fold_exact(r["metrics"]), r["metrics"]) for r in runs.values()]
    if all(c is None for c, _ in checks):
        return "n/a"
    if not all(c for c, _ in checks):
        return f"**no** ({sum(1 for c, _ in checks if c)}/{len(checks)})"
    ties = sum(int(m.get("fold_predictions_differ") or 0) for _, m in checks)
    return "yes" if ties == 0 else f"yes ({ties} float32 tie{'s' if ties > 1 else ''})"


def _mean(runs: dict[int, dict[str, Any]], key: str, section: str = "metrics") -> float | None:
    """Mean over seeds of ``result[section][key]`` (None when no run has it)."""
    vals = [float(r[section][key]) for r in runs.values() if r[section].get(key) is not None]
    return sum(vals) / len(vals) if vals else None


def _mean_metric(runs: dict[int, dict[str, Any]], key: str) -> float | None:
    return _mean(runs, key, "metrics")


def _mean_timing(runs: dict[int, dict[str, Any]], key: str) -> float | None:
    return _mean(runs, key, "timings")


def _num(v: float | None, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def _methods_in(part: Part, table: dict[tuple[str, str, int], Any]) -> list[Method]:
    return [m for m in part.methods if any(k[0] == part.name and k[1] == m.name for k in table)]


def _claims_rows(part: Part, table: dict[tuple[str, str, int], dict[int, dict[str, Any]]], T: int,
                 key: str = "test_acc", base_T: int | None = None) -> list[tuple[Method, Any, str]]:
    base = table.get((part.name, part.baseline, base_T if base_T is not None else T), {})
    rows = []
    for m in _methods_in(part, table):
        runs = table.get((part.name, m.name, T))
        if not runs or m.name == part.baseline:
            continue
        d = paired_difference(_acc(runs, key) if key == "test_acc" else _sweep(runs, int(key)),
                              _acc(base) if base else {})
        rows.append((m, d, verdict(d, m.expect)))
    return rows


def _static_like_section(part: Part, table: dict[tuple[str, str, int], dict[int, dict[str, Any]]],
                         plots: dict[str, str], summary: list[str]) -> list[str]:
    lines: list[str] = []
    Ts = sorted({k[2] for k in table if k[0] == part.name})
    for T in Ts:
        base = table.get((part.name, part.baseline, T), {})
        lines += [f"### T = {T}", "",
                  "| method | seeds | test acc. % (mean ± std) | Δ vs baseline, pp [95 % CI] | verdict | "
                  "folded acc. = unfolded | firing rate | SOPs / sample | energy µJ / sample | s / epoch | "
                  "peak RSS MiB |",
                  "|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|"]
        for m in _methods_in(part, table):
            own = table.get((part.name, m.name, T))
            # a T-independent reference (the ANN) is shown at every T
            runs = own or (table.get((part.name, m.name, m.Ts[0])) if m.Ts else None)
            if not runs:
                continue
            accs = _acc(runs)
            d = None if m.name == part.baseline else paired_difference(accs, _acc(base))
            v = verdict(d, m.expect) if m.name != part.baseline else "baseline"
            e = _mean_metric(runs, "energy_pj")
            spiking = m.fold  # the ANN reference has no spikes: no firing rate, no SOPs
            label = m.label if own else f"{m.label} (trained at T = {m.Ts[0] if m.Ts else '?'})"
            lines.append(
                f"| {label} | {len(runs)} | {_ms(list(accs.values()))} | {_diff_text(d)} | {v} | {_fold_cell(runs)} | "
                f"{_num(_mean_metric(runs, 'mean_firing_rate') if spiking else None, '.3f')} | "
                f"{_num(_mean_metric(runs, 'sops') if spiking else None, '.3g')} | "
                f"{_num(None if e is None else e / 1e6, '.3g')} | "
                f"{_num(_mean_timing(runs, 'epoch_seconds_median'), '.1f')} | "
                f"{_num(_mean_timing(runs, 'peak_rss_mib'), '.0f')} |")
            if m.name != part.baseline and m.expect != 0 and own:
                summary.append(f"| {m.who} — {m.label} | {part.name}, T = {T} | {_diff_text(d)} | "
                               f"{v} | {m.paper or '–'} |")
        lines.append("")
        key = f"{part.name}_T{T}"
        if key in plots:
            lines += [f"![{part.title}, T = {T}]({plots[key]})", ""]
    return lines


def _points_section(part: Part, table: dict[tuple[str, str, int], dict[int, dict[str, Any]]],
                    plots: dict[str, str], summary: list[str]) -> list[str]:
    eval_Ts = part.eval_Ts
    base_key = next((k for k in table if k[0] == part.name and k[1] == part.baseline), None)
    base = table.get(base_key, {}) if base_key else {}
    lines = ["| method | trained at | seeds | " + " | ".join(f"acc. % at T = {t}" for t in eval_Ts)
             + " | Δ at T = 4 vs baseline, pp [95 % CI] | verdict | folded = unfolded | s / epoch | peak RSS MiB |",
             "|---|---:|---:|" + "---:|" * len(eval_Ts) + "---:|---|---|---:|---:|"]
    for m in _methods_in(part, table):
        for (p, name, T), runs in sorted(table.items()):
            if p != part.name or name != m.name:
                continue
            cells = []
            for t in eval_Ts:
                vals = list(_sweep(runs, t).values())
                if not vals and t == 1 and m.name == "ann":
                    vals = list(_acc(runs).values())
                cells.append(_ms(vals))
            d = v = None
            if m.name != part.baseline:
                mine = _sweep(runs, max(eval_Ts)) or (_acc(runs) if m.name == "ann" else {})
                d = paired_difference(mine, _sweep(base, max(eval_Ts)))
                v = verdict(d, m.expect)
                if m.expect != 0:
                    summary.append(f"| {m.who} — {m.label} | {part.name}, test T = {max(eval_Ts)} | "
                                   f"{_diff_text(d)} | {v} | {m.paper or '–'} |")
            lines.append(f"| {m.label} | T = {T} | {len(runs)} | " + " | ".join(cells) + f" | {_diff_text(d)} | "
                         f"{v or 'baseline'} | {_fold_cell(runs)} | "
                         f"{_num(_mean_timing(runs, 'epoch_seconds_median'), '.1f')} | "
                         f"{_num(_mean_timing(runs, 'peak_rss_mib'), '.0f')} |")
    lines.append("")
    # cost of training at T = 1 vs T = 4 (same network: MPP changes only the initial membrane)
    t1 = table.get((part.name, "nompp-T1", 1)) or table.get((part.name, "mpp-T1", 1))
    t4 = table.get((part.name, part.baseline, 4))
    if t1 and t4:
        s1, s4 = _mean_timing(t1, "epoch_seconds_median"), _mean_timing(t4, "epoch_seconds_median")
        r1, r4 = _mean_timing(t1, "peak_rss_mib"), _mean_timing(t4, "peak_rss_mib")
        b1, b4 = _mean_timing(t1, "rss_before_mib"), _mean_timing(t4, "rss_before_mib")
        if s1 and s4:
            ratio = s1 / s4
            lines.append(f"Training cost per epoch, T = 1 vs T = 4 (same PointNet, no MPP): {s1:.1f} s vs {s4:.1f} s "
                         f"= **{ratio:.2f}×** (target ≤ 0.30×: {'met' if ratio <= 0.30 else 'missed'}).")
        if r1 and r4 and b1 is not None and b4 is not None:
            lines.append(f"Peak resident memory of the training process: {r1:.0f} MiB vs {r4:.0f} MiB; above the "
                         f"memory before loading data: {r1 - b1:.0f} vs {r4 - b4:.0f} MiB "
                         f"({(r1 - b1) / max(1e-9, r4 - b4):.2f}×).")
        lines.append("")
    if f"{part.name}" in plots:
        lines += [f"![{part.title}]({plots[part.name]})", ""]
    return lines


def _elapsed(first: str, last: str) -> str:
    import datetime as dt

    try:
        hours = (dt.datetime.fromisoformat(last) - dt.datetime.fromisoformat(first)).total_seconds() / 3600
    except ValueError:
        return "unknown time"
    return f"{hours:.2f} h"


def render(results: list[dict[str, Any]], plots: dict[str, str] | None = None, notes: str | None = None,
           command: str = COMMAND) -> str:
    """The markdown report of ``results`` (see the module docstring)."""
    plots = plots or {}
    if not results:
        raise ValueError("no study results to report")
    table = _by(results)
    quick = any(r.get("quick") for r in results)
    seeds = sorted({int(r["seed"]) for r in results})
    commits = sorted({f"{r.get('commit', 'unknown')[:10]}{' (dirty)' if r.get('dirty') else ''}" for r in results})
    machines = sorted({f"{r['machine'].get('cpu')}, {r['machine'].get('logical_cores')} logical cores, torch "
                       f"{r['machine'].get('torch')} ({r['machine'].get('torch_threads')} thread(s) per run)"
                       + (f", {r['machine']['cuda']}" if r["machine"].get("cuda") else "")
                       for r in results if r.get("machine")})
    wall = sum(float(r["timings"].get("wall_seconds") or 0.0) for r in results)
    first = min(r.get("started", "") for r in results)
    last = max(r.get("finished", "") for r in results)
    lines = ["# Results: the papers' claims, tested", ""]
    if quick:
        lines += ["> **QUICK SMOKE RUN** (`--quick`: embedded 8×8 digits, tiny subsets, one epoch). These numbers test "
                  "the pipeline, not the claims.", ""]
    lines += [
        f"Generated by `{command}` from the {len(results)} result files in `results/` (one per run: recipe, seed, "
        "commit, metrics, timings). Do not edit by hand: rerun the command (finished runs are never retrained; "
        "`spikeforge study --report-only` rebuilds this page from the files).",
        "",
        f"- runs: {len(results)}; seeds {', '.join(map(str, seeds))}; commit(s) {', '.join(commits)}",
        f"- machine: {'; '.join(machines)}",
        f"- wall time: {wall / 3600:.2f} h summed over the runs; {_elapsed(first, last)} from the first run's start "
        f"({first}) to the last one's end ({last})",
        "- accuracy: top-1 on the whole test split, final epoch (no model selection on the test set); "
        "Δ = paired difference (same seed) to the part's baseline in percentage points with its 95 % Student-t "
        "interval; verdict: *agrees* = the interval lies on the paper's side of 0, *disagrees* = on the other "
        "side, *null* = it contains 0",
        "- folded acc. = unfolded: the trained model and `spikeforge.fold(model)` evaluated on the whole test split "
        "from the same random state make the same predictions, in float32 or, where a float32 threshold tie flips a "
        "spike, in float64 (model and fold); \"N float32 ties\" counts the test predictions that differ in float32",
        "- energy: 45 nm estimate (0.9 pJ per SOP, 4.6 pJ per MAC) of `spikeforge energy` on test samples; "
        "SOPs and firing rates of the trained (unfolded) model",
        "",
    ]
    summary: list[str] = []
    body: list[str] = []
    for i, part in enumerate(PARTS.values(), 1):
        if not any(k[0] == part.name for k in table):
            continue
        body += [f"## {i}. {part.title}", "", f"Cut for time: {CUTS[part.name]}.", "",
                 f"Baseline: {next(m.label for m in part.methods if m.name == part.baseline)}. Recipe of every run: "
                 "the `recipe` field of its result file (`spikeforge train` takes it as a YAML recipe).", ""]
        if part.name == "points":
            body += _points_section(part, table, plots, summary)
        else:
            body += _static_like_section(part, table, plots, summary)
    folded = [r for r in results if r["metrics"].get("folded_test_acc") is not None]
    mismatch = [r["run_id"] for r in folded if not fold_exact(r["metrics"])]
    ties = [(r["run_id"], int(r["metrics"].get("fold_predictions_differ") or 0)) for r in folded
            if fold_exact(r["metrics"]) and r["metrics"].get("fold_predictions_differ")]
    errors = [f"{r['run_id']}: {r['metrics']['fold_error']}" for r in results if r["metrics"].get("fold_error")]
    lines += ["## Claims at a glance", "",
              "| claim — method | setting | Δ accuracy vs baseline, pp [95 % CI] | verdict | the paper's own figure |",
              "|---|---|---:|---|---|", *summary, "",
              "Fold check: the folded model makes the unfolded model's predictions in "
              f"{len(folded) - len(mismatch)} of {len(folded)} folded runs"
              + (f"; it does not in {', '.join(mismatch)}" if mismatch else "")
              + (f"; fold failed in {'; '.join(errors)}" if errors else "") + ". "
              + (("In float32, " + ", ".join(f"{rid} ({n} of its test predictions)" for rid, n in ties)
                  + " differ: a membrane within float32 rounding of a threshold fires in one model and not in the "
                  "other (the folded weights carry their own rounding); with the model and the fold in float64 every "
                  "prediction is equal, so the fold is exact and the deployed float32 accuracy differs by those "
                  "samples only. ") if ties else "")
              + "The ANN rows are not folded (no neurons).", ""]
    lines += body
    if notes:
        lines += ["## Findings and notes", "", notes.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_plots(results: list[dict[str, Any]], folder: str | Path) -> list[Path]:
    """Bar charts (mean ± std over seeds) per part and T into ``folder`` (the files :func:`plot_names` names);
    needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = _by(results)
    out: list[Path] = []
    for part in PARTS.values():
        keys = sorted({k[2] for k in table if k[0] == part.name})
        if not keys:
            continue
        if part.name == "points":
            fig, ax = plt.subplots(figsize=(7, 4))
            for m in _methods_in(part, table):
                for (p, name, _T), runs in sorted(table.items()):
                    if p != part.name or name != m.name:
                        continue
                    xs, ys, es = [], [], []
                    for t in part.eval_Ts:
                        vals = list(_sweep(runs, t).values()) or (list(_acc(runs).values()) if t == 1 else [])
                        if vals:
                            mu, sd = mean_std(vals)
                            xs.append(t)
                            ys.append(100 * mu)
                            es.append(100 * (sd or 0.0))
                    ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=f"{m.label}")
            ax.set_xlabel("inference time steps T")
            ax.set_ylabel("test accuracy (%)")
            ax.set_xticks(list(part.eval_Ts))
            ax.legend(fontsize=7)
            ax.set_title(part.title, fontsize=9)
            fig.tight_layout()
            path = folder / f"{part.name}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            out.append(path)
            continue
        for T in keys:
            labels, ys, es = [], [], []
            for m in _methods_in(part, table):
                found = table.get((part.name, m.name, T)) or (table.get((part.name, m.name, m.Ts[0])) if m.Ts
                                                              else None)
                if not found:
                    continue
                mu, sd = mean_std(list(_acc(found).values()))
                labels.append(m.label)
                ys.append(100 * mu)
                es.append(100 * (sd or 0.0))
            fig, ax = plt.subplots(figsize=(8, 0.35 * len(labels) + 1.2))
            ax.barh(range(len(labels)), ys, xerr=es, capsize=3, color="#4c72b0")
            ax.set_yticks(range(len(labels)), labels, fontsize=8)
            ax.invert_yaxis()
            lo = min(y - e for y, e in zip(ys, es))
            ax.set_xlim(max(0.0, lo - 2.0), min(100.0, max(y + e for y, e in zip(ys, es)) + 1.0))
            ax.set_xlabel("test accuracy (%), mean ± std over seeds")
            ax.set_title(f"{part.title}, T = {T}", fontsize=9)
            fig.tight_layout()
            path = folder / f"{part.name}_T{T}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            out.append(path)
    return out


def plot_names(results: list[dict[str, Any]], rel: str) -> dict[str, str]:
    """``{key: link}`` of the plots :func:`write_plots` draws, as links under the folder ``rel`` (relative to the
    report)."""
    table = _by(results)
    out: dict[str, str] = {}
    for part in PARTS.values():
        Ts = sorted({k[2] for k in table if k[0] == part.name})
        if not Ts:
            continue
        if part.name == "points":
            out[part.name] = f"{rel}/{part.name}.png"
        else:
            for T in Ts:
                out[f"{part.name}_T{T}"] = f"{rel}/{part.name}_T{T}.png"
    return out


def write_report(results_dir: str | Path, report: str | Path, *, plots: bool = True,
                 command: str = COMMAND) -> Path:
    """Render ``report`` (markdown) from ``results_dir/*.json`` (+ ``results_dir/notes.md``); plots go to
    ``<report stem>/`` beside it."""
    results = load_results(results_dir)
    report = Path(report)
    links = plot_names(results, report.stem)
    if plots:
        write_plots(results, report.parent / report.stem)
    notes_file = Path(results_dir) / "notes.md"
    notes = notes_file.read_text() if notes_file.is_file() else None
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(render(results, links, notes, command))
    return report
