"""Event-camera data from files to a trained model: write recordings, read them back, bin them into frames, train.

The recordings here are written by the library's own writer (`write_nmnist_bin`, the N-MNIST `.bin` format:
5 bytes per event) from a small saccade-like motion of the 8x8 digits, laid out as the N-MNIST dataset expects
(`Train/<digit>/*.bin`, `Test/<digit>/*.bin`). With the real N-MNIST files you skip step 1 and pass their folder.

Run: `python examples/event_files.py [DATA_DIR]` (`SPIKEFORGE_EXAMPLE_QUICK=1` for a few seconds).
"""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

import spikeforge as sf
from spikeforge import data
from spikeforge.data.event_formats import make_events, read_events, write_nmnist_bin
from spikeforge.data.events import events_to_frames

QUICK = os.environ.get("SPIKEFORGE_EXAMPLE_QUICK") == "1"
SHIFTS = [(0, 0), (3, 3), (6, 0), (0, 0)]  # a triangular saccade, as the N-MNIST camera moved (pixels)


def recording(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """ON/OFF events of a 8x8 image scaled to 24x24 moving along SHIFTS on a 34x34 sensor, 100 ms per leg."""
    big = np.kron(image / 16.0, np.ones((3, 3)))
    t: list[np.ndarray] = []
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    ps: list[np.ndarray] = []
    for leg, ((x0, y0), (x1, y1)) in enumerate(zip(SHIFTS[:-1], SHIFTS[1:])):
        for k in range(4):                                  # 4 positions per leg
            dx, dy = x0 + (x1 - x0) * k // 4 + 2, y0 + (y1 - y0) * k // 4 + 2
            yy, xx = np.nonzero(big > rng.random(big.shape))  # brighter pixels fire more often
            now = leg * 100_000 + k * 25_000 + rng.integers(0, 25_000, len(yy))
            t.append(now)
            xs.append(xx + dx)
            ys.append(yy + dy)
            ps.append(np.full(len(yy), (leg + k) % 2))  # alternate ON/OFF as edges pass
    ev = make_events(np.concatenate(t), np.concatenate(xs), np.concatenate(ys), np.concatenate(ps))
    return ev[np.argsort(ev["t"], kind="stable")]


def write_dataset(root: Path, per_class: int) -> Path:
    # --8<-- [start:write]
    digits = load_digits()
    rng = np.random.default_rng(0)
    folder = root / "N-MNIST"
    for split, offset in (("Train", 0), ("Test", 1000)):
        counts = dict.fromkeys(range(10), 0)
        for i in range(offset, len(digits.target)):
            label = int(digits.target[i])
            if counts[label] == per_class:
                continue
            counts[label] += 1
            path = folder / split / str(label) / f"{i:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_nmnist_bin(path, recording(digits.images[i], rng))
            if min(counts.values()) == per_class:
                break
    # --8<-- [end:write]
    return folder


def main(root: Path) -> float:
    folder = write_dataset(root, per_class=6 if QUICK else 60)
    # --8<-- [start:read]
    one = next((folder / "Train" / "3").glob("*.bin"))
    events = read_events(one)                                # structured array: t (us), x, y, p
    frames = events_to_frames(events, T=8, size=(34, 34))    # [T, 2, H, W] counts, channel 0 = OFF, 1 = ON
    print(f"{one.name}: {len(events)} events over {events['t'][-1] / 1e3:.0f} ms -> frames {frames.shape}")

    # the registry does the same for a whole folder (and caches the frames); nothing is downloaded
    opts = {"T": 8, "split_by": "number", "cache_dir": None}
    train = data.get("nmnist", "train", root=root, **opts)   # x: [N, T, 2, 34, 34]
    test = data.get("nmnist", "test", root=root, **opts)
    # --8<-- [end:read]

    # --8<-- [start:train]
    torch.manual_seed(0)
    model = sf.create_model("dvs_cnn", num_classes=10, input_size=34, widths=[8, 16], neuron="lif")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _epoch in range(1 if QUICK else 8):
        model.train()
        for i in torch.randperm(len(train)).split(16):
            logits = model(sf.encode.time_first(train.x[i]))  # [B, T, ...] -> [T, B, ...]
            loss = torch.nn.functional.cross_entropy(sf.readout(logits), train.y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = sf.readout(model(sf.encode.time_first(test.x))).argmax(1)
    acc = (pred == test.y).float().mean().item()
    print(f"{len(train)} train / {len(test)} test recordings, test accuracy {acc:.3f}")
    # --8<-- [end:train]
    return acc


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
