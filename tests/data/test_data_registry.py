from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeforge import data
from spikeforge.data import event_formats as ef
from spikeforge.data.errors import DatasetNotFoundError

REQUIRED = ["digits", "fashion-mnist", "mnist", "cifar10", "cifar100", "imagefolder", "nmnist", "cifar10-dvs",
            "dvs-gesture", "nmnist-sim", "n-fashion-mnist-sim", "modelnet40", "modelnet10", "digits-points",
            "fmnist-points"]


def test_all_names_registered():
    assert set(REQUIRED) <= set(data.list_datasets())


def test_digits_get_and_limit():
    tr = data.get("digits")
    te = data.get("digits", "test", limit=7)
    assert tr.x.shape == (1437, 1, 8, 8) and tr.x.dtype == torch.float32 and tr.y.dtype == torch.long
    assert te.x.shape == (7, 1, 8, 8) and len(te) == 7
    assert tr.kind == "static" and tr.num_classes == 10 and tr.classes[3] == "3"
    assert abs(float(tr.x.mean())) < 1e-4 and abs(float(tr.x.std()) - 1) < 1e-2  # train-set normalised
    full = data.get("digits", "test")
    assert torch.equal(full.x[:7], te.x) and torch.equal(full.y[:7], te.y)
    raw = data.get("digits", "test", normalize=False)
    assert raw.x.min() >= 0 and raw.x.max() <= 1
    assert sum(tr.class_counts().values()) == 1437


def test_option_and_name_errors():
    with pytest.raises(TypeError, match="valid options: normalize=True"):
        data.get("digits", colour=True)
    with pytest.raises(KeyError, match="registered: cifar10"):
        data.get("mnist-typo")
    with pytest.raises(ValueError, match="split"):
        data.get("digits", "val")
    with pytest.raises(ValueError, match="needs root"):
        data.get("imagefolder")


def test_missing_dataset_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as ei:
        data.get("cifar10", root=tmp_path)
    msg = str(ei.value)
    assert str(tmp_path / "cifar-10-batches-py") in msg and "SPIKEFORGE_DATA" in msg and "never downloads" in msg
    d = data.info("cifar10", root=tmp_path)
    assert d["present"] is False and str(tmp_path) in d["searched"]
    text = data.format_info(d)
    assert "present: no" in text and str(tmp_path) in text


def test_mnist_from_env_and_info(tmp_path, monkeypatch, fakes):
    fakes.mnist_like(tmp_path / "mnist", n_train=12, n_test=5)
    monkeypatch.setenv("SPIKEFORGE_DATA", str(tmp_path))
    s = data.get("mnist", "train", limit=10)
    assert s.x.shape == (10, 1, 28, 28) and s.source == str(tmp_path / "mnist")
    assert s.meta["mean"] == [0.1307]
    d = data.info("mnist")
    assert d["present"] and d["found_sizes"] == {"train": 12, "test": 5}
    assert d["class_counts"]["test"]["4"] == 1
    assert "train class counts" in data.format_info(d)


def test_cifar10_from_root(tmp_path, fakes):
    fakes.cifar10(tmp_path / "cifar-10-batches-py", n=3)
    s = data.get("cifar10", "test", root=tmp_path)
    assert s.x.shape == (3, 3, 32, 32) and s.classes[-1] == "truck"


def test_imagefolder_registry(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    for c in ("a", "b", "c"):
        for split in ("train", "test"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.full((5, 5), 40 * i, np.uint8)).save(tmp_path / split / c / f"{i}.png")
    s = data.get("imagefolder", "test", root=tmp_path, mode="L")
    assert s.num_classes == 3 and s.x.shape == (6, 1, 5, 5) and s.y.tolist() == [0, 0, 1, 1, 2, 2]


def _rand_events(rng, n, w, h, t_max=300_000):
    t = np.sort(rng.integers(0, t_max, n))
    return ef.make_events(t, rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n))


def test_nmnist_fake_tree(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "N-MNIST"
    for split, n in (("Train", 2), ("Test", 1)):
        for d in (0, 7):
            (root / split / str(d)).mkdir(parents=True)
            for i in range(n):
                ef.write_nmnist_bin(root / split / str(d) / f"{i + 1:05d}.bin", _rand_events(rng, 50, 34, 34))
    s = data.get("nmnist", "train", root=tmp_path, T=4, cache_dir=tmp_path / "cache")
    assert s.x.shape == (4, 4, 2, 34, 34) and s.y.tolist() == [0, 0, 7, 7] and s.kind == "events"
    assert torch.all(s.x.sum((1, 2, 3, 4)) == 50)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 4
    t = data.get("nmnist", "test", root=root, T=2, split_by="time", limit=1)
    assert t.x.shape == (1, 2, 2, 34, 34)
    # default cache_dir='auto' -> $SPIKEFORGE_CACHE/event-frames (set per test by conftest)
    assert len(list((Path(os.environ["SPIKEFORGE_CACHE"]) / "event-frames").glob("*.npz"))) == 1
    assert torch.equal(data.get("nmnist", "test", root=root, T=2, split_by="time", limit=1).x, t.x)
    assert data.info("nmnist", root=tmp_path)["found_sizes"] == {"train": 4, "test": 2}


def test_cifar10_dvs_split(tmp_path):
    rng = np.random.default_rng(1)
    for c in ("airplane", "truck"):
        (tmp_path / c).mkdir()
        for i in range(10):
            ef.write_aedat2(tmp_path / c / f"cifar10_{c}_{i}.aedat", _rand_events(rng, 30, 128, 128))
    tr = data.get("cifar10-dvs", "train", root=tmp_path, T=2)
    te = data.get("cifar10-dvs", "test", root=tmp_path, T=2)
    assert len(tr) == 18 and len(te) == 2 and te.y.tolist() == [0, 9]
    assert te.x.shape == (2, 2, 2, 128, 128)


def test_cifar10_dvs_split_is_spikingjelly_name_order_and_48px_resize(tmp_path):
    from spikeforge.data import event_datasets as evd

    rng = np.random.default_rng(3)
    (tmp_path / "cat").mkdir()
    for i in range(12):
        ef.write_aedat2(tmp_path / "cat" / f"cifar10_cat_{i}.aedat", _rand_events(rng, 40, 128, 128))
    # name order _0, _1, _10, _11, _2, ..., _9; ceil(0.9 * 12) = 11 train files, the last name (_9) is test
    train_files, _ = evd.cifar10dvs_index(tmp_path, "train")
    test_files, y = evd.cifar10dvs_index(tmp_path, "test")
    assert [f.stem.rsplit("_", 1)[1] for f in train_files][:4] == ["0", "1", "10", "11"]
    assert [f.name for f in test_files] == ["cifar10_cat_9.aedat"] and y.tolist() == [3]
    full = data.get("cifar10-dvs", "test", root=tmp_path, T=2, cache_dir=None)
    small = data.get("cifar10-dvs", "test", root=tmp_path, T=2, cache_dir=None, size=[48, 48])
    assert small.x.shape == (1, 2, 2, 48, 48) and small.meta["size"] == [48, 48]
    src = (torch.arange(48) * 128 + 64) // 48  # pixel centres: floor((i + 0.5) * 128 / 48)
    assert torch.equal(small.x, full.x[..., src[:, None], src[None, :]])
    with pytest.raises(ValueError, match="option size"):
        data.get("cifar10-dvs", "test", root=tmp_path, T=2, cache_dir=None, size=[48])


def test_dvs_gesture_fake(tmp_path):
    rng = np.random.default_rng(2)
    trials = {"user01_fluorescent": [(1, 0, 100_000), (11, 150_000, 300_000)], "user02_led": [(5, 0, 300_000)]}
    for name, rows in trials.items():
        ef.write_aedat31(tmp_path / f"{name}.aedat", _rand_events(rng, 400, 128, 128), packet_size=64)
        (tmp_path / f"{name}_labels.csv").write_text(
            "class,startTime_usec,endTime_usec\n" + "".join(f"{c},{a},{b}\n" for c, a, b in rows))
    (tmp_path / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
    (tmp_path / "trials_to_test.txt").write_text("user02_led.aedat\n")
    s = data.get("dvs-gesture", "train", root=tmp_path, T=3, cache_dir=tmp_path / "c")
    assert s.x.shape == (2, 3, 2, 128, 128) and s.y.tolist() == [0, 10] and s.num_classes == 11
    ev = ef.read_events(tmp_path / "user01_fluorescent.aedat")
    assert s.x[0].sum() == np.sum(ev["t"] < 100_000)
    assert data.get("dvs-gesture", "train", root=tmp_path, limit=1).x.shape[0] == 1
    assert data.info("dvs-gesture", root=tmp_path)["class_counts"]["test"]["right_arm_counter_clockwise"] == 1


def test_modelnet_registry(tmp_path, fakes):
    fakes.modelnet(tmp_path / "modelnet40_normal_resampled")
    s = data.get("modelnet40", "test", n_points=32, cache_dir=tmp_path / "c", root=tmp_path)
    assert s.x.shape == (2, 3, 32) and s.kind == "points"
    assert s.num_classes == 2 and s.classes == ["airplane", "night_stand"]  # from the shape-names file
    again = data.get("modelnet40", "test", n_points=32, cache_dir=tmp_path / "c", root=tmp_path)
    assert torch.equal(again.x, s.x)


def test_simulated_and_points_datasets():
    s = data.get("nmnist-sim", "test", limit=6, T=5)
    assert s.x.shape == (6, 5, 2, 34, 34) and s.meta["simulated"] and "simulated" in s.source
    assert torch.all(s.x.sum((1, 2, 3, 4)) > 0)
    assert torch.equal(s.y, data.get("digits", "test", limit=6).y)
    p = data.get("digits-points", "train", limit=5, n_points=64)
    assert p.x.shape == (5, 3, 64) and torch.all(p.x[:, 2] == 0) and p.x.abs().max() <= 1
    assert data.info("nmnist-sim")["simulated"] is True


def test_fashion_sim_from_root(tmp_path, fakes):
    fakes.mnist_like(tmp_path, n_train=4, n_test=3)
    s = data.get("n-fashion-mnist-sim", "test", root=tmp_path, T=2)
    assert s.x.shape == (3, 2, 2, 34, 34)
    q = data.get("fmnist-points", "train", root=tmp_path, n_points=16)
    assert q.x.shape == (4, 3, 16) and q.classes[0] == "T-shirt/top"
