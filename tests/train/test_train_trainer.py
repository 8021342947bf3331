"""The training loop end to end on a tiny digits run: outputs, kill-and-resume determinism, NaN stop."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from spikeforge.runs import load_run, load_tensors, read_checkpoint
from spikeforge.train import NonFiniteLossError, Trainer, resume, train
from spikeforge.train.config import resolve


class _Killed(Exception):
    pass


def _kill_after(k: int):
    def hook(trainer: Trainer, epoch: int) -> None:
        if epoch == k:
            raise _Killed(f"simulated crash after epoch {epoch}")

    return hook


def test_run_directory_contents_and_metrics(tmp_path, tiny):
    tiny["log"]["tensorboard"] = True
    m = train(tiny, tmp_path / "run", verbose=False)
    run = tmp_path / "run"
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["test_acc"] == m["test_acc"]
    for key in ("test_acc", "best_test_acc", "epochs", "train_seconds", "params", "fold_max_dev"):
        assert key in saved, key
    assert 0.0 <= saved["test_acc"] <= saved["best_test_acc"] <= 1.0
    assert saved["epochs"] == 3 and saved["test_samples"] == 48 and saved["train_samples"] == 48
    model, cfg = load_run(run)
    assert saved["params"] == sum(p.numel() for p in model.parameters())
    assert cfg["model"]["num_classes"] == 10 and cfg["model"]["input_size"] == [8, 8]  # filled from the data
    assert saved["fold_max_dev"] is not None and saved["fold_max_dev"] <= 1e-5
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["test_acc"]) == pytest.approx(saved["test_acc"])
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    for f in ("model.safetensors", "folded.safetensors", "config.yaml"):
        assert (run / f).is_file(), f
    best = read_checkpoint(run / "checkpoints" / "best")
    assert best["state"]["test_acc"] == pytest.approx(saved["best_test_acc"])
    # the final weights equal the last checkpoint's weights
    last = read_checkpoint(run / "checkpoints" / "last")
    final = load_tensors(run / "model.safetensors")
    assert all(torch.equal(final[k], v) for k, v in last["model"].items())
    assert last["state"]["epoch"] == 3 and last["state"]["global_step"] == 3 * (48 // 16)


def test_killed_and_resumed_run_matches_uninterrupted_run_bit_for_bit(tmp_path, tiny):
    tiny["model"].update(neuron="mpbn", widths=[4, 8])  # buffers (running stats) + momentum state
    tiny["data"]["augment"] = {"random_crop": {"padding": 1}}  # the augmentation generator must replay too
    tiny["epochs"] = 4
    full = train(tiny, tmp_path / "full", verbose=False)

    cfg = resolve(tiny)
    with pytest.raises(_Killed):
        Trainer(cfg, tmp_path / "cut", on_epoch_end=_kill_after(2), verbose=False).fit()
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed = resume(tmp_path / "cut", verbose=False)

    a = load_tensors(tmp_path / "full" / "model.safetensors")
    b = load_tensors(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    oa = read_checkpoint(tmp_path / "full" / "checkpoints" / "last")
    ob = read_checkpoint(tmp_path / "cut" / "checkpoints" / "last")
    for k in oa["tensors"]:
        assert torch.equal(oa["tensors"][k], ob["tensors"][k]), k
    assert resumed["test_acc"] == full["test_acc"]
    rows = list(csv.DictReader((tmp_path / "cut" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]


def test_resume_rejects_a_changed_dataset_size(tmp_path, tiny):
    tiny["epochs"] = 2
    cfg = resolve(tiny)
    with pytest.raises(_Killed):
        Trainer(cfg, tmp_path / "r", on_epoch_end=_kill_after(1), verbose=False).fit()
    with pytest.raises(ValueError, match="steps per epoch"):
        resume(tmp_path / "r", ["data.limit=64"], verbose=False)


class _NaNAt:
    """Wraps an objective so that its loss is NaN from training step ``step`` on."""

    def __init__(self, inner, step: int):
        self.inner, self.step, self.calls = inner, step, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def loss(self, outputs, target, **kw):
        self.calls += 1
        loss, parts = self.inner.loss(outputs, target, **kw)
        return (loss * math.nan if self.calls >= self.step else loss), parts


def test_nan_loss_stops_the_run_naming_the_step(tmp_path, tiny):
    class NaNTrainer(Trainer):
        def _setup(self):
            super()._setup()
            self.objective = _NaNAt(self.objective, step=5)

    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 2/3 \(global step 5\)"):
        NaNTrainer(resolve(tiny), tmp_path / "nan", verbose=False).fit()


def test_grad_clip_and_label_smoothing_and_adam_run(tmp_path, tiny):
    tiny.update(grad_clip=0.5, label_smoothing=0.1, epochs=1)
    tiny["optim"] = {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-2}
    tiny["schedule"] = {"name": "onecycle"}
    m = train(tiny, tmp_path / "a", verbose=False)
    assert 0.0 <= m["test_acc"] <= 1.0
    st = read_checkpoint(tmp_path / "a" / "checkpoints" / "last")
    assert st["state"]["optimizer_class"] == "AdamW"
    assert any(k.endswith("/exp_avg") for k in st["tensors"])


def test_model_and_data_kinds_must_match(tmp_path, tiny):
    tiny["data"] = {"name": "digits-points", "limit": 16}
    with pytest.raises(ValueError, match="takes static input but dataset 'digits-points' is points"):
        train(tiny, tmp_path / "k", verbose=False)


def test_device_resolution():
    from spikeforge.train.trainer import epoch_seed, resolve_device

    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(ValueError, match="CUDA is not available; use --set device=cpu"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")
    seeds = {epoch_seed(0, e, r, s) for e in range(4) for r in range(2) for s in range(5)}
    assert len(seeds) == 40 and all(0 <= v < 2**63 for v in seeds)  # distinct streams
    assert epoch_seed(1, 2, 0, 3) == epoch_seed(1, 2, 0, 3)


def test_memory_options_train_the_same_run(tmp_path, tiny):
    """memory.recompute and memory.compress_spikes are exact: the same weights after the same steps."""
    tiny.update(epochs=1)
    train(tiny, tmp_path / "plain", verbose=False)
    tiny["memory"] = {"compress_spikes": True, "recompute": True}
    m = train(tiny, tmp_path / "lean", verbose=False)
    a = read_checkpoint(tmp_path / "plain" / "checkpoints" / "last")["tensors"]
    b = read_checkpoint(tmp_path / "lean" / "checkpoints" / "last")["tensors"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert m["fold_max_dev"] is not None  # the fold ran on the plain model again
    model, _ = load_run(tmp_path / "lean")
    assert not type(model).__name__.startswith("Recompute")


def test_memory_option_errors(tmp_path, tiny):
    tiny["memory"] = {"time_chunk": 2}
    with pytest.raises(ValueError, match="memory.time_chunk needs memory.recompute"):
        resolve(tiny)
    tiny["memory"] = {"recompute": True, "time_chunk": 2}
    tiny["model"]["neuron"] = "mpbn"  # MPBN normalises each step with per-step statistics: no chunks
    with pytest.raises(ValueError, match="no segment of .* can run in time chunks"):
        train(tiny, tmp_path / "c", verbose=False)
    tiny["model"]["neuron"] = "ternary"
    tiny["memory"] = {"recompute": True}
    tiny["objective"] = {"name": "rmp"}
    with pytest.raises(ValueError, match="needs every membrane"):
        train(tiny, tmp_path / "r", verbose=False)
