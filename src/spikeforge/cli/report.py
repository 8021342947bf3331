"""``spikeforge report RUN_DIR``: write RUN/report.md (metrics, curves, firing rates, membranes) and summarise."""

from __future__ import annotations

import argparse

from ._args import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write report.md for a finished run and print a summary")
    p.add_argument("run_dir")
    p.add_argument("--samples", type=positive_int, default=128, help="test samples for firing-rate/membrane plots")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train.report import write_report

    path, summary = write_report(args.run_dir, samples=args.samples)
    for line in summary:
        print(line)
    print(f"report -> {path}")
    return 0
