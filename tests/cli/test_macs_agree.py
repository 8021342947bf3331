"""One MAC count: ``spikeforge models`` and ``spikeforge energy`` (its ANN-equivalent MACs) agree on every model."""

from __future__ import annotations

import inspect
import json

import pytest

import spikeforge as sf
from spikeforge.cli.main import main
from spikeforge.models import model_entry


def _small(name: str) -> list[str]:
    """Model options that keep every architecture (and its MAC rules) but make it cheap to run on a CPU."""
    params = inspect.signature(model_entry(name)).parameters
    small = {"width": "0.125", "num_points": "64", "widths": "[4, 8]", "hidden": "[16]"}
    opts = [f"{k}={v}" for k, v in small.items() if k in params]
    if "input_size" in params and params["input_size"].default in ((224, 224), 224):
        opts.append("input_size=[64, 64]")  # ImageNet stems: 64×64 still runs every stage
    return [arg for o in opts for arg in ("--model-opt", o)]


@pytest.mark.parametrize("name", sf.list_models())
def test_models_and_energy_report_the_same_macs(name, capsys):
    opts = _small(name)
    assert main(["models", name, "--json", *opts]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["macs"] is not None and row["macs"] > 0, f"{name} declares no input shape to count MACs on"
    shape = ",".join(str(v) for v in row["input_shape"])
    assert main(["energy", "--model", name, *opts, "--input-shape", shape, "-T", "2", "--batches", "1",
                 "--batch-size", "2", "--json"]) == 0
    energy = json.loads(capsys.readouterr().out)
    assert energy["ann_macs"] == row["macs"]  # dense MACs of one sample and one step, both counts
    assert sum(layer["ann_macs"] for layer in energy["layers"]) == row["macs"]
