"""Every CLI option explains itself, and `spikeforge train --help-keys` lists the recipe keys with types."""

from __future__ import annotations

import argparse

from spikeforge.cli.main import build_parser, main
from spikeforge.train.config import valid_keys


def _walk(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", None, helps.get(name)
                yield from _walk(sub, f"{path} {name}")
        else:
            yield path, action, action.help


def test_every_option_and_command_has_help():
    missing = []
    for path, action, text in _walk(build_parser(), "spikeforge"):
        if action is not None and isinstance(action, argparse._HelpAction):
            continue
        if not text or text == argparse.SUPPRESS or not str(text).strip():
            what = path if action is None else f"{path} {'/'.join(action.option_strings) or action.dest}"
            missing.append(what)
    assert not missing, f"options/commands without help text: {missing}"


def test_help_keys_lists_every_set_key_with_a_type(capsys):
    assert main(["train", "--help-keys"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:] if line.strip()}
    for key in valid_keys():
        assert key in rows, f"--help-keys does not list {key}"
    assert rows["optim.lr"] == "float" and rows["epochs"] == "int" and rows["amp"] == "bool"
    assert rows["data.limit"] == "int" and "null" in out.split("data.limit")[1].splitlines()[0]
    assert rows["model.widths"].startswith("tuple")  # the default model's own options


def test_help_keys_uses_the_recipes_model(capsys):
    assert main(["train", "pointnet-points", "--help-keys"]) == 0
    out = capsys.readouterr().out
    assert "(pointnet)" in out
