"""torchrun with 2 CPU processes (gloo): DDP + synchronised BN give the single-process result on the same global
batch (loss per epoch and final weights, up to float summation order)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import torch
import yaml

from spikeforge.runs import load_tensors

RECIPE = {
    "model": {"name": "mlp", "hidden": [16]},
    "data": {"name": "digits", "limit": 64},
    "T": 2,
    "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    "epochs": 2,
    "batch_size": 16,
    "device": "cpu",
    "sync_bn": True,
    "log": {"tensorboard": False, "progress": "never"},
    "analysis": {"enabled": False},
    "fold": {"enabled": False},
}


def _train(recipe_path, out, nproc: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "spikeforge.cli.main", "train", str(recipe_path), "--out", str(out), "--quiet"]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "spikeforge.cli.main", *cmd[3:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def _losses(run):
    return [float(r["train_loss"]) for r in csv.DictReader((run / "metrics.csv").open())]


def test_two_process_gloo_run_matches_single_process(tmp_path):
    recipe = tmp_path / "ddp.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    single = _train(recipe, tmp_path / "one", 1)
    assert single.returncode == 0, single.stderr
    multi = _train(recipe, tmp_path / "two", 2)
    assert multi.returncode == 0, multi.stderr[-3000:]
    a, b = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(a) == len(b) == 2
    assert b == pytest.approx(a, rel=1e-5, abs=1e-6)
    wa = load_tensors(tmp_path / "one" / "model.safetensors")
    wb = load_tensors(tmp_path / "two" / "model.safetensors")
    for k in wa:
        assert torch.allclose(wa[k].float(), wb[k].float(), rtol=1e-4, atol=1e-5), k
