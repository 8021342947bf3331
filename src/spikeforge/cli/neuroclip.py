"""``spikeforge neuroclip zeroshot|fewshot --data NAME --clip PATH``: NeuroCLIP on event data with a frozen CLIP
(arXiv:2306.12073; docs/methods/neuroclip.md), and ``spikeforge neuroclip recipes [NAME]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("neuroclip", help="NeuroCLIP: zero-/few-shot event classification with a frozen CLIP",
                       description="NeuroCLIP (arXiv:2306.12073): events -> grey frames -> frozen CLIP features "
                                   "(cached) -> zero-shot, or few-shot with the spiking inter-timestep adapter. "
                                   "Needs `pip install spikeforge[clip]` and CLIP weights on disk "
                                   "(nothing is downloaded unless --allow-download).")
    nsub = p.add_subparsers(dest="neuroclip_command", metavar="ACTION")
    for name, helptext in (("zeroshot", "zero-shot classification (optional frame-weight search on validation)"),
                           ("fewshot", "train the inter-timestep adapter on K shots per class")):
        q = nsub.add_parser(name, help=helptext)
        q.add_argument("--clip", required=True, metavar="PATH",
                       help="folder of a transformers CLIP model (save_pretrained / huggingface-cli download "
                            "--local-dir), or a model id already in the Hugging Face cache")
        q.add_argument("--data", help="registered event dataset (spikeforge data list), e.g. nmnist, cifar10-dvs, "
                                      "nmnist-sim")
        q.add_argument("--recipe", help="NeuroCLIP recipe file or bundled name (spikeforge neuroclip recipes)")
        q.add_argument("--T", type=int, help="frames per recording (default 10)")
        q.add_argument("--root", help="dataset folder")
        q.add_argument("--limit", type=int, help="first N samples of each split")
        if name == "fewshot":
            q.add_argument("--shots", type=int, help="K shots per class (default 16)")
            q.add_argument("--adapter", choices=["spiking", "relu"], help="LIF adapter (default) or ANN baseline")
            q.add_argument("--epochs", type=int, help="training epochs (official: 250)")
        q.add_argument("--seed", type=int,
                       help="random seed of the split, shot sampling and training (default: the recipe's)")
        q.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="any NeuroCLIP setting, YAML-typed (e.g. --set count_threshold=1 --set search=false "
                            "--set data_options.denoise_us=5000); repeatable")
        q.add_argument("--out", help="run directory (default runs/neuroclip-<protocol>-<data>)")
        q.add_argument("--device", help="auto | cpu | cuda | cuda:N")
        q.add_argument("--allow-download", action="store_true",
                       help="let transformers fetch a model id from the network (off by default)")
        q.add_argument("--json", action="store_true", help="print the metrics as JSON")
        q.add_argument("--quiet", action="store_true",
                       help="print only errors (the metrics are still written to the run directory)")
        q.set_defaults(func=run, _protocol=name)
    r = nsub.add_parser("recipes", help="list bundled NeuroCLIP recipes (or print one)")
    r.add_argument("name", nargs="?", help="a bundled NeuroCLIP recipe to print (default: list them)")
    r.set_defaults(func=run, _protocol="recipes")
    p.set_defaults(func=run, _protocol=None, _parser=p)


def run(args: argparse.Namespace) -> int:
    from ..train.neuroclip import bundled_neuroclip_recipes, load_neuroclip_config
    from ..train.neuroclip import run as run_protocol

    if args._protocol is None:
        args._parser.print_help()
        return 0
    if args._protocol == "recipes":
        recipes = bundled_neuroclip_recipes()
        if args.name:
            if args.name not in recipes:
                raise ValueError(f"no bundled NeuroCLIP recipe {args.name!r}; available: {', '.join(recipes)}")
            print(recipes[args.name].read_text(), end="")
            return 0
        import yaml

        for name, path in recipes.items():
            print(f"{name:<36}  {(yaml.safe_load(path.read_text()) or {}).get('description', '')}")
        return 0
    settings = {"protocol": args._protocol, "data": args.data, "T": args.T, "root": args.root, "limit": args.limit,
                "seed": args.seed, "device": args.device}
    if args._protocol == "fewshot":
        settings.update(shots=args.shots, adapter=args.adapter, epochs=args.epochs)
    cfg = load_neuroclip_config(args.recipe, args.overrides, **settings)
    if cfg.protocol != args._protocol:
        raise ValueError(f"recipe {args.recipe} is a {cfg.protocol} recipe; run `spikeforge neuroclip {cfg.protocol}`")
    from ..interop.clip import load_clip  # imports transformers only when a model is loaded

    try:
        clip = load_clip(args.clip, allow_download=args.allow_download,
                         device="cuda" if cfg.device == "auto" and _cuda() else
                         ("cpu" if cfg.device == "auto" else cfg.device))
    except ImportError as exc:
        print(f"spikeforge neuroclip: error: {exc}", file=sys.stderr)
        return 2
    suffix = f"-{cfg.shots}shot-{cfg.adapter}" if cfg.protocol == "fewshot" else ""
    out = Path(args.out or Path("runs") / f"neuroclip-{cfg.protocol}-{cfg.data}{suffix}")
    m = run_protocol(cfg, clip, out, verbose=not args.quiet and not args.json)
    if args.json:
        print(json.dumps(m, indent=2, sort_keys=True))
    elif not args.quiet:
        extra = f" (zero-shot {100 * m['zeroshot_test_acc']:.2f} %)" if cfg.protocol == "fewshot" else ""
        print(f"NeuroCLIP {cfg.protocol} on {cfg.data}: test accuracy {100 * m['test_acc']:.2f} %{extra}; "
              f"run directory {out}")
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
