"""``spikeforge eval RUN_DIR_OR_CKPT [--T T] [--sweep TMAX] [--votes V]``: test accuracy of a trained model."""

from __future__ import annotations

import argparse
import json

from ._args import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a run directory or checkpoint on its test split (optionally a T sweep)")
    p.add_argument("path", help="run directory, checkpoint folder (RUN/checkpoints/best) or .safetensors weights")
    p.add_argument("--which", choices=["final", "best", "last"], help="weights of a run directory (default: final, "
                   "or last for an unfinished run)")
    p.add_argument("--T", type=positive_int, help="time steps (default: the recipe's eval_T or T)")
    p.add_argument("--sweep", type=positive_int, metavar="TMAX", help="accuracy for every T = 1..TMAX in one pass")
    p.add_argument("--votes", type=positive_int, help="average the readout of V forward passes per batch (Spiking "
                   "PointNet's official test uses 3; each pass draws fresh random initial membranes); default: "
                   "the recipe's eval.votes")
    p.add_argument("--limit", type=positive_int, help="first N test samples only")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--batch-size", type=positive_int, default=256, help="samples per forward (default 256)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import data
    from ..analysis.memory import check_fits
    from ..train.builders import build_objective, encode_input, input_kind
    from ..train.checkpoint import load_run
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
    votes = args.votes if args.votes is not None else int((cfg.get("eval") or {}).get("votes", 1) or 1)
    if kind == "events" and args.T:
        raise ValueError(f"--T does not apply to event data: its frames carry their own T "
                         f"({test.x.shape[1]} here); use --sweep to evaluate prefixes")
    steps = args.sweep or T
    batch = min(args.batch_size, len(test))
    one = encode_input(test.x[:1].to(device), kind, 1)  # events: all their frames, so no T factor
    check_fits(model, one, 1 if kind == "events" else steps, batch, device, f"evaluating at T={steps}")
    result: dict = {"path": args.path, "dataset": d["name"], "test_samples": len(test), "T": T, "votes": votes}
    if args.sweep:
        accs = sweep(model, objective, test.x, test.y, kind, list(range(1, args.sweep + 1)), args.batch_size, device,
                     votes)
        result["T_sweep"] = {str(k): v for k, v in accs.items()}
    else:
        loss, acc = evaluate(model, objective, test.x, test.y, T=T, kind=kind, batch_size=args.batch_size,
                             device=device, votes=votes)
        result.update(test_acc=acc, test_loss=loss)
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.sweep:
        print(f"{'T':>4} {'test acc':>9}")
        for k, v in result["T_sweep"].items():
            print(f"{k:>4} {v:>9.4f}")
    else:
        print(f"test accuracy {result['test_acc']:.4f}  (loss {result['test_loss']:.4f}, T={T}, "
              f"{votes} vote(s), {len(test)} samples of {d['name']})")
    return 0
