"""``spikeforge train RECIPE [--set key=value ...] --out DIR`` and ``spikeforge train --resume DIR``."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from ._args import writable_dir

#: value types of the recipe keys whose default is null (the others take the type of their default)
_NULL_TYPES = {
    "data.root": "path | null", "data.limit": "int | null", "eval_T": "int | null", "grad_clip": "float | null",
    "eval.T_sweep": "int | list[int] | null",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a recipe (YAML file or bundled name) into a run directory",
                       description="Train a recipe: a YAML file or a bundled recipe name (see `spikeforge recipes`). "
                                   "Runs under torchrun unchanged (DistributedDataParallel).")
    p.add_argument("recipe", nargs="?", help="recipe file or bundled recipe name (not needed with --resume)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value with a dotted key, YAML-typed (e.g. --set optim.lr=0.05 "
                        "--set epochs=3 --set data.limit=200 --set device=cpu); repeatable; --help-keys lists "
                        "every key with its type and default")
    p.add_argument("--help-keys", action="store_true",
                   help="list every recipe key --set accepts, with its type and default, and exit (with a recipe: "
                        "also the options of its model)")
    p.add_argument("--out", help="run directory (default: runs/<recipe name>)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    p.epilog = ("recipe sections: " + ", ".join(_sections()) + ". Run `spikeforge train --help-keys` for every key, "
                "its type and its default.")
    p.set_defaults(func=run)


def _sections() -> list[str]:
    from ..train.config import DEFAULTS

    return [k for k in DEFAULTS if k != "description"]


def _type_name(key: str, value: Any) -> str:
    if value is None:
        return _NULL_TYPES.get(key, "any | null")
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, list):
        inner = {type(v).__name__ for v in value}
        return f"list[{inner.pop()}]" if len(inner) == 1 else "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def _annotation(param: inspect.Parameter) -> str:
    ann = param.annotation
    if ann is inspect.Parameter.empty:
        return _type_name("", param.default) if param.default is not inspect.Parameter.empty else "any"
    return ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))


def key_table(recipe: str | None = None) -> list[tuple[str, str, str]]:
    """``(key, type, default)`` of every key ``--set`` accepts; the model's options when ``recipe`` names one."""
    from ..models.registry import model_entry
    from ..neurons import NeuronConfig
    from ..train.config import DEFAULTS, FREE_SECTIONS, load_recipe
    from ..train.report import flatten_config

    rows: list[tuple[str, str, str]] = []
    flat = flatten_config({k: v for k, v in DEFAULTS.items() if k != "model"})
    for free in FREE_SECTIONS:
        if free != "model":
            flat[free] = {}
    for key in sorted(flat):
        value = flat[key]
        if key in FREE_SECTIONS:
            rows.append((f"{key}.*", "any", "{}  (free section: see docs/training.md)"))
        else:
            rows.append((key, _type_name(key, value), json.dumps(value)))
    model_name = str(DEFAULTS["model"]["name"])
    if recipe:
        model_name = str(load_recipe(recipe).get("model", {}).get("name", model_name))
    rows.append(("model.name", "str", json.dumps(DEFAULTS["model"]["name"]) + "  (spikeforge models lists them)"))
    params = inspect.signature(model_entry(model_name)).parameters
    taken = set()
    for name, param in params.items():
        taken.add(name)
        if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL) or name == "neuron":
            continue
        default = "required" if param.default is param.empty else json.dumps(param.default, default=str)
        rows.append((f"model.{name}", _annotation(param), f"{default}  ({model_name})"))
    rows.append(("model.neuron", "str | mapping", "null  (a preset name or a mapping of the options below)"))
    for field in dataclasses.fields(NeuronConfig):
        if field.name in taken:
            continue
        value = field.default if field.default is not dataclasses.MISSING else None
        ftype = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
        rows.append((f"model.{field.name}", ftype, json.dumps(value, default=str) + "  (neuron option)"))
    return rows


def print_keys(recipe: str | None = None) -> None:
    rows = key_table(recipe)
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    print("Recipe keys for --set KEY=VALUE (values are YAML: 0.05, true, [1, 2], null):")
    print(f"  {'key':<{w1}}  {'type':<{w2}}  default")
    for key, kind, default in rows:
        print(f"  {key:<{w1}}  {kind:<{w2}}  {default}")


def run(args: argparse.Namespace) -> int:
    from ..runs import CheckpointError
    from ..train import NonFiniteLossError, resume, train

    if args.help_keys:
        print_keys(args.recipe)
        return 0
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
