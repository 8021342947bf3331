"""``spikeforge models``: the registered architectures with parameter counts."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models with parameter counts")
    p.add_argument("names", nargs="*", help="only these models")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models import create_model, list_models

    names = args.names or list_models()
    print(f"{'model':<20} {'params':>12}")
    for name in names:
        m = create_model(name)
        n = sum(p.numel() for p in m.parameters())
        print(f"{name:<20} {n:>12,}")
    return 0
