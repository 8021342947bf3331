"""``spikeforge bench``: time the LIF neuron forward+backward (fused vs reference, optionally the peers).

Small default size so that it finishes in seconds; ``--shape``/``--steps``/``--repeats`` scale it up.
``benchmarks/neuron.py`` is the full, documented run that writes ``docs/benchmarks.md``.
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
