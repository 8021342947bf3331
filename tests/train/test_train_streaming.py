"""Training from a streamed image folder: the ImageNet recipe through the CLI, worker-count independence and
kill-and-resume determinism of the DataLoader path, and the batch-source layout."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from spikeforge.runs import load_tensors
from spikeforge.train import Trainer, resume, train
from spikeforge.train.batches import InMemoryBatches, ShardedBatchSampler, make_batch_source
from spikeforge.train.config import resolve
from spikeforge.train.distributed import DistInfo

Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def jpeg_folder(tmp_path):
    """train/ and val/ with two classes of random-size JPEGs."""
    root = tmp_path / "imnet"
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        for c in ("n01", "n02"):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                h, w = (int(v) for v in rng.integers(30, 60, 2))
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                    root / split / c / f"{c}_{i}.JPEG", quality=90)
    return root


def _cfg(tiny, root, workers):
    cfg = copy.deepcopy(tiny)
    cfg["data"] = {"name": "imagenet", "root": str(root), "options": {"crop": 16, "resize": 20},
                   "augment": {"hflip": 0.5}, "workers": workers}
    cfg.update(batch_size=4, epochs=2)
    return resolve(cfg)


def test_imagenet_recipe_trains_one_step_through_the_cli(jpeg_folder, tmp_path):
    from spikeforge.cli.main import main

    out = tmp_path / "run"
    rc = main(["train", "ternary-imagenet", "--out", str(out), "--set", f"data.root={jpeg_folder}",
               "--set", "data.options.crop=16", "--set", "data.options.resize=20", "--set", "data.workers=1",
               "--set", "model.name=convnet", "--set", "model.widths=[4, 8]", "--set", "epochs=1",
               "--set", "batch_size=8", "--set", "eval_batch_size=4", "--set", "device=cpu",
               "--set", "sync_bn=false", "--set", "log.tensorboard=false", "--set", "log.progress=never",
               "--set", "fold.verify_samples=4", "--set", "analysis.samples=4",
               "--set", "data.augment.autoaugment=cifar10"])  # AutoAugment on the normalised stream, too
    assert rc == 0
    import json

    m = json.loads((out / "metrics.json").read_text())
    assert m["train_samples"] == 12 and m["test_samples"] == 4 and m["dataset"] == "imagenet"
    assert m["fold_max_dev"] is not None and m["fold_max_dev"] <= 1e-4


def test_stream_is_independent_of_workers_and_resumes_bit_for_bit(jpeg_folder, tmp_path, tiny):
    ref = train(_cfg(tiny, jpeg_folder, 0), tmp_path / "w0", verbose=False)

    class Killed(Exception):
        pass

    def kill(trainer: Trainer, epoch: int) -> None:
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        Trainer(_cfg(tiny, jpeg_folder, 2), tmp_path / "w2", on_epoch_end=kill, verbose=False).fit()
    resumed = resume(tmp_path / "w2", verbose=False)
    assert resumed["test_acc"] == ref["test_acc"]
    a, b = load_tensors(tmp_path / "w0" / "model.safetensors"), load_tensors(tmp_path / "w2" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sharded_sampler_matches_the_in_memory_layout():
    class Split:
        def __init__(self, n):
            self.x, self.y = torch.arange(n).float()[:, None], torch.arange(n)

        def __len__(self):
            return len(self.y)

    n, G = 10, 4
    for rank in range(2):
        dist = DistInfo(world_size=2, rank=rank)
        mem = make_batch_source(Split(n), G, dist)
        assert isinstance(mem, InMemoryBatches) and mem.steps_per_epoch == 2
        perm_gen = torch.Generator().manual_seed(5)
        got = [yb.tolist() for _, yb in mem.epoch(perm_gen, 0)]
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(5))
        expect = [perm[i * G + rank * 2:i * G + rank * 2 + 2].tolist() for i in range(2)]
        assert got == expect
        sampler = ShardedBatchSampler(n, G, dist)
        sampler.set_epoch(perm, 7)
        assert [[j for j, _ in b] for b in sampler] == expect and len(sampler) == 2
    with pytest.raises(RuntimeError, match="set_epoch"):
        list(ShardedBatchSampler(n, G, DistInfo()))
