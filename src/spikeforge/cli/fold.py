"""``spikeforge fold RUN_DIR``: fold the trained model into plain spiking inference, verify, save."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._args import nonnegative_float, positive_int, writable_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fold", help="fold a trained run (BN, MPBN, amplitudes) and verify it on test samples")
    p.add_argument("run_dir", help="run directory (or checkpoint folder)")
    p.add_argument("--which", choices=["final", "best", "last"], help="weights to fold (default: final)")
    p.add_argument("--samples", type=positive_int, default=64, help="test samples used by verify_fold (default 64)")
    p.add_argument("--out", help="where to write the folded state (default: RUN/folded.safetensors)")
    p.add_argument("--tolerance", type=nonnegative_float, default=1e-5, help="exit non-zero above this deviation")
    p.add_argument("--artifact", help="where to write the reloadable inference artifact (default: "
                   "RUN/folded.sfnet; see spikeforge.load_inference)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import data
    from ..train.builders import encode_input, input_kind
    from ..train.checkpoint import load_run, save_tensors, update_run_manifest
    from ..train.finalize import fold_and_verify

    out = writable_file(args.out if args.out else Path(args.run_dir) / "folded.safetensors")
    model, cfg = load_run(args.run_dir, args.which)
    d = cfg["data"]
    test = data.get(d["name"], "test", root=d.get("root"), limit=args.samples, **dict(d.get("options") or {}))
    x = encode_input(test.x[:args.samples], input_kind(model), cfg.get("eval_T") or cfg["T"])
    folded, dev = fold_and_verify(model, x)
    save_tensors(out, folded.state_dict())
    from ..interop import graph_from_module, save_inference
    from .export import artifact_metadata

    T = int(x.shape[0])
    artifact = writable_file(args.artifact if args.artifact else Path(args.run_dir) / "folded.sfnet", "--artifact")
    save_inference(graph_from_module(folded, example=x[:, :2], metadata=artifact_metadata(model, cfg, T)), artifact)
    run_dir = Path(args.run_dir).resolve()
    in_run = [p.name for p in (out, artifact) if p.resolve().parent == run_dir and (run_dir / "config.yaml").exists()]
    if in_run:
        update_run_manifest(run_dir, in_run)
    ok = dev <= args.tolerance
    print(f"folded {cfg['model']['name']}: max deviation {dev:.3g} on {x.shape[1]} test samples "
          f"({'ok' if ok else 'ABOVE'} tolerance {args.tolerance:g}); saved {out} and {artifact}")
    return 0 if ok else 1
