"""Every training objective runs end to end from the CLI on the embedded digits (issue: objectives)."""

from __future__ import annotations

import json

import pytest

from spikeforge.cli.main import main


@pytest.mark.parametrize("objective", ["ce", "tet", "rmp", "im"])
def test_objective_trains_folds_and_reports_from_the_cli(objective, tmp_path, tiny_set):
    out = tmp_path / objective
    assert main(["train", "quickstart", "--out", str(out), *tiny_set, "--set", f"objective.name={objective}"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["test_acc"] <= 1.0
    assert metrics["fold_max_dev"] <= 1e-5


def test_joint_asnn_objective_from_the_cli(tmp_path):
    out = tmp_path / "joint"
    sets = ["epochs=1", "data.name=digits", "data.limit=32", "batch_size=16", "device=cpu", "model.width=0.0625",
            "log.tensorboard=false", "log.progress=never", "fold.verify_samples=8", "analysis.samples=8"]
    args = ["train", "joint-asnn-fmnist", "--out", str(out)]
    for item in sets:
        args += ["--set", item]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["fold_max_dev"] <= 1e-5
