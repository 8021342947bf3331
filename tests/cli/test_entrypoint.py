"""The installed ``spikeforge`` entry point."""

from __future__ import annotations

import subprocess
import sys

import spikeforge
from spikeforge.cli.main import main


def test_version_and_help(capsys):
    for argv in (["--version"], ["--help"]):
        try:
            main(argv)
        except SystemExit as exc:
            assert exc.code == 0
    out = capsys.readouterr().out
    assert f"spikeforge {spikeforge.__version__}" in out
    assert "models" in out


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "spikeforge.cli.main", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and spikeforge.__version__ in r.stdout


def test_models_lists_registry(capsys):
    assert main(["models", "convnet"]) == 0
    assert "convnet" in capsys.readouterr().out
