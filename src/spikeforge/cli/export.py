"""``spikeforge export RUN --format spikeforge|nir|onnx --out FILE``: a trained run as a deployable file."""

from __future__ import annotations

import argparse
from typing import Any

from ._args import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="fold a trained run and write it as a spikeforge artifact, NIR or ONNX file")
    p.add_argument("run_dir", help="run directory (or checkpoint folder)")
    p.add_argument("--format", choices=["spikeforge", "nir", "onnx"], default="spikeforge",
                   help="spikeforge (.sfnet, exact, default), nir (.nir, HDF5) or onnx (.onnx)")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--which", choices=["final", "best", "last"], help="weights to export (default: final)")
    p.add_argument("--T", type=positive_int,
                   help="time steps (default: the recipe's eval_T or T; fixes ONNX's unrolling)")
    p.add_argument("--dt", type=float, default=1e-4, help="NIR time step (default 1e-4, snnTorch's)")
    p.add_argument("--lossy", action="store_true", help="NIR: write the nearest network when NIR cannot express "
                   "a property (each loss is warned about)")
    p.add_argument("--unit-r", action="store_true", help="NIR: write r = 1 (for readers that ignore r, e.g. Norse)")
    p.add_argument("--streaming", action="store_true", help="ONNX: a per-step graph with the membranes as I/O")
    p.set_defaults(func=run)


def folded_run(run_dir: str, which: str | None, T: int | None) -> tuple[Any, Any, Any, dict[str, Any], int]:
    """``(model, folded, example input [T, 2, ...], recipe, T)`` of a trained run."""
    from .. import data, fold
    from ..train.builders import encode_input, input_kind
    from ..train.checkpoint import load_run

    model, cfg = load_run(run_dir, which)
    d = cfg["data"]
    steps = T or cfg.get("eval_T") or cfg["T"]
    test = data.get(d["name"], "test", root=d.get("root"), limit=2, **dict(d.get("options") or {}))
    x = encode_input(test.x[:2], input_kind(model), steps)
    return model, fold(model), x, cfg, int(x.shape[0])


def artifact_metadata(model: Any, cfg: dict[str, Any], T: int) -> dict[str, Any]:
    from ..train.builders import input_kind

    d = cfg["data"]
    return {"model": cfg["model"]["name"], "T": T, "input_kind": input_kind(model), "data": d["name"],
            "data_options": dict(d.get("options") or {})}


def run(args: argparse.Namespace) -> int:
    import torch

    from ..interop import graph_from_module, save_inference, verify_artifact
    from ..interop.runtime import InferenceNetwork
    from ._args import writable_file

    out = writable_file(args.out)
    model, folded, x, cfg, T = folded_run(args.run_dir, args.which, args.T)
    graph = graph_from_module(folded, example=x, metadata=artifact_metadata(model, cfg, T))
    # float64, as verify_fold: the fold is exact in exact arithmetic, float32 rounding may flip a borderline spike
    report = verify_artifact(model, InferenceNetwork(graph), x, dtype=torch.float64)
    if args.format == "spikeforge":
        save_inference(graph, out)
    elif args.format == "nir":
        import nir

        from ..interop.nir import to_nir

        nir.write(str(out), to_nir(graph, dt=args.dt, lossy=args.lossy, unit_r=args.unit_r))
    else:
        from ..interop.onnx import export_onnx

        export_onnx(graph, out, T=T, streaming=args.streaming)
    print(f"exported {cfg['model']['name']} as {args.format} to {out} ({len(graph.nodes)} nodes, T={T}); "
          f"graph vs trained model (float64): max |Δ logits| {report.max_abs:.3g}, spikes "
          f"{'identical' if report.spikes_equal else 'DIFFER'}")
    return 0 if report.spikes_equal else 1
