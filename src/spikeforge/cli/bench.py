"""``spikeforge bench``: time the LIF neuron forward+backward (fused vs reference, optionally the peers), or,
with ``--model vgg4|resnet19``, the whole training step against the peer libraries.

Small default size so that it finishes in seconds; ``--shape``/``--steps``/``--repeats`` scale it up.
``benchmarks/neuron.py`` and ``benchmarks/step.py`` are the full, documented runs that write ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse

from ._args import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark the LIF neuron (fused vs reference; --peers adds other libraries)")
    p.add_argument("--case", choices=("conv", "linear"), default="conv",
                   help="conv: neuron alone on [T, B, C, H, W]; linear: Linear(n, n) + LIF on [T, B, n]")
    p.add_argument("--shape", type=positive_int, nargs="+", default=None, metavar="D",
                   help="shape without T: B C H W for conv (default 8 16 16 16), B n for linear (default 4 512)")
    p.add_argument("--steps", "-T", type=positive_int, default=8, help="time steps T (default 8)")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed repeats; the median is reported (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed repeats first (default 1)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--peers", action="store_true",
                   help="also run the eager loop and every installed peer (SpikingJelly, snnTorch, Norse)")
    p.add_argument("--no-memory", action="store_true",
                   help="time in this process instead of one subprocess per library (no peak-memory column)")
    p.add_argument("--check", action="store_true", help="also check spike/gradient agreement with the reference loop")
    p.add_argument("--model", choices=("vgg4", "resnet19"), default=None,
                   help="benchmark the whole training step of this net instead of the neuron alone")
    p.add_argument("--batch", type=positive_int, default=32, help="--model: batch size (default 32)")
    p.add_argument("--input-size", type=positive_int, default=32, help="--model: image side (default 32)")
    p.add_argument("--rounds", type=positive_int, default=1, help="--model: interleaved subprocess rounds")
    p.add_argument("--libraries", nargs="+", default=None, metavar="LIB",
                   help="--model: libraries to run (default: spikeforge, spikeforge-compressed, spikeforge-recompute "
                        "and, with --peers, "
                        "every installed peer, the plain loop and the ANN)")
    p.set_defaults(func=run)


def run_step(args: argparse.Namespace) -> int:
    from ..bench import machine_info
    from ..bench.step import (
        STEP_LIBRARIES,
        StepConfig,
        available_step_libraries,
        check_step_agreement,
        measure_step_rounds,
    )

    cfg = StepConfig(model=args.model, steps=args.steps, batch=args.batch, input_size=args.input_size,
                     repeats=args.repeats, warmup=max(0, args.warmup), threads=args.threads or 1)
    if args.libraries:
        bad = sorted(set(args.libraries) - set(STEP_LIBRARIES))
        if bad:
            raise ValueError(f"--libraries: unknown {bad}; choose from {list(STEP_LIBRARIES)}")
        libs = available_step_libraries(args.libraries)
    elif args.peers:
        libs = available_step_libraries()
    else:
        libs = ["spikeforge", "spikeforge-compressed", "spikeforge-recompute"]
    info = machine_info()
    print(f"# {args.model} training step, T={cfg.steps}, B={cfg.batch}, {cfg.input_size}x{cfg.input_size}, "
          f"threads={cfg.threads}, {cfg.repeats} steps x {args.rounds} rounds (median)")
    print(f"# {info['cpu']}, torch {info['torch']}, load {info['load average (1 min)']}")
    if args.check:
        for a in check_step_agreement(libs, cfg):
            print(f"# agreement {a.library}: spikes {a.spikes}/{a.reference_spikes}, logits diff "
                  f"{a.logits_max_abs_diff:.1e}, grad rel diff {a.grad_rel_diff:.1e} {a.note}")
    res = measure_step_rounds(libs, cfg, args.rounds)
    base = res[0]
    print(f"# peak extra memory of one step in each library's fresh process: {base.memory_method}")
    print("| library | step median (ms) | min-max (ms) | peak extra mem (MiB) | time / first | load |")
    print("|---|---:|---:|---:|---:|---:|")
    for m in res:
        mem = "n/a" if m.peak_mem_bytes is None else f"{m.peak_mem_bytes / 2**20:.0f}"
        print(f"| {m.library} | {1e3 * m.median:.0f} | {1e3 * min(m.step_s):.0f}-{1e3 * max(m.step_s):.0f} | "
              f"{mem} | {m.median / base.median:.2f}x | {m.load:.1f} |")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.model is not None:
        return run_step(args)
    from ..bench import (
        BenchConfig,
        available_libraries,
        check_agreement,
        format_table,
        machine_info,
        measure,
        measure_in_subprocess,
    )
    from ..bench.neuron import format_agreement

    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    default = (8, 16, 16, 16) if args.case == "conv" else (4, 512)
    shape = (args.steps, *(args.shape or default))
    cfg = BenchConfig(case=args.case, shape=shape, repeats=args.repeats, warmup=args.warmup, threads=args.threads)
    libs = ["spikeforge", "spikeforge-pyfused", "spikeforge-reference"]
    if args.peers:
        libs = available_libraries()
    info = machine_info()
    threads = args.threads or info["torch threads"]
    print(f"# {cfg.case} case, x{list(shape)}, {cfg.repeats} repeats (median), threads={threads}")
    print(f"# {info['cpu']}, torch {info['torch']}")
    if args.no_memory:
        results = [measure(lib, cfg, memory=False) for lib in libs]
    else:
        results = [measure_in_subprocess(lib, cfg) for lib in libs]
    print(format_table(results))
    if args.check:
        print()
        print(format_agreement(check_agreement(libs, cfg)))
    return 0
