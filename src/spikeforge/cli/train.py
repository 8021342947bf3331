"""``spikeforge train RECIPE [--set key=value ...] --out DIR`` and ``spikeforge train --resume DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._args import writable_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a recipe (YAML file or bundled name) into a run directory",
                       description="Train a recipe: a YAML file or a bundled recipe name (see `spikeforge recipes`). "
                                   "Runs under torchrun unchanged (DistributedDataParallel).")
    p.add_argument("recipe", nargs="?", help="recipe file or bundled recipe name (not needed with --resume)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value with a dotted key, YAML-typed (e.g. --set optim.lr=0.05 "
                        "--set epochs=3 --set data.limit=200 --set device=cpu); repeatable")
    p.add_argument("--out", help="run directory (default: runs/<recipe name>)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..runs import CheckpointError
    from ..train import NonFiniteLossError, resume, train

    try:
        if args.resume:
            if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
                raise ValueError("--resume continues in its own directory; drop --out or make it the same")
            resume(args.resume, args.overrides, verbose=not args.quiet)
        else:
            if not args.recipe:
                raise ValueError("give a recipe (file or bundled name, see `spikeforge recipes`) or --resume DIR")
            out = args.out or str(Path("runs") / Path(args.recipe).stem)
            writable_dir(out, "--out" if args.out else "the default run directory")
            if (Path(out) / "checkpoints" / "last").exists():
                raise ValueError(f"{out} already holds a run; use --resume {out} to continue it or pick another --out")
            train(args.recipe, out, args.overrides, verbose=not args.quiet)
    except NonFiniteLossError as exc:
        print(f"spikeforge train: stopped: {exc}", file=sys.stderr)
        return 3
    except (CheckpointError, TypeError) as exc:
        print(f"spikeforge train: error: {exc}", file=sys.stderr)
        return 2
    return 0
