"""``spikeforge energy``: firing rates, SOPs/MACs and the energy estimate of a trained run (or a fresh model).

    spikeforge energy RUN_DIR [--data NAME] [--batches N] [--json]
    spikeforge energy --model convnet --data digits -T 4          # untrained model, quick estimate

E = E_MAC·MACs(layers with real-valued input) + E_AC·SOPs(layers with spike input), per sample; see
``docs/analysis.md`` and :mod:`spikeforge.analysis`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

import torch
import yaml

from ..analysis.energy import E_AC_PJ, E_MAC_PJ
from ..encode import encoding_for
from ._args import nonnegative_float, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("energy", help="measure firing rates, SOPs/MACs and the energy estimate of a model",
                       description="Run a trained model (run directory) or a fresh registered model over test data "
                                   "and report per-layer firing rates, synaptic operations and energy.")
    p.add_argument("run_dir", nargs="?", help="run directory written by the trainer (or a checkpoint folder)")
    p.add_argument("--which", choices=["final", "best", "last"], help="weights of the run (default: final, else last)")
    p.add_argument("--model", help="registered model name (instead of RUN_DIR; untrained weights)")
    p.add_argument("--model-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="model option (YAML value), repeatable, e.g. --model-opt neuron=ternary")
    p.add_argument("--data", help="dataset name (default: the run's dataset)")
    p.add_argument("--data-opt", action="append", default=[], metavar="KEY=VALUE", help="dataset option, repeatable")
    p.add_argument("--root", help="dataset folder (default: the usual search path)")
    p.add_argument("--split", default="test", choices=["train", "test"], help="data split (default: test)")
    p.add_argument("--input-shape", help="per-sample shape C,H,W of a synthetic uniform [0, 1) input, when no data "
                                         "is given (counts MACs; spike counts of random input are not meaningful)")
    p.add_argument("--batches", type=positive_int, default=4, help="number of batches to run (default 4)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="batch size (default 64)")
    p.add_argument("-T", "--T", dest="T", type=positive_int,
                   help="time steps for static/point input (default: the run's T, else 4)")
    p.add_argument("--e-mac", type=nonnegative_float, default=E_MAC_PJ,
                   help=f"energy per MAC in pJ (default {E_MAC_PJ})")
    p.add_argument("--e-ac", type=nonnegative_float, default=E_AC_PJ,
                   help=f"energy per accumulate in pJ (default {E_AC_PJ})")
    p.add_argument("--sop-mode", choices=["nonzero", "events"], default="nonzero",
                   help="SOPs per non-zero input element (default) or per spike event it carries (pooled counts)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic input and the membrane sampling")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(func=run)


def _options(pairs: list[str], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} must look like KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _load_model(args: argparse.Namespace) -> tuple[torch.nn.Module | None, dict[str, Any]]:
    """``(model, recipe-like dict)`` from RUN_DIR, or ``(None, dict)`` for --model (built once the data is known)."""
    if args.run_dir and args.model:
        raise ValueError("give either RUN_DIR or --model, not both")
    if args.run_dir:
        from ..runs import load_run

        return load_run(args.run_dir, args.which)
    if not args.model:
        raise ValueError("give a run directory or --model NAME")
    model_cfg: dict[str, Any] = {"name": args.model, **_options(args.model_opt, "--model-opt")}
    return None, {"model": model_cfg}


def _build_fresh(cfg: dict[str, Any], split: Any) -> torch.nn.Module:
    from ..runs import build_model, fill_model_from_data

    if split is not None:
        fill_model_from_data(cfg, split)
    return build_model(cfg)


def _batches(x: torch.Tensor, batch_size: int, n: int) -> Iterator[torch.Tensor]:
    for i in range(n):
        chunk = x[i * batch_size:(i + 1) * batch_size]
        if len(chunk) == 0:
            return
        yield chunk


def run(args: argparse.Namespace) -> int:
    from ..analysis import measure

    if args.batches < 1 or args.batch_size < 1:
        raise ValueError("--batches and --batch-size must be >= 1")
    model, cfg = _load_model(args)
    data_cfg = dict(cfg.get("data") or {})
    name = args.data or data_cfg.get("name")
    split = None
    limit = args.batches * args.batch_size
    if name:
        from .. import data as data_mod

        opts = dict(data_cfg.get("options") or {}) if not args.data or args.data == data_cfg.get("name") else {}
        opts.update(_options(args.data_opt, "--data-opt"))
        root = args.root if args.root else (data_cfg.get("root") if name == data_cfg.get("name") else None)
        split = data_mod.get(name, args.split, root=root, limit=limit, **opts)
        x, kind, source = split.x, split.kind, f"{name}/{args.split} ({len(split)} samples)"
    elif args.input_shape:
        shape = tuple(int(v) for v in args.input_shape.split(","))
        gen = torch.Generator().manual_seed(args.seed)
        x, kind, source = torch.rand((limit,) + shape, generator=gen), "static", f"synthetic uniform {shape}"
    else:
        raise ValueError("no data: give --data NAME (or --input-shape C,H,W for a synthetic input)")
    if model is None:
        model = _build_fresh(cfg, split)
    T = args.T if args.T is not None else int(cfg.get("eval_T") or cfg.get("T") or 4)
    encoding = encoding_for(kind)
    report = measure(model, _batches(x, args.batch_size, args.batches), T=T, encoding=encoding, e_mac=args.e_mac,
                     e_ac=args.e_ac, seed=args.seed, sop_mode=args.sop_mode)
    if args.json:
        print(json.dumps({"source": source, "model": cfg["model"].get("name"), **report.to_dict()}, indent=2))
        return 0
    _print_tables(report, source, str(cfg["model"].get("name")))
    return 0


def _fmt(v: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:.3g}"


def _print_tables(report: Any, source: str, model_name: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    mon = report.monitor
    neurons = Table(title=f"spiking layers — {model_name} on {source}, T = {report.time_steps:g}")
    for col in ("layer", "spike", "neurons", "rate", "rate per step", "−1 share", "V_th"):
        neurons.add_column(col, justify="left" if col in ("layer", "spike", "rate per step") else "right")
    for name, rec in mon.neurons.items():
        thr = (f"{rec.threshold_min:.3g}" if rec.threshold_min == rec.threshold_max
               else f"{rec.threshold_min:.3g}…{rec.threshold_max:.3g}")
        neurons.add_row(name, rec.spike, f"{rec.num_neurons:,}", f"{rec.rate:.4f}",
                        " ".join(f"{r:.3f}" for r in rec.rate_per_step), f"{rec.negative_fraction:.3f}", thr)
    console.print(neurons)
    layers = Table(title="synaptic layers (per sample, all time steps)")
    for col in ("layer", "type", "mode", "input rate", "SOPs", "MACs", "dense MACs", "energy (nJ)", "share"):
        layers.add_column(col, justify="left" if col in ("layer", "type", "mode") else "right")
    total = report.energy_pj or 1.0
    for row in report.layers:
        if row.mode == "unused":  # e.g. training-only exits of Joint A-SNN (kept in --json)
            continue
        layers.add_row(row.name, row.layer_type, row.mode, f"{row.input_rate:.4f}" if row.mode != "mac" else "-",
                       _fmt(row.sops), _fmt(row.macs), _fmt(row.dense_macs), f"{row.energy_pj / 1e3:.4g}",
                       f"{100 * row.energy_pj / total:.1f}%")
    console.print(layers)
    console.print(
        f"[bold]SNN[/bold]: {_fmt(report.sops)} SOPs + {_fmt(report.macs)} MACs → "
        f"{report.energy_pj / 1e3:.4g} nJ/sample  (E_AC {report.e_ac_pj} pJ, E_MAC {report.e_mac_pj} pJ)\n"
        f"[bold]ANN-equivalent[/bold]: {_fmt(report.ann_macs)} MACs → {report.ann_energy_pj / 1e3:.4g} nJ/sample  "
        f"(ratio ANN/SNN {report.energy_ratio:.2f}×); mean firing rate {report.mean_firing_rate:.4f}, "
        f"{report.samples} samples")
