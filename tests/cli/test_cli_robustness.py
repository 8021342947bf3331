"""CLI arguments are range-checked and output paths checked up front, each with a message naming the problem."""

from __future__ import annotations

import os

import pytest

from spikeforge.cli.main import main


@pytest.mark.parametrize("args, option", [
    (["--limit", "0"], "--limit"), (["--T", "0"], "--T"), (["--sweep", "0"], "--sweep"),
    (["--batch-size", "-3"], "--batch-size"), (["--T", "two"], "--T"),
])
def test_eval_rejects_out_of_range_options(tiny_run, capsys, args, option):
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(tiny_run), *args])
    assert exc.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err


def test_eval_refuses_a_request_that_cannot_fit_in_memory(tiny_run, capsys):
    assert main(["eval", str(tiny_run), "--T", "100000000"]) == 2
    err = capsys.readouterr().err
    assert "GiB of activations" in err and "T=100000000" in err and "free on cpu" in err


@pytest.mark.parametrize("where", ["file", "under-file", "special"])
def test_train_out_problems_are_clear_errors(tmp_path, capsys, tiny_set, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = {"file": blocker, "under-file": blocker / "run", "special": "/dev/null"}[where]
    assert main(["train", "quickstart", "--out", str(out), *tiny_set]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and ("not a folder" in err or "is a file" in err)


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.isdir("/proc/self"), reason="needs a path nobody can create")
def test_train_out_on_an_unwritable_path(capsys, tiny_set):
    assert main(["train", "quickstart", "--out", "/proc/self/spikeforge-run", *tiny_set]) == 2
    assert "--out /proc/self/spikeforge-run: cannot" in capsys.readouterr().err


def test_fold_out_must_be_a_file(tiny_run, tmp_path, capsys):
    assert main(["fold", str(tiny_run), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
