"""``spikeforge fold RUN_DIR``: fold the trained model into plain spiking inference, verify, save."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fold", help="fold a trained run (BN, MPBN, amplitudes) and verify it on test samples")
    p.add_argument("run_dir", help="run directory (or checkpoint folder)")
    p.add_argument("--which", choices=["final", "best", "last"], help="weights to fold (default: final)")
    p.add_argument("--samples", type=int, default=64, help="test samples used by verify_fold (default 64)")
    p.add_argument("--out", help="where to write the folded state (default: RUN/folded.safetensors)")
    p.add_argument("--tolerance", type=float, default=1e-5, help="exit non-zero above this deviation")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import data
    from ..encode import for_kind, input_kind
    from ..runs import load_run, save_tensors
    from ..train.finalize import fold_and_verify

    model, cfg = load_run(args.run_dir, args.which)
    d = cfg["data"]
    test = data.get(d["name"], "test", root=d.get("root"), limit=args.samples, **dict(d.get("options") or {}))
    x = for_kind(test.x[:args.samples], input_kind(model), cfg.get("eval_T") or cfg["T"])
    folded, dev = fold_and_verify(model, x)
    out = Path(args.out) if args.out else Path(args.run_dir) / "folded.safetensors"
    save_tensors(out, folded.state_dict())
    ok = dev <= args.tolerance
    print(f"folded {cfg['model']['name']}: max deviation {dev:.3g} on {x.shape[1]} test samples "
          f"({'ok' if ok else 'ABOVE'} tolerance {args.tolerance:g}); saved {out}")
    return 0 if ok else 1
