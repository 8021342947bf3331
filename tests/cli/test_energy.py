"""``spikeforge energy``: run directory and fresh-model paths, JSON output consistent with the API."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from spikeforge import create_model
from spikeforge.analysis import measure
from spikeforge.cli.main import main


@pytest.fixture()
def run_dir(tmp_path):
    """A minimal run directory in the trainer's layout: resolved recipe + final weights."""
    from spikeforge.runs import save_tensors

    torch.manual_seed(0)
    cfg = {"model": {"name": "mlp", "in_features": 64, "hidden": [16], "neuron": "ternary"},
           "data": {"name": "digits", "root": None, "limit": None, "options": {}}, "T": 2}
    model = create_model("mlp", in_features=64, hidden=(16,), neuron="ternary")
    with torch.no_grad():
        model[1].weight.mul_(4.0)  # make the hidden layer fire
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    save_tensors(tmp_path / "model.safetensors", model.state_dict())
    return tmp_path, model


def test_energy_json_from_run_dir_matches_the_api(run_dir, capsys):
    from spikeforge import data

    path, model = run_dir
    rc = main(["energy", str(path), "--batches", "2", "--batch-size", "8", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("sops", "macs", "energy_pj", "ann_energy_pj", "firing_rates", "layers"):
        assert key in out
    assert out["samples"] == 16 and out["time_steps"] == 2
    x = data.get("digits", "test", limit=16).x
    ref = measure(model, [x[:8], x[8:]], T=2)
    assert out["sops"] == pytest.approx(ref.sops) and out["macs"] == ref.macs
    assert out["energy_pj"] == pytest.approx(ref.energy_pj)
    assert out["sops"] > 0


def test_energy_tables_for_a_fresh_model(capsys):
    rc = main(["energy", "--model", "convnet", "--model-opt", "widths=[4, 8]", "--data", "digits", "-T", "2",
               "--batches", "1", "--batch-size", "8"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "spiking layers" in text and "synaptic layers" in text and "ANN-equivalent" in text


def test_energy_synthetic_input_and_custom_costs(capsys):
    rc = main(["energy", "--model", "mlp", "--input-shape", "1,8,8", "--batches", "1", "--batch-size", "4",
               "--e-mac", "1", "--e-ac", "0", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["energy_pj"] == out["macs"] and out["ann_energy_pj"] == out["ann_macs"]


@pytest.mark.parametrize("argv, message", [
    (["energy"], "run directory or --model"),
    (["energy", "somewhere", "--model", "mlp"], "either RUN_DIR or --model"),
    (["energy", "--model", "mlp"], "no data"),
    (["energy", "--model", "mlp", "--input-shape", "64", "--model-opt", "oops"], "KEY=VALUE"),
])
def test_energy_errors_are_clear(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_energy_of_a_trained_run_matches_its_metrics(tiny_run, capsys):
    """The trainer measured its final model with spikeforge.analysis.measure on the first test samples; the CLI
    must reproduce those numbers from the run directory alone."""
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    if "energy" not in metrics:
        pytest.skip(f"the run recorded no energy: {metrics.get('notes')}")
    n = metrics["energy"]["samples"]
    assert main(["energy", str(tiny_run), "--batches", "1", "--batch-size", str(n), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == n
    for key in ("sops", "macs", "energy_pj", "ann_energy_pj", "mean_firing_rate"):
        assert out[key] == pytest.approx(metrics["energy"][key], rel=1e-9), key
