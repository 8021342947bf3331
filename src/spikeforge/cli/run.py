"""``spikeforge run FILE --data NAME``: test accuracy of an exported network (.sfnet, .nir or .onnx)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ._args import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="evaluate an exported network (spikeforge artifact, NIR or ONNX) on a dataset")
    p.add_argument("path", help="a .sfnet artifact, a .nir file or a .onnx file")
    p.add_argument("--data", help="dataset name (default: the one recorded in a spikeforge artifact)")
    p.add_argument("--kind", choices=["static", "events", "points"],
                   help="input encoding (default: recorded in the artifact, else static)")
    p.add_argument("--T", type=positive_int, help="time steps (default: recorded in the artifact; ONNX: unrolled T)")
    p.add_argument("--dt", type=float, help="NIR: time step of a graph without spikeforge metadata")
    p.add_argument("--limit", type=positive_int, help="first N test samples only")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _load(path: Path, dt: float | None) -> tuple[Any, dict[str, Any]]:
    """``(callable x[T, B, ...] -> logits, metadata)``."""
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        shape = sess.get_inputs()[0].shape
        T = shape[0] if isinstance(shape[0], int) else None

        def onnx_forward(x: Tensor) -> Tensor:
            return torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: x.float().numpy()})[0])

        return onnx_forward, {"T": T}
    if suffix == ".nir":
        from ..interop.nir import from_nir

        net = from_nir(path, dt=dt)
    else:
        from ..interop import load_inference

        net = load_inference(path)
    return net, dict(net.graph.metadata)


def run(args: argparse.Namespace) -> int:
    from .. import data
    from ..train.builders import encode_input

    path = Path(args.path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    forward, meta = _load(path, args.dt)
    name = args.data or meta.get("data")
    if not name:
        raise ValueError(f"{path} records no dataset; pass --data NAME")
    options = dict(meta.get("data_options") or {}) if name == meta.get("data") else {}
    test = data.get(name, "test", limit=args.limit, **options)
    T = args.T or meta.get("T")
    if not T:
        raise ValueError(f"{path} records no number of time steps; pass --T N")
    if path.suffix.lower() == ".onnx" and meta.get("T") and args.T and args.T != meta["T"]:
        raise ValueError(f"{path} is unrolled for T={meta['T']}, got --T {args.T}")
    kind = str(args.kind or meta.get("input_kind") or getattr(test, "kind", "static"))
    correct = 0
    with torch.no_grad():
        for start in range(0, len(test), args.batch_size):
            xb = test.x[start:start + args.batch_size]
            logits = forward(encode_input(xb, kind, int(T)))
            logits = logits[0] if isinstance(logits, tuple) else logits
            pred = (logits.mean(0) if logits.ndim >= 3 else logits).argmax(-1)
            correct += int((pred == test.y[start:start + args.batch_size]).sum())
    acc = correct / max(len(test), 1)
    result = {"path": str(path), "dataset": name, "test_samples": len(test), "T": int(T), "test_acc": acc}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"test accuracy {acc:.4f}  (T={T}, {len(test)} samples of {name}, {path.name})")
    return 0
