"""Run the study: one fresh process per run, one ``results/<run_id>.json`` per finished run.

A run's process trains the recipe (``spikeforge.train.Trainer``, checkpoints in ``<out>/work/<run_id>``; an
interrupted run resumes from its last epoch), folds the trained model with ``spikeforge.fold`` and evaluates the
unfolded and the folded model on the whole test split from the same random state (Spiking PointNet draws random
initial membranes at test time), and records the energy estimate, firing rates, timings and peak memory of that
process. A finished run (its result file exists and names the same recipe) is never trained again.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .plan import StudyRun

__all__ = ["SCHEMA", "THREADS_ENV", "result_path", "is_finished", "needs_recheck", "fold_check", "check_data",
           "run_one", "run_study", "machine_facts", "git_commit"]

SCHEMA = 1
#: intra-op threads of a run's process (set by :func:`run_study`)
THREADS_ENV = "SPIKEFORGE_STUDY_THREADS"


def result_path(out: Path, run: StudyRun) -> Path:
    return Path(out) / f"{run.run_id}.json"


def is_finished(out: Path, run: StudyRun) -> bool:
    """A result file exists, parses and was produced by the same recipe."""
    p = result_path(out, run)
    if not p.is_file():
        return False
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if not (data.get("schema") == SCHEMA and data.get("run_id") == run.run_id and data.get("recipe") == run.recipe):
        return False
    return not needs_recheck(data)


def needs_recheck(result: dict[str, Any]) -> bool:
    """A result written before the float64 fold check whose float32 folded accuracy differs: evaluated again
    (from its saved weights, no training) by the next ``run_study``."""
    m = result.get("metrics", {})
    return (m.get("folded_test_acc") is not None and m["folded_test_acc"] != m.get("test_acc")
            and "fold_check_float64" not in m)


def git_commit(where: Path | None = None) -> dict[str, Any]:
    """``{"commit": sha, "dirty": bool}`` of the source tree this package runs from (``unknown`` outside git)."""
    root = Path(where or Path(__file__).resolve().parents[3])
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "src"],
                                capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        return {"commit": sha, "dirty": bool(status)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def machine_facts() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "platform": platform.platform(), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available()
            else None}


def _rss_mib(field: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` of this process in MiB (Linux); None elsewhere."""
    from ..bench.memory import resident_kib

    kib = resident_kib(field)
    return None if kib is None else kib / 1024.0


def _predictions(model: torch.nn.Module, x: torch.Tensor, *, kind: str, T: int, readout: str, batch: int,
                 votes: int, seed: int, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Predicted classes of ``readout`` over ``model(x)`` (mean of ``votes`` passes) from RNG state ``seed``, with
    inputs in ``dtype`` (the model must hold that dtype too)."""
    from ..encode import for_kind
    from ..encode import readout as read

    torch.manual_seed(seed)
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            seq = for_kind(x[i:i + batch].to(device=device, dtype=dtype), kind, T)
            z = read(model(seq), readout)
            for _ in range(votes - 1):
                z = z + read(model(seq), readout)
            preds.append(z.argmax(1).cpu())
    return torch.cat(preds)


def fold_check(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, **eval_args: Any) -> dict[str, Any]:
    """Accuracy of ``model`` and of ``spikeforge.fold(model)`` on the same inputs from the same random state.

    In float32 the folded weights (BN, amplitudes, MPBN thresholds moved into neighbours) carry their own rounding,
    so a membrane within float32 rounding of a threshold can fire in one model and not the other. When any float32
    prediction differs, the check is repeated with the model *and the fold* in float64, where such ties vanish:
    equal float64 predictions show the fold is exact and the float32 difference is rounding."""
    import copy

    from .. import fold

    p = _predictions(model, x, **eval_args)
    q = _predictions(fold(model), x, **eval_args)
    y = y.cpu()
    out: dict[str, Any] = {"test_acc": float((p == y).float().mean()),
                           "folded_test_acc": float((q == y).float().mean()),
                           "fold_predictions_differ": int((p != q).sum()), "fold_check_float64": None}
    if out["fold_predictions_differ"]:
        m64 = copy.deepcopy(model).double()
        p64 = _predictions(m64, x, **eval_args, dtype=torch.float64)
        q64 = _predictions(fold(m64), x, **eval_args, dtype=torch.float64)
        out["fold_check_float64"] = {"test_acc": float((p64 == y).float().mean()),
                                     "folded_test_acc": float((q64 == y).float().mean()),
                                     "predictions_differ": int((p64 != q64).sum())}
    return out


def _epoch_seconds(run_dir: Path) -> list[float]:
    import csv

    p = run_dir / "metrics.csv"
    if not p.is_file():
        return []
    with p.open() as f:
        rows = list(csv.DictReader(f))
    plain = [float(r["seconds"]) for r in rows if r.get("seconds") and not r.get("test_acc")]
    return plain or [float(r["seconds"]) for r in rows if r.get("seconds")]


def run_one(run: StudyRun, out: Path, work: Path, verbose: bool = False) -> dict[str, Any]:
    """Train, fold, evaluate one run in this process and write its result file; returns the result."""
    from ..train import Trainer
    from ..train.config import resolve

    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    cfg = resolve(run.recipe)
    run_dir = Path(work) / run.run_id
    resume = (run_dir / "checkpoints" / "last").is_dir()
    rss_before = _rss_mib("VmRSS")
    from ..bench.memory import reset_high_water_mark

    peak_reset = reset_high_water_mark()
    tr = Trainer(cfg, run_dir, resume=resume, verbose=verbose)
    metrics = tr.fit()
    peak = _rss_mib("VmHWM")
    model = tr.raw_model
    kind, T_eval = tr.kind, tr.eval_T
    readout = getattr(tr.objective, "readout", "mean")
    votes = int(cfg["eval"]["votes"])
    x, y = tr.test_set.x, tr.test_set.y
    acc_args: dict[str, Any] = dict(kind=kind, T=T_eval, readout=readout, batch=int(cfg["eval_batch_size"]),
                                    votes=votes, seed=run.seed + 1000, device=tr.device)
    checked: dict[str, Any] = {"folded_test_acc": None, "fold_predictions_differ": None, "fold_check_float64": None}
    fold_error = None
    if not bool(cfg["model"].get("ann")):
        try:
            checked = fold_check(model, x, y, **acc_args)
        except (ValueError, NotImplementedError) as exc:  # FoldError is a ValueError
            fold_error = str(exc)
    if fold_error is not None or "test_acc" not in checked:
        checked["test_acc"] = float((_predictions(model, x, **acc_args) == y.cpu()).float().mean())
    sweep: dict[str, float] = {}
    if metrics.get("T_sweep"):
        sweep = {str(k): float(v) for k, v in metrics["T_sweep"].items()}
    epochs = _epoch_seconds(run_dir)
    epochs_sorted = sorted(epochs)
    result = {
        "schema": SCHEMA, "run_id": run.run_id, "part": run.part, "method": run.method, "T": run.T,
        "seed": run.seed, "quick": run.quick, "recipe": run.recipe, **git_commit(), "machine": machine_facts(),
        "started": started.isoformat(timespec="seconds"),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "metrics": {
            **checked, "fold_error": fold_error,
            "trainer_test_acc": metrics.get("test_acc"), "fold_max_dev": metrics.get("fold_max_dev"),
            "eval_T": T_eval, "votes": votes, "T_sweep": sweep, "params": metrics.get("params"),
            "train_samples": metrics.get("train_samples"), "test_samples": metrics.get("test_samples"),
            "sops": metrics.get("sops"), "macs": metrics.get("macs"), "energy_pj": metrics.get("energy_pj"),
            "ann_energy_pj": metrics.get("ann_energy_pj"), "mean_firing_rate": metrics.get("mean_firing_rate"),
        },
        "timings": {
            "wall_seconds": round(time.perf_counter() - t0, 2), "train_seconds": metrics.get("train_seconds"),
            "epoch_seconds_median": epochs_sorted[len(epochs_sorted) // 2] if epochs_sorted else None,
            "epochs_timed": len(epochs), "resumed": resume,
            "peak_rss_mib": None if peak is None else round(peak, 1),
            "rss_before_mib": None if rss_before is None else round(rss_before, 1),
            "peak_measured_from": "process start" if not peak_reset else "before loading data and training",
        },
    }
    previous = result_path(out, run)
    if previous.is_file() and resume and metrics.get("train_seconds") is not None:
        try:
            old = json.loads(previous.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        if old and old.get("run_id") == run.run_id and old.get("recipe") == run.recipe:
            # a finished run evaluated again (see needs_recheck): its training measurements stay those of training
            result.update({k: old[k] for k in ("timings", "started", "machine", "commit", "dirty") if k in old})
            result["rechecked"] = {"at": result["finished"], **git_commit()}
    out.mkdir(parents=True, exist_ok=True)
    tmp = result_path(out, run).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, result_path(out, run))
    return result


def _spawn(run: StudyRun, out: Path, work: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Any]:
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    spec = logs / f"{run.run_id}.spec.json"
    spec.write_text(json.dumps({"part": run.part, "method": run.method, "T": run.T, "seed": run.seed,
                                "quick": run.quick, "recipe": run.recipe, "verbose": True}))
    f = (logs / f"{run.run_id}.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "spikeforge.study.worker", str(spec), str(out), str(work)],
                            stdout=f, stderr=subprocess.STDOUT, env=env)
    return proc, f


def check_data(runs: list[StudyRun]) -> None:
    """Fail before any training when a planned run's dataset is not on disk: the error names the study part, the
    dataset and what it needs (instead of every run failing one by one)."""
    from .. import data

    seen: set[tuple[str, Any]] = set()
    for r in runs:
        d = r.recipe["data"]
        key = (d["name"], d.get("root"))
        if key in seen:
            continue
        seen.add(key)
        options = {k: v for k, v in (d.get("options") or {}).items() if k != "cache_dir"}
        try:
            data.get(d["name"], "test", root=d.get("root"), limit=1, **options)
        except data.DatasetNotFoundError as exc:
            raise FileNotFoundError(f"study part {r.part!r} needs dataset {d['name']!r} (run `spikeforge study "
                                    f"--quick` for the smoke version on embedded data): {exc}") from None


def run_study(runs: list[StudyRun], out: Path, *, work: Path | None = None, isolate: bool = True, jobs: int = 1,
              threads: int | None = None, log: Any = print,
              timeout: float | None = None) -> tuple[list[str], list[str]]:
    """Run every unfinished run (seed-major order, so a cut study has every method at its first seeds);
    returns ``(ran, failed)`` run ids.

    ``isolate``: each run in its own ``python`` process (peak memory per run, nothing shared), ``jobs`` of them
    at a time with ``threads`` intra-op threads each (default: the logical cores divided by ``jobs``; one thread
    per process keeps a run's speed independent of other load on the machine); otherwise in this process."""
    out = Path(out)
    work = Path(work) if work is not None else out / "work"
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    todo = [r for r in sorted(runs, key=lambda r: r.seed) if not is_finished(out, r)]
    done = len(runs) - len(todo)
    check_data(todo)
    n_threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    log(f"study: {len(runs)} runs, {done} already finished, {len(todo)} to run; results -> {out}"
        + (f"; {jobs} process(es) x {n_threads} thread(s)" if isolate else ""))
    ran: list[str] = []
    failed: list[str] = []
    t_start = time.perf_counter()
    count = 0

    def report(run: StudyRun, ok: bool, t0: float, why: str = "") -> None:
        nonlocal count
        count += 1
        (ran if ok else failed).append(run.run_id)
        if not ok:
            log(f"  FAILED {run.run_id}{why}")
            return
        m = json.loads(result_path(out, run).read_text())["metrics"]
        folded = m["folded_test_acc"]
        log(f"  [{count}/{len(todo)}] {run.run_id}: test {100 * m['test_acc']:.2f} %"
            + ("" if folded is None else f", folded {100 * folded:.2f} %")
            + f", {time.perf_counter() - t0:.0f} s (elapsed {(time.perf_counter() - t_start) / 60:.1f} min)")

    if not isolate:
        for run in todo:
            t0 = time.perf_counter()
            try:
                run_one(run, out, work)
            except Exception as exc:  # noqa: BLE001 - a failed run is reported and the study goes on
                report(run, False, t0, f": {type(exc).__name__}: {exc}")
                continue
            report(run, True, t0)
        return ran, failed

    env = {**os.environ, "OMP_NUM_THREADS": str(n_threads), "MKL_NUM_THREADS": str(n_threads),
           THREADS_ENV: str(n_threads)}
    pending = list(todo)
    active: list[tuple[subprocess.Popen[bytes], Any, StudyRun, float]] = []
    while pending or active:
        while pending and len(active) < jobs:
            run = pending.pop(0)
            proc, f = _spawn(run, out, work, env)
            active.append((proc, f, run, time.perf_counter()))
        time.sleep(0.2)
        still: list[tuple[subprocess.Popen[bytes], Any, StudyRun, float]] = []
        for proc, f, run, t0 in active:
            rc = proc.poll()
            if rc is None and timeout is not None and time.perf_counter() - t0 > timeout:
                proc.kill()
                rc = proc.wait()
            if rc is None:
                still.append((proc, f, run, t0))
                continue
            f.close()
            ok = rc == 0 and is_finished(out, run)
            why = ""
            if not ok:
                log_file = work / "logs" / f"{run.run_id}.log"
                tail = log_file.read_text(errors="replace").strip().splitlines()[-3:]
                why = f" (exit {rc}); log {log_file}: " + " | ".join(tail)
            report(run, ok, t0, why)
        active = still
    return ran, failed
