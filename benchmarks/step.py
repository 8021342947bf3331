"""Whole training step: spikeforge vs SpikingJelly, snnTorch, Norse, a plain PyTorch loop and the ANN (ReLU), plus
every target of issue 14 as a row with its measured ratio and met/missed.

Writes the generated section "Whole training step" of docs/benchmarks.md (between the ``step-benchmark`` markers;
the rest of the file is left alone) and a plot docs/benchmarks_step.png. What each library runs, and how the same
weights get into every library: ``src/spikeforge/bench/step.py``; folded inference and Spiking PointNet:
``src/spikeforge/bench/targets.py``; the memory reading: ``src/spikeforge/bench/memory.py``.

Plan of the default run (``make bench``), every measurement in a fresh subprocess:

1. per net (VGG-4, ResNet-19 at width 1/8): agreement of every library with the reference (B = 4), then every
   library at T = 4, B = 32, ``--rounds`` interleaved rounds of (set-up step, memory step, ``--repeats`` timed
   steps);
2. the T sweep (``--sweep``, default 1 2 8) for spikeforge and every peer (``--sweep-libraries``), one round of
   ``--sweep-repeats`` timed steps;
3. folded inference (3 training-only neurons vs vanilla LIF, VGG-4) and Spiking PointNet T = 1 vs T = 4;
4. for every missed target, the profile that explains it (top ops by self CPU time of spikeforge's step, or what
   autograd saves for backward per module for a memory target).

Budget: about 75 subprocesses of ~5 s start-up (torch, spikeforge and the peer imported afresh) plus ~290 training
steps of 0.2-5 s at one thread (per-step times measured at B = 32 under a load of 1-3: VGG-4/ResNet-19 T = 4 0.7-1.2
s per library, PointNet T = 4 5.2 s); estimated 11-12 min on the 2-core machine, plus ~1 min once when the C++
kernel has to be (re)built (each phase logs its elapsed time to stderr; ``--rounds 1`` saves ~2 min). ``--quick``
runs every phase and every profile at tiny sizes on VGG-4 (~75 s, ~2.5 min with ``--models vgg4 resnet19``; the
numbers mean nothing).

Usage::

    python benchmarks/step.py                          # full run, rewrites docs/benchmarks.md (make bench)
    python benchmarks/step.py --quick --out /tmp/b.md  # every code path at tiny sizes
    python benchmarks/step.py --models vgg4 --sweep --skip inference pointnet --out /tmp/b.md   # a part
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spikeforge.bench import machine_info
from spikeforge.bench.step import (
    STEP_LIBRARIES,
    StepAgreement,
    StepConfig,
    StepMeasurement,
    available_step_libraries,
    check_step_agreement,
    measure_step_rounds,
    profile_step_in_subprocess,
)
from spikeforge.bench.targets import (
    InferenceConfig,
    InferenceResult,
    PointNetConfig,
    PointNetResult,
    run_in_subprocess,
)

BEGIN, END = "<!-- step-benchmark:begin -->", "<!-- step-benchmark:end -->"
PEERS = ("spikingjelly", "snntorch", "norse", "eager")
SPIKEFORGE = ("spikeforge", "spikeforge-compressed", "spikeforge-recompute")
SKIPPABLE = ("sweep", "inference", "pointnet", "profiles")


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()}"


def _mib(b: int | None) -> str:
    return "n/a" if b is None else f"{b / 2**20:.0f}"


def _table(results: list[StepMeasurement]) -> str:
    base = next(m for m in results if m.library == "spikeforge")
    lines = ["| library | version | step median (ms) | min-max (ms) | fwd median (ms) | peak extra mem (MiB) "
             "| time / spikeforge | mem / spikeforge | load (1 min) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in results:
        mr = (f"{m.peak_mem_bytes / base.peak_mem_bytes:.2f}x" if m.peak_mem_bytes and base.peak_mem_bytes
              else "n/a")
        lines.append(f"| {m.library} | {m.version} | {1e3 * m.median:.0f} | {1e3 * min(m.step_s):.0f}-"
                     f"{1e3 * max(m.step_s):.0f} | {1e3 * m.fwd_median:.0f} | {_mib(m.peak_mem_bytes)} | "
                     f"{m.median / base.median:.2f}x | {mr} | {m.load:.1f} |")
    return "\n".join(lines)


def _agreement_table(rows: list[StepAgreement]) -> str:
    lines = ["| library | spikes | reference spikes | max abs logit diff | max rel. grad diff | note |",
             "|---|---:|---:|---:|---:|---|"]
    for a in rows:
        g = "-" if a.grad_rel_diff != a.grad_rel_diff else f"{a.grad_rel_diff:.1e}"
        lines.append(f"| {a.library} | {a.spikes} | {a.reference_spikes} | {a.logits_max_abs_diff:.1e} | {g} "
                     f"| {a.note} |")
    return "\n".join(lines)


def _get(res: list[StepMeasurement], lib: str) -> StepMeasurement | None:
    return next((m for m in res if m.library == lib), None)


def _fastest_peer(res: list[StepMeasurement]) -> StepMeasurement | None:
    peers = [m for m in res if m.library in PEERS]
    return min(peers, key=lambda m: m.median) if peers else None


@dataclass
class TargetRow:
    target: str
    net: str
    measured: str
    met: bool | None  # None: not measured
    explanation: str = ""  # profile line of a miss

    def markdown(self) -> str:
        verdict = "not measured" if self.met is None else ("met" if self.met else "**missed**")
        return f"| {self.target} | {self.net} | {self.measured} | {verdict} | {self.explanation} |"


Profiler = Callable[[str, int, str, str], str]  # (model, T, library, "time"|"memory") -> profile line


def step_targets(main: dict[str, list[StepMeasurement]], sweep: dict[tuple[str, int], list[StepMeasurement]],
                 profile: Profiler | None, force_profile: bool = False) -> list[TargetRow]:
    """Rows of the step targets from the measurements; ``profile`` explains a miss (``force_profile``: every row,
    the smoke run's way to exercise it)."""
    rows: list[TargetRow] = []

    def explain(ok: bool, model: str, t: int, lib: str, by: str) -> str:
        return profile(model, t, lib, by) if profile is not None and (force_profile or not ok) else ""

    for model, res in main.items():
        sf, fastest = _get(res, "spikeforge"), _fastest_peer(res)
        if sf is None or fastest is None:
            continue
        r = fastest.median / sf.median
        rows.append(TargetRow("step >= 1.2x faster than the fastest peer at T = 4", model,
                              f"{r:.2f}x vs {fastest.library}", r >= 1.2, explain(r >= 1.2, model, 4, "spikeforge",
                                                                                    "time")))
        per_t = {4: r}
        for (mm, t), sres in sweep.items():
            s, f = _get(sres, "spikeforge"), _fastest_peer(sres)
            if mm == model and s is not None and f is not None:
                per_t[t] = f.median / s.median
        worst = min(per_t, key=lambda t: per_t[t])
        ok = per_t[worst] >= 1.0
        rows.append(TargetRow("no slower than the fastest peer at any T = 1..8", model,
                              "; ".join(f"T={t}: {per_t[t]:.2f}x" for t in sorted(per_t))
                              + ("" if len(per_t) > 1 else " (T sweep not run)"),
                              ok if len(per_t) > 1 else None, explain(ok, model, worst, "spikeforge", "time")))
        mem_peers = [m for m in res if m.library in PEERS and m.peak_mem_bytes]
        sf_variants = [m for m in res if m.library in SPIKEFORGE and m.peak_mem_bytes]
        if mem_peers and sf_variants:
            best = min(mem_peers, key=lambda m: m.peak_mem_bytes or 0)
            cand = [(m, (m.peak_mem_bytes or 0) / (best.peak_mem_bytes or 1), m.median / best.median)
                    for m in sf_variants]
            ok_c = [c for c in cand if c[1] <= 0.5 and c[2] <= 1.0]
            m, q, tr = min(ok_c or cand, key=lambda c: c[1])
            rows.append(TargetRow(
                "peak training memory <= 0.5x the best peer's, at no more than its step time", model,
                f"{m.library}: {q:.2f}x {best.library}'s memory ({_mib(m.peak_mem_bytes)} vs "
                f"{_mib(best.peak_mem_bytes)} MiB) at {tr:.2f}x its time", bool(ok_c),
                explain(bool(ok_c), model, 4, m.library, "memory")))
        eager = _get(res, "eager")
        lean = [m for m in (_get(res, "spikeforge-recompute"), _get(res, "spikeforge-compressed"))
                if m is not None and m.peak_mem_bytes]
        if lean and eager and eager.peak_mem_bytes:
            parts, verdict = [], None
            for m in lean:
                q = eager.peak_mem_bytes / (m.peak_mem_bytes or 1)
                tr = m.median / eager.median
                parts.append(f"{m.library}: {q:.2f}x less memory at {tr:.2f}x the time")
                if verdict is None:  # the first is the recomputing variant when it ran
                    verdict = (q >= 8 and tr <= 1.2, m.library)
            assert verdict is not None
            ok, lib = verdict
            rows.append(TargetRow(
                "compression + recomputation: memory >= 8x below the plain loop's at <= 1.2x its time", model,
                "; ".join(parts), ok, explain(ok, model, 4, lib, "memory")))
    return rows


def inference_targets(res: list[InferenceResult] | None, force_profile: bool = False) -> list[TargetRow]:
    name = "folded inference <= 1.02x a vanilla LIF model of the same shape"
    if res is None:
        return [TargetRow(name, "vgg4", "skipped", None)]
    rows = []
    for r in res:
        ok = r.ratio <= 1.02
        rows.append(TargetRow(name, f"vgg4, {r.variant} folded", f"{r.ratio:.3f}x (best repeat "
                              f"{min(r.variant_s) / min(r.vanilla_s):.3f}x)", ok,
                              "; ".join(r.profile) if force_profile or not ok else ""))
    return rows


def pointnet_target(res: PointNetResult | None, force_profile: bool = False) -> TargetRow:
    name = f"Spiking PointNet: training at T = 1 <= 0.3x training at T = {res.long_steps if res else 4} per epoch"
    if res is None:
        return TargetRow(name, "pointnet", "skipped", None)
    ok = res.ratio <= 0.3
    return TargetRow(name, "pointnet", f"{res.ratio:.2f}x ({1e3 * min(res.short_s):.0f} vs "
                     f"{1e3 * min(res.long_s):.0f} ms best epoch)", ok,
                     "T = 1 step: " + "; ".join(res.profile) if force_profile or not ok else "")


def _plot(main: dict[str, list[StepMeasurement]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        return False
    fig, axes = plt.subplots(1, 2 * len(main), figsize=(6 * len(main) + 2, 3.6), squeeze=False)
    for i, (model, res) in enumerate(main.items()):
        ax, axm = axes[0][2 * i], axes[0][2 * i + 1]
        libs = [m.library for m in res]
        ax.barh(libs, [1e3 * m.median for m in res],
                xerr=[[1e3 * (m.median - min(m.step_s)) for m in res], [1e3 * (max(m.step_s) - m.median) for m in res]],
                color=["tab:orange" if lib.startswith("spikeforge") else "tab:blue" for lib in libs])
        ax.set_title(f"{model}, T = 4: step (ms)")
        axm.barh(libs, [(m.peak_mem_bytes or 0) / 2**20 for m in res],
                 color=["tab:orange" if lib.startswith("spikeforge") else "tab:gray" for lib in libs])
        axm.set_title(f"{model}, T = 4: peak extra mem (MiB)")
        axm.set_yticklabels([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def write_section(out: Path, section: str) -> None:
    """Replace (or append) the generated step-benchmark section of ``out``; leave everything else alone."""
    text = out.read_text() if out.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{section.rstrip()}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/benchmarks.md", help="markdown file whose step section is (re)written")
    ap.add_argument("--plot", default=None, help="PNG plot (default: benchmarks_step.png next to --out)")
    ap.add_argument("--models", nargs="+", default=None, choices=["vgg4", "resnet19"],
                    help="nets (default: vgg4 resnet19; with --quick: vgg4, the same code paths in half the time)")
    ap.add_argument("--batch", type=int, default=32, help="batch size B of every training step (issue 14: 32)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved subprocess rounds at T = 4 (default 2)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed steps per subprocess at T = 4, after a set-up and a memory step (default 3)")
    ap.add_argument("--resnet-width", type=float, default=0.125, help="width multiplier of the ResNet-19")
    ap.add_argument("--sweep", type=int, nargs="*", default=[1, 2, 8], help="other T for the sweep (none: skip)")
    ap.add_argument("--sweep-libraries", nargs="+", default=["spikeforge", *PEERS], choices=STEP_LIBRARIES,
                    help="libraries of the T sweep (default: spikeforge and every peer)")
    ap.add_argument("--sweep-repeats", type=int, default=2, help="timed steps per subprocess in the sweep")
    ap.add_argument("--libraries", nargs="+", default=None, choices=STEP_LIBRARIES,
                    help="libraries at T = 4 (default: all installed)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads per process (default 1: on a loaded shared machine a 2-thread OpenMP region "
                         "waits a scheduler slice for its second thread at every op; use 2 on an idle machine)")
    ap.add_argument("--inference-repeats", type=int, default=7, help="timed batches per folded-inference model")
    ap.add_argument("--pointnet-epochs", type=int, default=3, help="timed epochs per T of Spiking PointNet")
    ap.add_argument("--skip", nargs="*", default=[], choices=SKIPPABLE, help="phases to leave out")
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes, one round, every phase and every profile: a smoke run, not a measurement")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - started:6.0f} s] {msg}", file=sys.stderr, flush=True)

    quick = args.quick
    if args.models is None:
        args.models = ["vgg4"] if quick else ["vgg4", "resnet19"]
    size, batch = (16, 2) if quick else (32, args.batch)
    repeats, rounds, sweep_repeats = (1, 1, 1) if quick else (args.repeats, args.rounds, args.sweep_repeats)
    sweep_t = [] if "sweep" in args.skip else ([t for t in args.sweep if t != 4][:1] if quick else
                                               [t for t in args.sweep if t != 4])
    libs = available_step_libraries(args.libraries) if args.libraries else available_step_libraries()
    if "spikeforge" not in libs:
        raise SystemExit("--libraries must include spikeforge (the baseline of every ratio)")
    uptime_before = _uptime()
    info = machine_info()
    base = StepConfig(steps=4, batch=batch, input_size=size, repeats=repeats, warmup=0, threads=args.threads,
                      width=args.resnet_width)
    agreement: dict[str, list[StepAgreement]] = {}
    main_res: dict[str, list[StepMeasurement]] = {}
    sweep_res: dict[tuple[str, int], list[StepMeasurement]] = {}
    for model in args.models:
        cfg = dataclasses.replace(base, model=model)
        log(f"{model}: agreement")
        agreement[model] = check_step_agreement(libs, dataclasses.replace(cfg, batch=min(batch, 4)))
        for a in agreement[model]:
            if a.spikes != a.reference_spikes and a.library != "norse":
                raise SystemExit(f"{a.library} disagrees with the reference on {model}: {a}")
        main_res[model] = measure_step_rounds(libs, cfg, rounds, log)
    sweep_libs = [lb for lb in args.sweep_libraries if lb in libs and (not quick or lb in ("spikeforge", "eager"))]
    for t in sweep_t:
        for model in args.models:
            cfg = dataclasses.replace(base, model=model, steps=t, repeats=sweep_repeats)
            sweep_res[(model, t)] = measure_step_rounds(sweep_libs, cfg, 1, log)
    icfg = (InferenceConfig(steps=2, batch=2, input_size=16, repeats=1, threads=args.threads) if quick else
            InferenceConfig(batch=batch, input_size=size, repeats=args.inference_repeats, threads=args.threads))
    pcfg = (PointNetConfig(batch=2, points=32, batches=1, epochs=1, threads=args.threads) if quick else
            PointNetConfig(batch=batch, epochs=args.pointnet_epochs, threads=args.threads))
    inference: list[InferenceResult] | None = None
    if "inference" not in args.skip:
        log("folded inference")
        res_i = run_in_subprocess("inference", icfg)
        assert isinstance(res_i, list)
        inference = res_i
    pointnet: PointNetResult | None = None
    if "pointnet" not in args.skip:
        log("Spiking PointNet T = 1 vs T = 4")
        res_p = run_in_subprocess("pointnet", pcfg)
        assert isinstance(res_p, PointNetResult)
        pointnet = res_p

    profiles: dict[tuple[str, int, str, str], str] = {}

    def profile(model: str, t: int, lib: str, by: str) -> str:
        key = (model, t, lib, by)
        if key not in profiles:
            log(f"profile of {lib} on {model} at T = {t} ({by})")
            cfg = dataclasses.replace(base, model=model, steps=t)
            top = profile_step_in_subprocess(lib, cfg, 4, by)
            what = "top ops by self CPU time" if by == "time" else "saved for backward, by module"
            profiles[key] = f"{lib}, T = {t}, {what}: " + "; ".join(top)
        return profiles[key]

    use_profiles = "profiles" not in args.skip
    rows = step_targets(main_res, sweep_res, profile if use_profiles else None, force_profile=quick)
    rows += inference_targets(inference, force_profile=quick and use_profiles)
    rows.append(pointnet_target(pointnet, force_profile=quick and use_profiles))
    uptime_after = _uptime()

    out = Path(args.out)
    plot = Path(args.plot) if args.plot else out.parent / "benchmarks_step.png"
    plotted = _plot(main_res, plot)
    cmd = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/step.py", *(argv if argv is not None
                                                                                 else sys.argv[1:])])
    method = next((m.memory_method for res in main_res.values() for m in res if m.memory_method), "n/a")
    s = ["## Whole training step (generated)", "",
         f"Generated by `{cmd}` in {(time.time() - started) / 60:.1f} min (`make bench`). Do not edit by hand."
         + (" **Smoke run (--quick): tiny sizes, the numbers mean nothing.**" if quick else ""),
         "", f"- machine: {info['cpu']}, {info['logical cores']} logical cores, torch {info['torch']}, "
         f"Python {info['python']}; threads per process: {args.threads}",
         f"- `uptime` before: `{uptime_before}`", f"- `uptime` after: `{uptime_after}`",
         "- the machine may be shared with other jobs: every number carries the 1-min load average of its run; "
         "prefer the ratios (same interleaved run) to the absolute times.", "",
         "**Step.** One SGD step (momentum 0.9) = zero grads (`set_to_none`), forward over `x[T, B, 3, "
         f"{size}, {size}]` (a static image repeated T times), cross-entropy of the time-mean logits, backward, "
         f"`optimizer.step()`. B = {batch}. Every library in its own fresh subprocess per round, rounds "
         "interleaved (order reversed every other round); median over all rounds' timed steps. Nets: `vgg4` = "
         "conv 64-128-256-256, BN, LIF, avg-pool after each, linear; `resnet19` = spiking ResNet-19 at width "
         f"{args.resnet_width:g} (blocks 3-3-2; width 1 = 128-256-512). LIF: tau = 2 (decay 0.5), threshold 1, "
         "hard reset through the spike, ATan alpha = 2. `ann` = the same net with ReLU run once on `[B, ...]`. "
         "`spikeforge-compressed` = spikeforge with `compress_spikes` (conv/linear spike inputs kept as bits); "
         "`spikeforge-recompute` = spikeforge with `recompute` (each spiking segment keeps only its input, as "
         "bits, and runs again in the backward; exact, docs/training.md). "
         "Configuration of every library: `src/spikeforge/bench/step.py`.", "",
         "**Peak extra memory** (`src/spikeforge/bench/memory.py`): in each library's fresh process, after one "
         "set-up step, with the weights, the momentum buffers and the input batch resident and the previous "
         "gradients freed, `gc.collect()` and glibc's `malloc_trim(0)` return cached free heap pages to the "
         "kernel, the resident set `VmRSS` is read, the kernel's high-water mark is reset "
         "(`/proc/self/clear_refs` <- 5), one whole step runs (forward, backward, optimizer step), and the "
         "reading is `VmHWM - VmRSS`: the most bytes resident at once during the step beyond those resident "
         "before it (activations saved for backward, gradients, temporaries, anything the library allocates). "
         f"Method string of this run: `{method}`. On CUDA the same function reads "
         "`torch.cuda.max_memory_allocated() - torch.cuda.memory_allocated()`.", ""]
    s.append("### Targets (issue 14)\n")
    s.append("Ratios are measured in this run; a miss carries the profile that explains it (top operators by "
             "self CPU time of spikeforge's step, or for a memory target what autograd saves for backward, per "
             "module).\n")
    s += ["| target | net | measured | verdict | profile of a miss |", "|---|---|---|---|---|"]
    s += [r.markdown() for r in rows]
    s.append("")
    for model, res in main_res.items():
        s.append(f"### {model}, T = 4 ({rounds} rounds x {repeats} steps)\n")
        s.append(_table(res))
        s.append("\nAgreement before timing (eval mode, B = 4, same weights with random BN statistics, one "
                 "forward+backward; reference = spikeforge's autograd neuron loop):\n")
        s.append(_agreement_table(agreement[model]))
        s.append("")
    if sweep_res:
        s.append(f"### T sweep (1 round x {sweep_repeats} steps)\n")
        s.append("| net | T | " + " | ".join(f"{lb} (ms)" for lb in sweep_libs) + " | fastest peer / spikeforge |")
        s.append("|---|---:|" + "---:|" * (len(sweep_libs) + 1))
        for (model, t), res in sorted(sweep_res.items()):
            cells = []
            for lb in sweep_libs:
                m = _get(res, lb)
                cells.append("n/a" if m is None else f"{1e3 * m.median:.0f} (load {m.load:.0f})")
            sf, f = _get(res, "spikeforge"), _fastest_peer(res)
            ratio = f"{f.median / sf.median:.2f}x ({f.library})" if sf and f else "n/a"
            s.append(f"| {model} | {t} | " + " | ".join(cells) + f" | {ratio} |")
        s.append("")
    if inference is not None:
        s.append("### Folded inference vs vanilla LIF (VGG-4)\n")
        s.append(f"One inference batch `x[T, B, 3, {icfg.input_size}, {icfg.input_size}]` (`no_grad`, eval), "
                 f"T = {icfg.steps}, B = {icfg.batch}, {icfg.repeats} repeats; each net with a training-only neuron "
                 "(trained-looking state: BN/MPBN affine and amplitudes drawn around their init, running "
                 "statistics from three training forwards), folded with `spikeforge.fold`, against the same net "
                 "with the plain `lif` preset, folded too (BN merged into the conv); the two alternate every "
                 "repeat. Median ms:\n")
        s += ["| neuron | folded (ms) | vanilla LIF (ms) | ratio |", "|---|---:|---:|---:|"]
        for r in inference:
            s.append(f"| {r.variant} | {1e3 * sorted(r.variant_s)[len(r.variant_s) // 2]:.1f} | "
                     f"{1e3 * sorted(r.vanilla_s)[len(r.vanilla_s) // 2]:.1f} | {r.ratio:.3f}x |")
        s.append("")
    if pointnet is not None:
        s.append("### Spiking PointNet: one epoch at T = 1 vs T = 4\n")
        p = pcfg
        s.append(f"`pointnet` (width {p.width:g}, preset neuron `pointnet`), {p.batches} SGD steps per epoch on "
                 f"`[T, {p.batch}, 3, {p.points}]` point clouds, cross-entropy of the time-mean "
                 "logits + 0.001 x the feature-transform regulariser; T = 1 and T = 4 epochs alternate. Epoch ms: "
                 f"T = 1: {', '.join(f'{1e3 * v:.0f}' for v in pointnet.short_s)}; T = {pointnet.long_steps}: "
                 f"{', '.join(f'{1e3 * v:.0f}' for v in pointnet.long_s)}; median ratio {pointnet.ratio:.2f}x.\n")
    if plotted:
        s.append(f"![whole-step time and memory]({plot.name})\n")
    write_section(out, "\n".join(s))
    log(f"wrote {out}")
    print("\n".join(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
