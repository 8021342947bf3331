"""``spikeforge data list`` / ``spikeforge data info NAME``: registered datasets and where their files are."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="list datasets or describe one (files, classes, options)")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.add_parser("list", help="registered dataset names")
    info = dsub.add_parser("info", help="facts about one dataset and where its files were found")
    info.add_argument("name", help="registered dataset name (spikeforge data list)")
    info.add_argument("--root", help="dataset folder (default search: $SPIKEFORGE_DATA and system locations)")
    p.set_defaults(func=run, _parser=p)


def run(args: argparse.Namespace) -> int:
    from .. import data

    if args.data_command == "info":
        if args.name not in data.list_datasets():
            raise ValueError(f"unknown dataset {args.name!r}; available: {', '.join(data.list_datasets())}")
        print(data.format_info(data.info(args.name, root=args.root)))
        return 0
    if args.data_command == "list":
        for name in data.list_datasets():
            print(name)
        return 0
    args._parser.print_help()
    return 0
