"""Fixtures for the data tests: every test gets private data/cache folders via the env vars."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from spikeforge.data import static


@pytest.fixture(autouse=True)
def _isolated_data_env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SPIKEFORGE_DATA", str(tmp_path_factory.mktemp("sf_data")))
    monkeypatch.setenv("SPIKEFORGE_CACHE", str(tmp_path_factory.mktemp("sf_cache")))


# ------------------------------------------------------------ writers of small fake datasets
def write_mnist_like(folder, n_train=12, n_test=5, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        pre = "train" if split == "train" else "t10k"
        sfx = ".gz" if gz else ""
        static.write_idx(folder / f"{pre}-images-idx3-ubyte{sfx}", x)
        static.write_idx(folder / f"{pre}-labels-idx1-ubyte{sfx}", y)
        out[split] = (x, y)
    return out


def cifar_batch(n, seed, label_key=b"labels"):
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"x", label_key: [int(v) for v in rng.integers(0, 10, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"a.png"] * n}


def write_cifar10(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        with open(folder / name, "wb") as f:
            pickle.dump(cifar_batch(n, i), f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship",
                 b"truck"]
        pickle.dump({b"label_names": names, b"num_cases_per_batch": n}, f, protocol=2)


def write_fake_modelnet(root, n_points=40):
    rng = np.random.default_rng(0)
    names = ["airplane", "night_stand"]
    root.mkdir(parents=True, exist_ok=True)
    (root / "modelnet40_shape_names.txt").write_text("\n".join(names) + "\n")
    train, test = [], []
    for c in names:
        (root / c).mkdir()
        for i in range(1, 4):
            sid = f"{c}_{i:04d}"
            a = rng.normal(size=(n_points, 6)) * [3, 2, 1, 1, 1, 1] + [5, 0, 0, 0, 0, 0]
            np.savetxt(root / c / f"{sid}.txt", a, fmt="%.6f", delimiter=",")
            (test if i == 3 else train).append(sid)
    (root / "modelnet40_train.txt").write_text("\n".join(train) + "\n")
    (root / "modelnet40_test.txt").write_text("\n".join(test) + "\n")
    return names




@pytest.fixture
def fakes():
    """Namespace of the writers above, for tests in other modules."""

    class F:
        mnist_like = staticmethod(write_mnist_like)
        cifar10 = staticmethod(write_cifar10)
        modelnet = staticmethod(write_fake_modelnet)
        batch = staticmethod(cifar_batch)

    return F
