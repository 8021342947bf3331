"""Faults that used to corrupt or mislead a run now stop it with a message naming the cause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spikeforge.train import CheckpointError, NonFiniteLossError, RecipeError, Trainer, load_run, resume, train
from spikeforge.train.config import load_recipe, resolve
from spikeforge.train.guards import check_batch, diagnose_nonfinite


def test_check_batch_names_bad_labels_and_samples():
    x = torch.rand(4, 2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), found 0\.\.7 .*\[2\]"):
        check_batch(x, torch.tensor([0, 1, 7, 2]), 3, "train")
    with pytest.raises(ValueError, match="labels must lie in .* found -1"):
        check_batch(x, torch.tensor([0, -1, 1, 2]), 3, "train")
    with pytest.raises(ValueError, match="labels must be integers"):
        check_batch(x, torch.tensor([0.0, 1.0, 1.0, 2.0]), 3, "train")
    x[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or Inf .*\[3\]"):
        check_batch(x, torch.tensor([0, 1, 1, 2]), 3, "train")


def test_out_of_range_labels_stop_before_training(tmp_path, tiny, monkeypatch):
    from spikeforge.train import trainer as trainer_mod

    real = trainer_mod.load_data

    def bad_labels(cfg, split):
        s = real(cfg, split)
        s.y[5] = s.num_classes + 3
        return s

    monkeypatch.setattr(trainer_mod, "load_data", bad_labels)
    with pytest.raises(ValueError, match=r"train split.*labels must lie in \[0, 10\).*from index 0: \[5\]"):
        Trainer(resolve(tiny), tmp_path / "r", verbose=False).fit()
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_nonfinite_weights_are_named_not_blamed_on_the_input(tmp_path, tiny):
    class PoisonedTrainer(Trainer):
        def _setup(self):
            super()._setup()
            with torch.no_grad():
                self.raw_model[0].weight[0, 0, 0, 0] = float("nan")

    with pytest.raises(NonFiniteLossError, match=r"step 1/.*non-finite parameter.*0\.weight \(1 NaN/Inf"):
        PoisonedTrainer(resolve(tiny), tmp_path / "p", verbose=False).fit()


def test_diverging_learning_rate_stops_naming_step_and_lr(tmp_path, tiny):
    tiny["optim"] = {"name": "sgd", "lr": 1e12, "momentum": 0.9}
    tiny["schedule"] = {"name": "constant"}
    with pytest.raises(NonFiniteLossError, match=r"epoch \d+, step \d+/\d+ .*optim\.lr \(now 1e\+12\)"):
        train(tiny, tmp_path / "d", verbose=False)


def test_diagnosis_names_nonfinite_gradients():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    model(torch.rand(3, 2)).sum().backward()
    model[1].weight.grad[0, 1] = float("inf")
    msg = diagnose_nonfinite(model, "step 4", 0.1, grads=True)
    assert "non-finite gradient" in msg and "1.weight (1 NaN/Inf of 2)" in msg and "step 4" in msg


def test_empty_recipe_is_refused(tmp_path):
    for text in ("", "{}\n", "# only a comment\n"):
        p = tmp_path / "empty.yaml"
        p.write_text(text)
        with pytest.raises(RecipeError, match="is empty"):
            load_recipe(p)


def test_resuming_a_finished_run_says_so(tmp_path, tiny):
    tiny["epochs"] = 1
    train(tiny, tmp_path / "f", verbose=False)
    with pytest.raises(RecipeError, match=r"already finished 1 of 1 epochs.*--set epochs=N \(N > 1\)"):
        resume(tmp_path / "f", verbose=False)


def _flip_bits(path: Path, count: int = 96) -> None:
    data = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    for i in range(count):  # inside the tensor payload, past the JSON header
        data[header + 4 * i + 3] ^= 0x40  # exponent bit of a float32
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["model.safetensors", "config.yaml"])
def test_final_files_are_covered_by_the_run_manifest(tmp_path, tiny, name):
    tiny["epochs"] = 1
    out = tmp_path / "m"
    train(tiny, out, verbose=False)
    manifest = json.loads((out / "manifest.json").read_text())["files"]
    assert {"config.yaml", "model.safetensors", "folded.safetensors"} <= set(manifest)
    load_run(out)  # intact: loads
    if name == "model.safetensors":
        _flip_bits(out / name)
    else:
        (out / name).write_text((out / name).read_text().replace("epochs: 1", "epochs: 2"))
    with pytest.raises(CheckpointError, match=f"{name} is corrupted"):
        load_run(out)
