"""Decode speed of the event-file readers on synthetic recordings written by spikeforge's own writers.

    python benchmarks/event_readers.py [--events 1000000] [--rounds 3]

Events are uniform on a 1280x720 sensor over 10 s with 20 % of them in runs that share time, row and
polarity (so EVT 3.0 vectorises them). Prints the median read time and millions of events per second
(wall clock and process CPU time, since the machine may be shared) and the file size per event.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from spikeforge.data import event_formats as ef


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 10_000_000, n))
    ev = ef.make_events(t, rng.integers(0, 1280, n), rng.integers(0, 720, n), rng.integers(0, 2, n))
    starts = rng.choice(n - 8, n // 40, replace=False)
    for s in starts:  # runs of 8 events: same t, y, p; x increasing by 1
        ev[s:s + 8]["t"], ev[s:s + 8]["y"], ev[s:s + 8]["p"] = ev[s]["t"], ev[s]["y"], ev[s]["p"]
        ev[s:s + 8]["x"] = min(int(ev[s]["x"]), 1270) + np.arange(8)
    return np.sort(ev, order="t", kind="stable")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    ev = synthetic(a.events)
    formats = [("prophesee-dat", ef.write_prophesee_dat), ("evt2", ef.write_evt2), ("evt3", ef.write_evt3),
               ("aedat2-davis346", None)]
    with tempfile.TemporaryDirectory() as d:
        for name, write in formats:
            p = Path(d) / name
            if write is None:
                small = ev[(ev["x"] < 346) & (ev["y"] < 260)]
                ef.write_aedat2(p, small, chip="davis346")
                n = len(small)
            else:
                write(p, ev, 1280, 720)
                n = len(ev)
            wall, cpu = [], []
            for _ in range(a.rounds):
                t0, c0 = time.perf_counter(), time.process_time()
                out = ef.read_events(p)
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            assert len(out) == n
            w, c = statistics.median(wall), statistics.median(cpu)
            print(f"{name:16s} {n:>9d} events  {w:6.3f} s wall ({n / w / 1e6:5.1f} M ev/s)  "
                  f"{c:6.3f} s CPU ({n / c / 1e6:5.1f} M ev/s)  {p.stat().st_size / n:4.2f} B/event")


if __name__ == "__main__":
    main()
