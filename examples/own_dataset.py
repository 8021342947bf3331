"""Your own dataset: register it once, then every tool (`data.get`, recipes, `spikeforge train`) can load it.

A dataset is a `DatasetSpec`: its name, kind (`static`, `events` or `points`), the folder names it is looked for
under, how to recognise that folder, and a `load(split, folder, limit, options)` function returning
`(x, y, classes, source, meta)`. Here the files are two `.npz` archives of 12x12 grey images of bars, written by the
example itself.

Run: `python examples/own_dataset.py [DATA_DIR]` (`SPIKEFORGE_EXAMPLE_QUICK=1` for a few seconds).
"""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from spikeforge import data
from spikeforge.train import train

QUICK = os.environ.get("SPIKEFORGE_EXAMPLE_QUICK") == "1"
CLASSES = ["horizontal", "vertical", "diagonal"]


def write_files(folder: Path, n: int) -> None:
    """``train.npz`` / ``test.npz`` with ``images [N, 12, 12]`` (uint8) and ``labels [N]``."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        labels = rng.integers(0, 3, n)
        images = rng.integers(0, 60, (n, 12, 12)).astype(np.uint8)
        for img, lab in zip(images, labels):
            k = rng.integers(2, 10)
            if lab == 0:
                img[k, :] = 255
            elif lab == 1:
                img[:, k] = 255
            else:
                np.fill_diagonal(img, 255)
        np.savez(folder / f"{split}.npz", images=images, labels=labels)


# --8<-- [start:register]
def load_bars(split: str, folder: Path | None, limit: int | None, opts: dict) -> tuple:
    """Read ``<folder>/<split>.npz`` -> ``(x [N, 1, 12, 12] float, y [N], classes, source, meta)``."""
    assert folder is not None
    archive = np.load(folder / f"{split}.npz")
    x = archive["images"][:limit, None].astype(np.float32) / 255.0
    if opts["invert"]:
        x = 1.0 - x
    return x, archive["labels"][:limit], CLASSES, str(folder / f"{split}.npz"), {}


def bar_labels(split: str, folder: Path | None, opts: dict) -> tuple:
    assert folder is not None
    return np.load(folder / f"{split}.npz")["labels"], CLASSES


data.register(data.DatasetSpec(
    name="bars", kind="static", num_classes=3, sample_shape="[1, 12, 12]",
    description="12x12 bars (horizontal, vertical, diagonal), .npz",
    load=load_bars, labels=bar_labels,
    dirnames=("bars",),                                  # looked for as <root>/bars, $SPIKEFORGE_DATA/bars, ...
    accept=lambda p: (p / "train.npz").is_file() and (p / "test.npz").is_file(),
    expected="train.npz and test.npz (images [N, 12, 12] uint8, labels [N])",
    options={"invert": False},                           # data.get("bars", invert=True); unknown options fail
))
# --8<-- [end:register]


def main(root: Path) -> dict:
    write_files(root / "bars", n=96 if QUICK else 600)
    # --8<-- [start:use]
    train_split = data.get("bars", "train", root=root)
    print(train_split.x.shape, train_split.classes, train_split.class_counts())
    print(data.format_info(data.info("bars", root=root)))   # what `spikeforge data info` prints

    recipe = {"model": {"name": "convnet", "widths": [8, 16], "neuron": "lif"},   # input size/classes from data
              "data": {"name": "bars", "root": str(root)}, "T": 2, "epochs": 4, "batch_size": 16,
              "optim": {"name": "sgd", "lr": 0.05}}
    quick = ["epochs=1", "device=cpu", "analysis.enabled=false", "log.tensorboard=false", "log.progress=never"]
    metrics = train(recipe, root / "run", quick if QUICK else ["device=cpu"], verbose=not QUICK)
    print(f"test accuracy {metrics['test_acc']:.3f}")
    # --8<-- [end:use]
    return metrics


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
