"""``spikeforge models``: the registered architectures with parameter counts and dense MACs/FLOPs.

MACs are counted on the real modules (forward hooks, :func:`spikeforge.analysis.count_macs`, the count
``spikeforge energy`` reports as ``ann_macs``) for one
sample at T = 1 on the model's default input size; FLOPs = 2 × MACs. A spiking network executes most of these as
accumulates on spikes (SOPs), which depend on the firing rates — see ``spikeforge.analysis`` for those.
"""

from __future__ import annotations

import argparse
import json

import torch

from ._args import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models with parameter counts and MACs/FLOPs")
    p.add_argument("names", nargs="*", help="only these models")
    p.add_argument("--num-classes", type=positive_int, default=None, help="override each model's default class count")
    p.add_argument("--model-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="model option (YAML value) for every listed model, repeatable, e.g. --model-opt width=0.5")
    p.add_argument("--no-macs", action="store_true", help="skip the forward pass that counts MACs")
    p.add_argument("--json", action="store_true", help="print one JSON object per model")
    p.set_defaults(func=run)


def _fmt(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def describe(name: str, num_classes: int | None = None, macs: bool = True,
             options: dict | None = None) -> dict:
    """``{model, input_kind, input_shape, params, macs, flops}`` of a registered model at its defaults.

    The model is built and run on the ``meta`` device (shapes only, no memory or compute), falling back to the
    CPU for a model that cannot run there.
    """
    from ..models import model_entry

    factory = model_entry(name)
    kw = dict(options or {})
    if num_classes is not None:
        kw["num_classes"] = num_classes
    try:
        return _describe_on(torch.device("meta"), name, factory, kw, macs)
    except (RuntimeError, NotImplementedError):
        return _describe_on(torch.device("cpu"), name, factory, kw, macs)


def _describe_on(device: torch.device, name: str, factory, kw: dict, macs: bool) -> dict:
    from ..analysis import count_macs
    from ..models import create_model
    from ..models.complexity import count_parameters, example_input, input_shape_of
    from ..neurons import base as neuron_base

    with device:
        model = create_model(name, **kw).eval()
    shape = input_shape_of(model, factory)
    n_macs = None
    if macs and shape is not None:
        # the per-call NaN/Inf checks read values, which meta tensors do not have
        saved = neuron_base._VALIDATE
        neuron_base.set_input_validation(device.type != "meta" and saved)
        try:
            n_macs = count_macs(model, example_input(shape, T=1, batch=1, device=device)).total
        finally:
            neuron_base.set_input_validation(saved)
    return {
        "model": name,
        "input_kind": getattr(model, "input_kind", "static"),
        "input_shape": list(shape) if shape is not None else None,
        "num_classes": getattr(model, "num_classes", None),
        "params": count_parameters(model),
        "macs": n_macs,
        "flops": None if n_macs is None else 2 * n_macs,
    }


def run(args: argparse.Namespace) -> int:
    from ..models import list_models
    from .energy import _options

    names = args.names or list_models()
    known = set(list_models())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; available: {sorted(known)}")
    w = max(12, *(len(n) for n in names))
    if not args.json:
        print(f"{'model':<{w}} {'input':<8} {'shape [T=1,B=1]':<18} {'classes':>7} {'params':>12} {'MACs':>9} "
              f"{'FLOPs':>9}")
    for name in names:
        d = describe(name, args.num_classes, macs=not args.no_macs, options=_options(args.model_opt, "--model-opt"))
        if args.json:
            print(json.dumps(d))
            continue
        shape = "x".join(str(v) for v in d["input_shape"]) if d["input_shape"] else "-"
        print(f"{name:<{w}} {d['input_kind']:<8} {shape:<18} {d['num_classes'] or '-':>7} {d['params']:>12,} "
              f"{_fmt(d['macs']):>9} {_fmt(d['flops']):>9}")
    return 0
