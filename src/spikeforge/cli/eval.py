"""``spikeforge eval RUN_DIR_OR_CKPT [--T T] [--sweep TMAX]``: test accuracy of a trained model."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a run directory or checkpoint on its test split (optionally a T sweep)")
    p.add_argument("path", help="run directory, checkpoint folder (RUN/checkpoints/best) or .safetensors weights")
    p.add_argument("--which", choices=["final", "best", "last"], help="weights of a run directory (default: final, "
                   "or last for an unfinished run)")
    p.add_argument("--T", type=int, help="time steps (default: the recipe's eval_T or T)")
    p.add_argument("--sweep", type=int, metavar="TMAX", help="accuracy for every T = 1..TMAX in one pass")
    p.add_argument("--limit", type=int, help="first N test samples only")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import data
    from ..encode import input_kind
    from ..runs import load_run
    from ..train.builders import build_objective
    from ..train.finalize import sweep
    from ..train.trainer import evaluate, resolve_device

    device = resolve_device(args.device)
    model, cfg = load_run(args.path, args.which, map_location=device)
    d = cfg["data"]
    limit = args.limit if args.limit is not None else d.get("limit")
    test = data.get(d["name"], "test", root=d.get("root"), limit=limit, **dict(d.get("options") or {}))
    objective = build_objective(cfg)
    kind = input_kind(model)
    T = args.T or cfg.get("eval_T") or cfg["T"]
    result: dict = {"path": args.path, "dataset": d["name"], "test_samples": len(test), "T": T}
    if args.sweep:
        accs = sweep(model, objective, test.x, test.y, kind, list(range(1, args.sweep + 1)), args.batch_size, device)
        result["T_sweep"] = {str(k): v for k, v in accs.items()}
    else:
        loss, acc = evaluate(model, objective, test.x, test.y, T=T, kind=kind, batch_size=args.batch_size,
                             device=device)
        result.update(test_acc=acc, test_loss=loss)
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.sweep:
        print(f"{'T':>4} {'test acc':>9}")
        for k, v in result["T_sweep"].items():
            print(f"{k:>4} {v:>9.4f}")
    else:
        print(f"test accuracy {result['test_acc']:.4f}  (loss {result['test_loss']:.4f}, T={T}, "
              f"{len(test)} samples of {d['name']})")
    return 0
