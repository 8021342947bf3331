"""``spikeforge study [PART ...] [--seeds 3] [--quick] [--out DIR]``: the papers' claims, trained, folded, measured
and reported (``docs/results.md``) by one command. Resumable: a finished run is never retrained."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._args import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    from ..study.plan import part_names

    p = sub.add_parser(
        "study", help="test the papers' claims: train every method, fold, measure, write results/*.json + a report",
        description="Train every method of the study's parts (static Fashion-MNIST, simulated events, point "
                    "clouds) for several seeds, fold and evaluate each model, write one JSON result per run to "
                    "--out and regenerate the report from those files. Finished runs are skipped (resumable; "
                    "run it in the background with nohup). --quick: embedded digits, tiny subsets, one epoch "
                    "(a minutes-long smoke test, not evidence).")
    p.add_argument("parts", nargs="*", metavar="PART", help=f"study parts to run (default all): {part_names()}")
    p.add_argument("--seeds", type=positive_int, default=None, help="seeds 0..N-1 per method (default 3; quick 2)")
    p.add_argument("--quick", action="store_true", help="smoke version on embedded data (minutes)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="result files go here (default results/, quick: runs/study-quick/)")
    p.add_argument("--report", default=None, metavar="FILE",
                   help="report to regenerate (default docs/results.md for results/, else DIR/results.md)")
    p.add_argument("--methods", nargs="+", default=None, metavar="NAME", help="only these method names")
    p.add_argument("--work", default=None, metavar="DIR",
                   help="training run folders and logs (default DIR/work; resumes interrupted runs)")
    p.add_argument("--in-process", action="store_true",
                   help="train in this process instead of one fresh process per run (no per-run peak memory)")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="runs trained at the same time, each in its own process (default 1)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="intra-op threads per run (default: logical cores / jobs)")
    p.add_argument("--timeout", type=positive_int, default=None, metavar="SECONDS",
                   help="give up a run after this long (it resumes from its last epoch next time)")
    p.add_argument("--list", action="store_true", help="print the planned runs and whether each is finished")
    p.add_argument("--report-only", action="store_true", help="only rebuild the report from the result files")
    p.add_argument("--no-plots", action="store_true", help="report text only (no matplotlib figures)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..study.execute import is_finished, run_study
    from ..study.plan import plan
    from ..study.report import write_report

    out = Path(args.out or ("runs/study-quick" if args.quick else "results"))
    report = Path(args.report) if args.report else (Path("docs/results.md") if out == Path("results")
                                                    else out / "results.md")
    seeds = args.seeds or (2 if args.quick else 3)
    command = "spikeforge study" + "".join(f" {p}" for p in args.parts) + f" --seeds {seeds}" + \
        (" --quick" if args.quick else "") + f" --out {out.as_posix()} --report {report.as_posix()}"
    runs = plan(args.parts or None, seeds=seeds, quick=args.quick, methods=args.methods)
    if args.list:
        for r in runs:
            print(f"{'done' if is_finished(out, r) else 'todo'}  {r.run_id}")
        return 0
    failed: list[str] = []
    if not args.report_only:
        _, failed = run_study(runs, out, work=Path(args.work) if args.work else None, isolate=not args.in_process,
                              jobs=args.jobs, threads=args.threads, timeout=args.timeout)
    if not any(out.glob("*.json")):
        raise ValueError(f"no result files in {out}: nothing to report")
    path = write_report(out, report, plots=not args.no_plots, command=command)
    print(f"report -> {path}")
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)} (logs under the work folder; rerun to retry)")
        return 1
    return 0
