"""The streamed ImageNet-style folder: layout, RandomResizedCrop / Resize + CenterCrop against hand references."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from spikeforge import data
from spikeforge.data import imagefolder as imf

Image = pytest.importorskip("PIL.Image")


def _write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _tree(root, rng, n_train=3, n_val=2, shape=(40, 60), ext="png"):
    arrays = {}
    for split, n in (("train", n_train), ("val", n_val)):
        for c in ("n02", "n01"):
            for i in range(n):
                a = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
                p = root / split / c / f"{c}_{i}.{ext}"
                _write(p, a)
                arrays[p] = a
    return arrays


def _norm(a: np.ndarray, mean=imf.IMAGENET_MEAN, std=imf.IMAGENET_STD) -> torch.Tensor:
    x = torch.from_numpy(a.astype(np.float32) / 255.0).permute(2, 0, 1)
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def test_index_layout_classes_and_labels(tmp_path):
    _tree(tmp_path, np.random.default_rng(0))
    files, y, classes = imf.index_imagenet(tmp_path, "train")
    assert classes == ["n01", "n02"] and y.tolist() == [0, 0, 0, 1, 1, 1]
    assert [f.name for f in files][:2] == ["n01_0.png", "n01_1.png"]
    files, y, _ = imf.index_imagenet(tmp_path, "test")
    assert y.tolist() == [0, 0, 1, 1] and all(f.parent.parent.name == "val" for f in files)


def test_flat_val_needs_the_solution_file_and_then_labels_by_it(tmp_path):
    rng = np.random.default_rng(1)
    for c in ("n01", "n02"):
        _write(tmp_path / "train" / c / "a.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    for k in (1, 2, 3):
        _write(tmp_path / "val" / f"ILSVRC2012_val_{k:08d}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    with pytest.raises(data.DatasetNotFoundError, match="LOC_val_solution.csv") as err:
        imf.index_imagenet(tmp_path, "test")
    assert "move each validation image into" in str(err.value)
    (tmp_path / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\nILSVRC2012_val_00000002,n01 1 2 3 4\n"
        "ILSVRC2012_val_00000001,n02 5 6 7 8 n02 1 1 1 1\nILSVRC2012_val_00000003,n01 0 0 1 1\n")
    files, y, _ = imf.index_imagenet(tmp_path, "test")
    assert [f.stem[-1] for f in files] == ["1", "2", "3"] and y.tolist() == [1, 0, 0]
    (tmp_path / "LOC_val_solution.csv").write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n99 1\n")
    with pytest.raises(data.CorruptFileError, match="n99"):
        imf.index_imagenet(tmp_path, "test")


def test_random_resized_crop_box_stays_inside_and_follows_the_ranges():
    rng = random.Random(0)
    for _ in range(500):
        H, W = rng.randint(20, 300), rng.randint(20, 300)
        top, left, h, w = imf.random_resized_crop_box(rng, H, W)
        assert 0 <= top and top + h <= H and 0 <= left and left + w <= W and h > 0 and w > 0
    areas, ratios = [], []
    for _ in range(2000):
        top, left, h, w = imf.random_resized_crop_box(rng, 200, 200)
        areas.append(h * w / 200**2)
        ratios.append(w / h)
    assert min(areas) >= 0.08 * 0.95 and max(areas) <= 1.0
    assert min(ratios) >= 0.75 * 0.97 and max(ratios) <= 4 / 3 * 1.03
    # with scale <= 0.5 no draw is rejected on a square (max side sqrt(0.5 * 4/3) < 1): s ~ U(0.08, 0.5),
    # log r ~ U(log 3/4, log 4/3), so E[s] = 0.29 and E[log r] = 0 (up to the rounding of w and h)
    draws = [imf.random_resized_crop_box(rng, 400, 400, scale=(0.08, 0.5)) for _ in range(4000)]
    assert np.mean([h * w / 400**2 for _, _, h, w in draws]) == pytest.approx(0.29, abs=0.01)
    assert np.mean([math.log(w / h) for _, _, h, w in draws]) == pytest.approx(0.0, abs=0.01)
    # impossible draws (a 10-px-high strip) fall back to the central crop at the nearest allowed ratio
    assert imf.random_resized_crop_box(random.Random(0), 10, 100, scale=(0.9, 1.0)) == (0, 43, 10, 13)
    assert imf.random_resized_crop_box(random.Random(0), 100, 10, scale=(0.9, 1.0)) == (43, 0, 13, 10)


def test_train_transform_is_the_seeded_crop_resized_bilinearly(tmp_path):
    arrays = _tree(tmp_path, np.random.default_rng(2), shape=(50, 70))
    files, y, _ = imf.index_imagenet(tmp_path, "train")
    ds = imf.ImageFolderStream(files, y, train=True, crop=24, resize=28)
    x, label = ds[(4, 1234)]
    assert x.shape == (3, 24, 24) and x.dtype == torch.float32 and label == 1
    top, left, h, w = imf.random_resized_crop_box(random.Random(1234), 50, 70)
    crop = Image.fromarray(arrays[files[4]][top:top + h, left:left + w]).resize((24, 24), Image.BILINEAR)
    assert torch.allclose(x, _norm(np.asarray(crop)), atol=1e-6)
    assert torch.equal(ds[(4, 1234)][0], x)  # a pure function of (index, seed)
    assert not torch.equal(ds[(4, 99)][0], x)


def test_eval_transform_resize_and_center_crop_exact(tmp_path):
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)  # shorter side already 32: the resize is exact
    _write(tmp_path / "train" / "c" / "x.png", a)
    _write(tmp_path / "val" / "c" / "x.png", a)
    files, y, _ = imf.index_imagenet(tmp_path, "test")
    ds = imf.ImageFolderStream(files, y, train=False, crop=24, resize=32)
    x, _ = ds[0]
    assert torch.allclose(x, _norm(a[4:28, 12:36]), atol=1e-6)  # top round(8/2), left round(24/2)
    assert imf.resize_shorter_size(375, 500, 256) == (256, 341)
    assert imf.resize_shorter_size(500, 375, 256) == (341, 256)
    assert imf.center_crop_box(256, 341, 224) == (16, 58, 224, 224)  # round(16.0), round(58.5) = 58
    with pytest.raises(ValueError, match="larger"):
        imf.center_crop_box(20, 30, 24)


def test_registry_split_is_streamed_and_lazy(tmp_path):
    _tree(tmp_path, np.random.default_rng(4))
    tr = data.get("imagenet", "train", root=tmp_path, crop=16, resize=20)
    te = data.get("imagenet", "test", root=tmp_path, crop=16, resize=20, limit=3)
    assert tr.streaming and len(tr) == 6 and tr.num_classes == 2 and tr.kind == "static"
    assert tr.x.shape == (6, 3, 16, 16) and tr.dataset.train and not te.dataset.train
    assert len(te) == 3 and te.y.tolist() == [0, 0, 1]
    batch = te.x[0:3]
    assert batch.shape == (3, 3, 16, 16)
    assert torch.equal(batch[1], te.dataset[1][0]) and torch.equal(te.x[torch.tensor([2])][0], te.dataset[2][0])
    assert te.meta["mean"] == list(imf.IMAGENET_MEAN) and te.meta["normalized"]
    with pytest.raises(TypeError, match="valid options"):
        data.get("imagenet", "train", root=tmp_path, size=3)
    info = data.info("imagenet", root=tmp_path)
    assert info["present"] and info["found_sizes"] == {"train": 6, "test": 4}


def test_sample_seed_mixes_base_and_index():
    seeds = {imf.sample_seed(b, i) for b in range(4) for i in range(250)}
    assert len(seeds) == 1000 and all(0 <= s < 2**63 for s in seeds)
    assert imf.sample_seed(3, 7) == imf.sample_seed(3, 7)
    assert math.isfinite(float(imf.sample_seed(0, 0)))
