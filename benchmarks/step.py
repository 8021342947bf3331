"""Whole training step: spikeforge vs SpikingJelly, snnTorch, Norse, a plain PyTorch loop and the ANN (ReLU).

Writes the generated section "Whole training step" of docs/benchmarks.md (between the ``step-benchmark`` markers;
the rest of the file is left alone) and a plot docs/benchmarks_step.png. What each library runs, and how the same
weights get into every library: ``src/spikeforge/bench/step.py``.

Plan (``make bench``, < 15 min on the 2-core machine): every library on both nets at T = 4 (``--rounds``
interleaved rounds, every measurement a fresh subprocess), then the T sweep 1, 2, 8 for spikeforge, the fastest
multi-step peer (SpikingJelly).

Usage::

    python benchmarks/step.py                          # full run
    python benchmarks/step.py --quick --out /tmp/b.md  # tiny sizes, a smoke run (tests/bench)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from spikeforge.bench import machine_info
from spikeforge.bench.step import (
    StepConfig,
    StepMeasurement,
    available_step_libraries,
    check_step_agreement,
    measure_step_rounds,
)

BEGIN, END = "<!-- step-benchmark:begin -->", "<!-- step-benchmark:end -->"
PEERS = ("spikingjelly", "snntorch", "norse", "eager")


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()}"


def _table(results: list[StepMeasurement]) -> str:
    base = next(m for m in results if m.library == "spikeforge")
    lines = ["| library | version | step median (ms) | min-max (ms) | fwd median (ms) | peak mem (MiB) "
             "| time / spikeforge | mem / spikeforge | load (1 min) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in results:
        mem = "n/a" if m.peak_mem_bytes is None else f"{m.peak_mem_bytes / 2**20:.0f}"
        mr = (f"{m.peak_mem_bytes / base.peak_mem_bytes:.2f}x" if m.peak_mem_bytes and base.peak_mem_bytes
              else "n/a")
        lines.append(f"| {m.library} | {m.version} | {1e3 * m.median:.0f} | {1e3 * min(m.step_s):.0f}-"
                     f"{1e3 * max(m.step_s):.0f} | {1e3 * m.fwd_median:.0f} | {mem} | "
                     f"{m.median / base.median:.2f}x | {mr} | {m.load:.1f} |")
    return "\n".join(lines)


def _agreement_table(rows) -> str:
    lines = ["| library | spikes | reference spikes | max abs logit diff | max rel. grad diff | note |",
             "|---|---:|---:|---:|---:|---|"]
    for a in rows:
        g = "-" if a.grad_rel_diff != a.grad_rel_diff else f"{a.grad_rel_diff:.1e}"
        lines.append(f"| {a.library} | {a.spikes} | {a.reference_spikes} | {a.logits_max_abs_diff:.1e} | {g} "
                     f"| {a.note} |")
    return "\n".join(lines)


def _get(res: list[StepMeasurement], lib: str) -> StepMeasurement | None:
    return next((m for m in res if m.library == lib), None)


def _targets(main: dict[str, list[StepMeasurement]], sweep: dict[tuple[str, int], list[StepMeasurement]]) -> list[str]:
    rows = ["| target | net | measured | met? |", "|---|---|---|---|"]
    for model, res in main.items():
        sf = _get(res, "spikeforge")
        assert sf is not None
        peers = [m for m in res if m.library in PEERS]
        if not peers:
            continue
        fastest = min(peers, key=lambda m: m.median)
        r = fastest.median / sf.median
        rows.append(f"| step >= 1.2x faster than the fastest peer at T = 4 | {model} | {r:.2f}x vs {fastest.library}"
                    f" | {'met' if r >= 1.2 else 'missed'} |")
        slow = []
        for (mm, t), sres in sorted(sweep.items()):
            if mm != model:
                continue
            s = _get(sres, "spikeforge")
            ps = [m for m in sres if m.library in PEERS]
            if s and ps:
                f = min(ps, key=lambda m: m.median)
                slow.append(f"T={t}: {f.median / s.median:.2f}x vs {f.library}")
        all_t = [float(x.split(": ")[1].split("x")[0]) for x in slow] + [r]
        rows.append(f"| no slower than the fastest peer at T = 1..8 | {model} | {'; '.join(slow) or 'T sweep not run'}"
                    f"; T=4: {r:.2f}x | {'met' if min(all_t) >= 1.0 else 'missed'} |")
        pm = [m for m in peers if m.peak_mem_bytes]
        if pm and sf.peak_mem_bytes:
            best = min(pm, key=lambda m: m.peak_mem_bytes or 0)
            q = sf.peak_mem_bytes / (best.peak_mem_bytes or 1)
            rows.append(f"| peak training memory <= 0.5x the best peer's | {model} | {q:.2f}x of {best.library}'s "
                        f"| {'met' if q <= 0.5 else 'missed'} |")
        comp, eager = _get(res, "spikeforge-compressed"), _get(res, "eager")
        if comp and eager and comp.peak_mem_bytes and eager.peak_mem_bytes:
            q = eager.peak_mem_bytes / comp.peak_mem_bytes
            tr = comp.median / eager.median
            ok = q >= 8 and tr <= 1.2
            rows.append(f"| with compression (+ recomputation: not implemented) >= 8x below the plain loop's memory "
                        f"at <= 1.2x its time | {model} | {q:.2f}x less memory at {tr:.2f}x the time "
                        f"| {'met' if ok else 'missed'} |")
    rows.append("| folded inference <= 1.02x a vanilla LIF model of the same shape | - | not measured by this "
                "benchmark yet | missed (not measured) |")
    rows.append("| Spiking PointNet: training at T = 1 <= 0.3x training at T = 4 per epoch | - | not measured by this "
                "benchmark yet | missed (not measured) |")
    return rows


def _plot(main: dict[str, list[StepMeasurement]], sweep, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        return False
    fig, axes = plt.subplots(1, 2 * len(main), figsize=(6 * len(main) * 2 // 2 + 2, 3.6))
    for i, (model, res) in enumerate(main.items()):
        ax, axm = axes[2 * i], axes[2 * i + 1]
        libs = [m.library for m in res]
        ax.barh(libs, [1e3 * m.median for m in res],
                xerr=[[1e3 * (m.median - min(m.step_s)) for m in res], [1e3 * (max(m.step_s) - m.median) for m in res]],
                color=["tab:orange" if lib.startswith("spikeforge") else "tab:blue" for lib in libs])
        ax.set_title(f"{model}, T = 4: step (ms)")
        axm.barh(libs, [(m.peak_mem_bytes or 0) / 2**20 for m in res],
                 color=["tab:orange" if lib.startswith("spikeforge") else "tab:gray" for lib in libs])
        axm.set_title(f"{model}, T = 4: peak mem (MiB)")
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/benchmarks.md", help="markdown file whose step section is (re)written")
    ap.add_argument("--plot", default=None, help="PNG plot (default: benchmarks_step.png next to --out)")
    ap.add_argument("--models", nargs="+", default=["vgg4", "resnet19"], choices=["vgg4", "resnet19"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=1,
                    help="interleaved subprocess rounds at T = 4 (1 keeps `make bench` under 15 min at load ~30)")
    ap.add_argument("--resnet-width", type=float, default=0.125, help="width multiplier of the ResNet-19")
    ap.add_argument("--repeats", type=int, default=2, help="timed steps per subprocess (after one set-up step)")
    ap.add_argument("--sweep", type=int, nargs="*", default=[1, 2, 8], help="other T for the sweep")
    ap.add_argument("--sweep-libraries", nargs="+", default=["spikeforge", "spikingjelly"])
    ap.add_argument("--libraries", nargs="+", default=None, help="subset of libraries (default: all installed)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads per process (default 1: on a loaded shared machine a 2-thread OpenMP region "
                         "waits a scheduler slice for its second thread at every op; use 2 on an idle machine)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a measurement")
    args = ap.parse_args(argv)

    started = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - started:6.0f} s] {msg}", file=sys.stderr, flush=True)

    size, batch, repeats, rounds = (16, 2, 1, 1) if args.quick else (32, args.batch, args.repeats, args.rounds)
    sweep_t = args.sweep if not args.quick or args.sweep != [1, 2, 8] else [1]
    libs = available_step_libraries(args.libraries) if args.libraries else available_step_libraries()
    if "spikeforge" not in libs:
        raise SystemExit("--libraries must include spikeforge (the baseline of every ratio)")
    uptime_before = _uptime()
    info = machine_info()
    agreement = {}
    main_res: dict[str, list[StepMeasurement]] = {}
    sweep_res: dict[tuple[str, int], list[StepMeasurement]] = {}
    for model in args.models:
        cfg = StepConfig(model=model, steps=4, batch=batch, input_size=size, repeats=repeats, warmup=0,
                         threads=args.threads, width=args.resnet_width)
        log(f"{model}: agreement")
        agreement[model] = check_step_agreement(libs, dataclasses.replace(cfg, batch=min(batch, 4)))
        for a in agreement[model]:
            if a.spikes != a.reference_spikes and a.library != "norse":
                raise SystemExit(f"{a.library} disagrees with the reference on {model}: {a}")
        main_res[model] = measure_step_rounds(libs, cfg, rounds, log)
    for t in sweep_t:
        for model in args.models:
            cfg = StepConfig(model=model, steps=t, batch=batch, input_size=size, repeats=max(1, repeats - 1),
                             warmup=0, threads=args.threads, width=args.resnet_width)
            sweep_res[(model, t)] = measure_step_rounds([lb for lb in args.sweep_libraries if lb in libs], cfg, 1,
                                                         log)
    uptime_after = _uptime()
    out = Path(args.out)
    plot = Path(args.plot) if args.plot else out.parent / "benchmarks_step.png"
    plotted = _plot(main_res, sweep_res, plot)
    cmd = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/step.py", *(argv if argv is not None
                                                                                 else sys.argv[1:])])
    s = ["## Whole training step (generated)", "",
         f"Generated by `{cmd}` in {(time.time() - started) / 60:.1f} min (`make bench`). Do not edit by hand.",
         "", f"- machine: {info['cpu']}, {info['logical cores']} logical cores, torch {info['torch']} "
         f"({info['torch threads']} threads), Python {info['python']}",
         f"- `uptime` before: `{uptime_before}`", f"- `uptime` after: `{uptime_after}`",
         "- the machine is shared with other jobs: every number carries the 1-min load average of its run; "
         "prefer the ratios (same interleaved run) to the absolute times.", "",
         "One SGD step (momentum 0.9) = zero grads (`set_to_none`), forward over `x[T, B, 3, 32, 32]` (a static "
         "image repeated T times), cross-entropy of the time-mean logits, backward, `optimizer.step()`. "
         f"B = {batch}. Every library in its own fresh subprocess per round, rounds interleaved (order reversed "
         "every other round); median over all rounds' timed steps; peak memory = the Linux high-water mark "
         f"`VmHWM` minus `VmRSS` over one step after a first step (model, optimizer state and data resident). "
         f"Threads per process: {args.threads}. "
         "Nets: `vgg4` = conv 64-128-256-256, BN, LIF, avg-pool after each, linear; `resnet19` = spiking "
         f"ResNet-19 at width {args.resnet_width:g} (blocks 3-3-2; width 1 = 128-256-512). LIF: tau = 2 "
         "(decay 0.5), threshold 1, hard reset through the spike, ATan alpha = 2. `ann` = the same net with ReLU "
         "run once on `[B, ...]`. Configuration "
         "of every library: `src/spikeforge/bench/step.py`.", ""]
    s.append("### Targets (issue 14)\n")
    s += _targets(main_res, sweep_res)
    s.append("")
    for model, res in main_res.items():
        s.append(f"### {model}, T = 4 ({rounds} rounds x {repeats} steps)\n")
        s.append(_table(res))
        s.append("\nAgreement before timing (eval mode, B = 4, same weights with random BN statistics, one "
                 "forward+backward; reference = spikeforge's autograd neuron loop):\n")
        s.append(_agreement_table(agreement[model]))
        s.append("")
    if sweep_res:
        s.append("### T sweep (1 round each)\n")
        s.append("| net | T | " + " | ".join(f"{lb} (ms)" for lb in args.sweep_libraries) + " | peer / spikeforge |")
        s.append("|---|---:|" + "---:|" * (len(args.sweep_libraries) + 1))
        for (model, t), res in sorted(sweep_res.items()):
            cells = []
            for lb in args.sweep_libraries:
                m = _get(res, lb)
                cells.append("n/a" if m is None else f"{1e3 * m.median:.0f} (load {m.load:.0f})")
            sf = _get(res, "spikeforge")
            ps = [m for m in res if m.library in PEERS]
            ratio = f"{min(p.median for p in ps) / sf.median:.2f}x" if sf and ps else "n/a"
            s.append(f"| {model} | {t} | " + " | ".join(cells) + f" | {ratio} |")
        s.append("")
    if plotted:
        s.append(f"![whole-step time and memory]({plot.name})\n")
    write_section(out, "\n".join(s))
    log(f"wrote {out}")
    print("\n".join(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
