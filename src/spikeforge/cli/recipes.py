"""``spikeforge recipes [NAME]``: bundled recipes with a one-line description, or one recipe's YAML."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipes", help="list bundled training recipes (or print one)")
    p.add_argument("name", nargs="?", help="print this recipe's YAML")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train.config import bundled_recipes, recipe_description

    recipes = bundled_recipes()
    if args.name:
        if args.name not in recipes:
            raise ValueError(f"no bundled recipe {args.name!r}; available: {', '.join(recipes)}")
        print(recipes[args.name].read_text(), end="")
        return 0
    width = max(len(n) for n in recipes)
    for name, path in recipes.items():
        print(f"{name:<{width}}  {recipe_description(path)}")
    return 0
