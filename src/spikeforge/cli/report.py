"""``spikeforge report RUN [RUN ...]``: write RUN/report.md for each run and summarise; with several runs, also a
comparison table of their metrics and differing hyper-parameters."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ._args import positive_int, writable_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write report.md for finished runs (and compare several) and print a summary",
                       description="Write RUN/report.md (metrics, hyper-parameters, curves, confusion matrix, fold "
                                   "check, energy, firing rates, membranes) for each run; with two or more runs "
                                   "also a side-by-side comparison.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN", help="finished run directories (from spikeforge train)")
    p.add_argument("--samples", type=positive_int, default=128,
                   help="test samples for the firing-rate/membrane/energy measurement and the fold check "
                        "(default 128)")
    p.add_argument("--eval-samples", type=positive_int, default=2000,
                   help="test samples for the confusion matrix and per-class accuracy (default 2000)")
    p.add_argument("--compare-out", metavar="FILE",
                   help="where the comparison of several runs goes (default: comparison.md in the runs' common "
                        "parent folder)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train.report import write_comparison, write_report

    if args.compare_out is not None:
        writable_file(args.compare_out, "--compare-out")
    for run_dir in args.run_dirs:
        path, summary = write_report(run_dir, samples=args.samples, eval_samples=args.eval_samples)
        for line in summary:
            print(line)
        print(f"report -> {path}")
    if len(args.run_dirs) > 1:
        out = args.compare_out or Path(os.path.commonpath([str(Path(r).resolve()) for r in args.run_dirs])) / \
            "comparison.md"
        print(f"comparison -> {write_comparison(args.run_dirs, out)}")
    return 0
