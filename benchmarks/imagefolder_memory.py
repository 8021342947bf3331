"""Peak resident memory of one epoch over a generated ImageNet-style JPEG folder: streamed vs loaded into memory.

    python benchmarks/imagefolder_memory.py [--sizes 20 400] [--workers 2] [--batch 16] [--image 375x500]

For each folder size N a folder ``train/<class>/*.JPEG`` + ``val/<class>/*.JPEG`` of N random JPEGs (ImageNet's
typical 375x500) is written to a temporary directory. Each measurement runs in a fresh Python process:

* ``stream``: one epoch of :class:`spikeforge.train.batches.StreamingBatches` over ``data.get("imagenet")``
  (RandomResizedCrop 224, DataLoader with ``--workers`` persistent workers), the batches consumed on the CPU;
* ``in-memory``: ``data.get("imagefolder", size=(224, 224))``, the previous path (the whole folder decoded
  into one float32 tensor), then one epoch of :class:`~spikeforge.train.batches.InMemoryBatches`.

Reported: peak RSS (``ru_maxrss``) of the main process and the largest worker, in MiB. The streamed peak must
not grow with N; the in-memory peak grows by N x 3 x 224 x 224 x 4 bytes (0.57 MiB per image).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = r"""
import json, resource, sys, time
import torch
from spikeforge import data
from spikeforge.train.batches import make_batch_source
from spikeforge.train.distributed import DistInfo
mode, root, workers, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1)
t0 = time.perf_counter()
if mode == "stream":
    split = data.get("imagenet", "train", root=root)
else:
    split = data.get("imagefolder", "train", root=root + "/train", size=(224, 224), test_fraction=0.0)
source = make_batch_source(split, batch, DistInfo(), workers=workers)
seen = 0
checksum = 0.0
for xb, yb in source.epoch(torch.Generator().manual_seed(0), 0):
    seen += int(yb.shape[0])
    checksum += float(xb.float().mean())
source.close()
elapsed = time.perf_counter() - t0
kib_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kib_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"samples": seen, "main_mib": kib_self / 1024, "worker_mib": kib_children / 1024,
                  "seconds": elapsed}))
"""


def _make_folder(root: Path, n: int, hw: tuple[int, int]) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    classes = 4
    for split, count in (("train", n), ("val", max(classes, n // 10))):
        for k in range(count):
            c = f"n{k % classes:08d}"
            folder = root / split / c
            folder.mkdir(parents=True, exist_ok=True)
            # smooth random image (JPEG of white noise would be unrealistically large)
            base = rng.integers(0, 256, (hw[0] // 16 + 1, hw[1] // 16 + 1, 3), dtype=np.uint8)
            img = Image.fromarray(base).resize((hw[1], hw[0]), Image.BILINEAR)
            img.save(folder / f"{c}_{k}.JPEG", quality=90)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[20, 400])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--image", default="375x500", help="HxW of the generated JPEGs")
    p.add_argument("--modes", nargs="+", default=["stream", "in-memory"], choices=["stream", "in-memory"])
    args = p.parse_args()
    hw = tuple(int(v) for v in args.image.split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            root = Path(tmp) / f"n{n}"
            t0 = time.perf_counter()
            _make_folder(root, n, (hw[0], hw[1]))
            print(f"# wrote {n} train JPEGs {hw[0]}x{hw[1]} in {time.perf_counter() - t0:.1f}s", flush=True)
            for mode in args.modes:
                workers = args.workers if mode == "stream" else 0
                out = subprocess.run([sys.executable, "-c", _CHILD, mode, str(root), str(workers), str(args.batch)],
                                     capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                r.update(mode=mode, images=n, workers=workers)
                rows.append(r)
                print(f"{mode:>9}  images {n:>5}  workers {workers}  samples {r['samples']:>5}  "
                      f"peak RSS main {r['main_mib']:7.1f} MiB  largest worker {r['worker_mib']:7.1f} MiB  "
                      f"{r['seconds']:6.1f}s", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
