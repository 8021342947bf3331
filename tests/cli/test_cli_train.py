"""spikeforge train / eval / fold / report / recipes / data through the CLI entry point."""

from __future__ import annotations

import json

import pytest

from spikeforge.cli.main import main
from spikeforge.train.config import bundled_recipes


def test_train_writes_a_complete_run(tiny_run, capsys):
    m = json.loads((tiny_run / "metrics.json").read_text())
    assert m["epochs"] == 2 and 0 <= m["test_acc"] <= 1 and m["fold_max_dev"] <= 1e-5
    assert m["sops"] > 0 and set(m["firing_rates"]) and m["energy_pj"] > 0


def test_unknown_set_key_is_rejected_listing_valid_keys(tmp_path, capsys):
    rc = main(["train", "quickstart", "--out", str(tmp_path / "x"), "--set", "optim.lrr=0.1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown key 'optim.lrr'" in err and "optim.lr" in err and "data.limit" in err
    assert not (tmp_path / "x").exists()


def test_train_refuses_to_overwrite_and_resume_finishes(tiny_run, tiny_set, tmp_path, capsys):
    assert main(["train", "quickstart", "--out", str(tiny_run)]) == 2
    assert "--resume" in capsys.readouterr().err
    # resuming a finished run with more epochs continues from its last checkpoint
    out = tmp_path / "r"
    assert main(["train", "quickstart", "--out", str(out), *tiny_set, "--set", "epochs=1", "--quiet"]) == 0
    assert main(["train", "--resume", str(out), "--set", "epochs=2", "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 2
    assert [line.split(",")[0] for line in (out / "metrics.csv").read_text().splitlines()[1:]] == ["1", "2"]


def test_eval_matches_the_recorded_accuracy_and_sweeps(tiny_run, capsys):
    m = json.loads((tiny_run / "metrics.json").read_text())
    assert main(["eval", str(tiny_run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["test_acc"] == m["test_acc"] and res["test_samples"] == 48
    assert main(["eval", str(tiny_run), "--sweep", "3", "--json"]) == 0
    sweep = json.loads(capsys.readouterr().out)["T_sweep"]
    assert list(sweep) == ["1", "2", "3"] and sweep["2"] == m["test_acc"]  # T=2 is the training length
    assert main(["eval", str(tiny_run / "checkpoints" / "best")]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_eval_reports_a_corrupted_checkpoint_clearly(tiny_run, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_run, bad)
    w = bad / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    assert main(["eval", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "corrupted or truncated" in err and "model.safetensors" in err


def test_fold_verifies_and_saves(tiny_run, tmp_path, capsys):
    out = tmp_path / "f.safetensors"
    assert main(["fold", str(tiny_run), "--samples", "16", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "max deviation" in text and "ok" in text and out.is_file()


def test_report_writes_markdown_and_plots(tiny_run, capsys):
    assert main(["report", str(tiny_run), "--samples", "16"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "report.md" in out
    md = (tiny_run / "report.md").read_text()
    assert "| test accuracy |" in md and "fold max deviation" in md
    for png in ("curves.png", "firing_rates.png", "membranes.png"):
        assert (tiny_run / "report" / png).stat().st_size > 1000, png
        assert f"report/{png}" in md


def test_recipes_lists_every_bundled_recipe_with_a_description(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = [ln.split()[0] for ln in lines]
    assert names == list(bundled_recipes())
    assert all(len(ln.split(None, 1)) == 2 for ln in lines)  # each has a description
    assert main(["recipes", "quickstart"]) == 0
    assert "name: convnet" in capsys.readouterr().out


def test_data_list_and_info(capsys):
    assert main(["data", "list"]) == 0
    assert "digits" in capsys.readouterr().out.split()
    assert main(["data", "info", "digits"]) == 0
    assert "digits" in capsys.readouterr().out
    assert main(["data", "info", "nope"]) == 2
    assert "unknown dataset" in capsys.readouterr().err


def test_eval_votes_option(tiny_run, capsys):
    # quickstart has no random initial membrane: every vote is the same forward pass, accuracy unchanged
    assert main(["eval", str(tiny_run), "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["votes"] == 1
    assert main(["eval", str(tiny_run), "--votes", "3", "--json"]) == 0
    three = json.loads(capsys.readouterr().out)
    assert three["votes"] == 3 and three["test_acc"] == one["test_acc"]
    assert three["test_loss"] == pytest.approx(one["test_loss"], rel=1e-6)
    with pytest.raises(SystemExit):
        main(["eval", str(tiny_run), "--votes", "0"])
    assert "--votes" in capsys.readouterr().err
