"""Pickle-free checkpoints: round trip, atomic writes, corruption/truncation detection, load_run."""

from __future__ import annotations

import json

import pytest
import torch

from spikeforge.models import create_model
from spikeforge.runs import (
    CheckpointError,
    atomic_write_bytes,
    load_run,
    load_tensors,
    read_checkpoint,
    save_tensors,
    write_checkpoint,
)


def test_tensor_round_trip_and_atomic_write(tmp_path):
    t = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2], dtype=torch.int64)}
    p = save_tensors(tmp_path / "t.safetensors", t)
    back = load_tensors(p)
    assert torch.equal(back["a"], t["a"]) and back["b"].dtype == torch.int64
    atomic_write_bytes(tmp_path / "x.bin", b"123")
    assert (tmp_path / "x.bin").read_bytes() == b"123"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["t.safetensors", "x.bin"]  # no temp files left


def test_checkpoint_folder_round_trip(tmp_path):
    model = create_model("mlp", hidden=(4,))
    write_checkpoint(tmp_path / "c", model.state_dict(), {"optim/0/momentum_buffer": torch.ones(3)},
                     {"epoch": 2, "note": "x"})
    data = read_checkpoint(tmp_path / "c")
    assert data["state"] == {"epoch": 2, "note": "x"}
    assert torch.equal(data["tensors"]["optim/0/momentum_buffer"], torch.ones(3))
    for k, v in model.state_dict().items():
        assert torch.equal(data["model"][k], v)


def test_corrupted_truncated_and_incomplete_checkpoints_raise_clear_errors(tmp_path):
    model = create_model("mlp", hidden=(4,))
    folder = write_checkpoint(tmp_path / "c", model.state_dict(), state={"epoch": 1})
    f = folder / "model.safetensors"
    raw = bytearray(f.read_bytes())
    raw[-3] ^= 0xFF  # flip bits in the tensor data
    f.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupted: SHA-256"):
        read_checkpoint(folder)
    f.write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        read_checkpoint(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="not completely written"):
        read_checkpoint(folder)
    # a bare safetensors file cut short
    p = save_tensors(tmp_path / "w.safetensors", model.state_dict())
    p.write_bytes(p.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_tensors(p)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_tensors(tmp_path / "missing.safetensors")


def test_load_run_rebuilds_the_model(tmp_path):
    torch.manual_seed(0)
    cfg = {"model": {"name": "convnet", "widths": [4], "neuron": "ternary", "num_classes": 3,
                     "input_size": [8, 8], "in_channels": 1}, "T": 2}
    model = create_model("convnet", widths=(4,), neuron="ternary", num_classes=3, input_size=(8, 8))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    (tmp_path / "config.yaml").write_text(json.dumps(cfg))  # JSON is YAML
    save_tensors(tmp_path / "model.safetensors", model.state_dict())
    loaded, recipe = load_run(tmp_path)
    assert recipe == cfg and not loaded.training
    x = torch.randn(2, 5, 1, 8, 8)
    model.eval()
    assert torch.equal(loaded(x), model(x))
    with pytest.raises(CheckpointError, match="does not exist"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="is not a spikeforge run directory"):
        load_run(tmp_path / "empty")
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_run(tmp_path)
