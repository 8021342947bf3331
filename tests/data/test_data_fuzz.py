"""Fuzz every file reader with hypothesis: random bytes, mutated valid files and valid headers with
random bodies must either parse or raise one of the library's own errors
(:class:`~spikeforge.data.errors.SpikeforgeDataError`): never MemoryError, OverflowError,
IndexError, a plain ValueError ...

The normal suite runs a fixed (derandomised) ``FUZZ_QUICK`` examples per parser. ``make fuzz``
sets ``SPIKEFORGE_FUZZ_EXAMPLES`` (>= 10,000) and then also measures every case's time (CPU
time ``time.process_time`` asserted below ``FUZZ_MAX_SECONDS``: on a shared machine the wall
clock, also reported, includes waiting for a core) and memory: the process's peak
RSS (``resource.getrusage``) bounds every single case and must grow by less than
``FUZZ_MAX_BYTES`` over the run; with ``SPIKEFORGE_FUZZ_TRACEMALLOC=1`` each case's peak of
Python/numpy allocations (numpy reports its buffers to tracemalloc) is also measured and
asserted (slower). The per-parser counts and maxima are printed (and written to
``$SPIKEFORGE_FUZZ_REPORT`` if set).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import resource
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikeforge.data import base, points, static
from spikeforge.data import event_formats as ef
from spikeforge.data.errors import SpikeforgeDataError

FUZZ_EXAMPLES = int(os.environ.get("SPIKEFORGE_FUZZ_EXAMPLES", "0"))
FUZZ_MODE = FUZZ_EXAMPLES > 0
FUZZ_TRACEMALLOC = os.environ.get("SPIKEFORGE_FUZZ_TRACEMALLOC", "0") == "1"
FUZZ_QUICK = 25
FUZZ_MAX_SECONDS = 2.0
FUZZ_MAX_BYTES = 500 * 2**20

_rng = np.random.default_rng(1)
_EV = ef.make_events(np.sort(_rng.integers(0, 5000, 12)), _rng.integers(0, 34, 12), _rng.integers(0, 34, 12),
                     _rng.integers(0, 2, 12))
_EV[3:6]["t"], _EV[3:6]["y"], _EV[3:6]["p"], _EV[3:6]["x"] = _EV[3]["t"], 4, 1, [2, 3, 9]  # a vector run


def _written(write: Callable[[Path], object]) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "f"
        write(p)
        return p.read_bytes()


def _npz_bytes() -> bytes:
    f = io.BytesIO()
    np.savez_compressed(f, frames=np.arange(24, dtype=np.float32).reshape(2, 2, 2, 3))
    return f.getvalue()


def _cifar_bytes() -> bytes:
    d = {b"batch_label": b"b", b"labels": [1, 9, 0], b"data": np.arange(3 * 3072, dtype=np.uint8).reshape(3, 3072),
         b"filenames": [b"a.png"] * 3}
    return pickle.dumps(d, protocol=2)


def _idx(gz: bool) -> bytes:
    raw = _written(lambda p: static.write_idx(p, np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4),
                                              compress=False))
    return gzip.compress(raw, mtime=0) if gz else raw


# parser name -> (reader, seed files, header prefixes for "valid header + random body")
PARSERS: dict[str, tuple[Callable[[Path], object], list[bytes], list[bytes]]] = {
    "idx": (static.read_idx, [_idx(False), _idx(True)], [b"\x00\x00\x08\x01", b"\x00\x00\x0d\x03"]),
    "cifar-batch": (static.read_cifar_batch, [_cifar_bytes()], [b"\x80\x02}q\x00("]),
    "nmnist-bin": (ef.read_nmnist_bin, [_written(lambda p: ef.write_nmnist_bin(p, _EV))], [b""]),
    "aedat2-dvs128": (ef.read_aedat2, [_written(lambda p: ef.write_aedat2(p, _EV))], [b"#!AER-DAT2.0\r\n"]),
    "aedat2-davis": (ef.read_aedat2, [_written(lambda p: ef.write_aedat2(p, _EV, chip="davis346"))],
                     [b"#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C\r\n"]),
    "aedat3.1": (ef.read_aedat31, [_written(lambda p: ef.write_aedat31(p, _EV, packet_size=5))],
                 [b"#!AER-DAT3.1\r\n#!END-HEADER\r\n"]),
    "prophesee-dat": (ef.read_prophesee_dat, [_written(lambda p: ef.write_prophesee_dat(p, _EV, 34, 34))],
                      [b"% Data file containing CD events\n% Version 2\n% Width 34\n% Height 34\n\x0c\x08"]),
    "evt2-raw": (ef.read_evt2, [_written(lambda p: ef.write_evt2(p, _EV, 34, 34))], [b"% evt 2.0\n% end\n"]),
    "evt3-raw": (ef.read_evt3, [_written(lambda p: ef.write_evt3(p, _EV, 34, 34))],
                 [b"% format EVT3;height=34;width=34\n% end\n", b"% evt 3.0\n"]),
    "off": (points.read_off, [b"OFF\n4 2 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n4 0 1 2 3\n"],
            [b"OFF\n", b"OFF3 1 0\n"]),
    "modelnet-txt": (points.read_modelnet_txt, [b"0.1,0.2,0.3,0,0,1\n-1,2e3,4.5,1,0,0\n", b"1,2,3\n4,5,6\n"], [b""]),
    "frame-cache-npz": (base.read_npz, [_npz_bytes()], [b"PK\x03\x04"]),
}
# format detection + dispatch over every event format (files without an extension: header only)
PARSERS["read-events"] = (ef.read_events, [s for k in ("aedat2-dvs128", "aedat2-davis", "aedat3.1", "prophesee-dat",
                                                        "evt2-raw", "evt3-raw") for s in PARSERS[k][1]],
                          [b"#!AER-DAT2.0\r\n", b"#!AER-DAT3.1\r\n", b"#!AER-DAT4.0\r\n", b"% evt 2.0\n",
                           b"% evt 3.0\n", b"% format EVT21\n", b"% Version 2\n"])

STATS: dict[str, dict[str, float]] = {}


@st.composite
def _mutated(draw, seeds: list[bytes]) -> bytes:
    b = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        if not b:
            break
        i = draw(st.integers(0, len(b) - 1))
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "repeat"]))
        if op == "flip":
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            b[i] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif op == "cut":
            del b[i:]
        elif op == "insert":
            b[i:i] = draw(st.binary(min_size=1, max_size=24))
        else:
            j = draw(st.integers(i, min(len(b), i + 64)))
            b[i:i] = b[i:j] * draw(st.integers(1, 8))
    return bytes(b)


def _inputs(name: str) -> st.SearchStrategy[bytes]:
    _, seeds, prefixes = PARSERS[name]
    return st.one_of(
        st.binary(max_size=600),
        _mutated(seeds),
        st.builds(lambda pre, body: pre + body, st.sampled_from(prefixes), st.binary(max_size=600)),
    )


def _run_case(name: str, reader: Callable[[Path], object], path: Path, blob: bytes) -> None:
    path.write_bytes(blob)
    if FUZZ_MODE:
        if FUZZ_TRACEMALLOC:
            tracemalloc.reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
    try:
        reader(path)
    except SpikeforgeDataError:
        pass
    if FUZZ_MODE:
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        peak = tracemalloc.get_traced_memory()[1] if FUZZ_TRACEMALLOC else 0
        s = STATS.setdefault(name, {"cases": 0, "max_s": 0.0, "max_cpu": 0.0, "max_bytes": 0})
        s["cases"] += 1
        s["max_s"] = max(s["max_s"], dt)
        s["max_cpu"] = max(s["max_cpu"], cpu)
        s["max_bytes"] = max(s["max_bytes"], peak)
        # CPU time: on a shared machine the wall clock also counts time spent waiting for a core
        assert cpu < FUZZ_MAX_SECONDS, f"{name}: one case took {cpu:.2f} CPU s: {blob[:80]!r}"
        assert peak < FUZZ_MAX_BYTES, f"{name}: one case allocated {peak} bytes: {blob[:80]!r}"


@pytest.fixture(scope="module", autouse=True)
def _measure():
    if FUZZ_TRACEMALLOC:
        tracemalloc.start()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    yield
    if FUZZ_TRACEMALLOC:
        tracemalloc.stop()
    if FUZZ_MODE:
        rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        rss = rss_bytes / 2**20
        lines = [f"{'parser':18s} {'cases':>7s} {'max wall s':>10s} {'max CPU s':>10s} {'max MiB':>8s}"]
        lines += [f"{k:18s} {int(v['cases']):7d} {v['max_s']:10.4f} {v['max_cpu']:10.4f} "
                  f"{v['max_bytes'] / 2**20 if FUZZ_TRACEMALLOC else float('nan'):8.2f}" for k, v in STATS.items()]
        lines.append(f"process max RSS {rss:.0f} MiB (before the cases {rss0 / 2**20:.0f} MiB); "
                     f"load average {os.getloadavg()}")
        report = "\n".join(lines)
        print("\n" + report)
        out = os.environ.get("SPIKEFORGE_FUZZ_REPORT")
        if out:
            Path(out).write_text(report + "\n")
        # the process high-water mark bounds every single case: no case used more than this
        assert rss_bytes - rss0 < FUZZ_MAX_BYTES, f"max RSS grew by {(rss_bytes - rss0) / 2**20:.0f} MiB"


_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES or FUZZ_QUICK,
    derandomize=not FUZZ_MODE,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _make_test(name: str):
    reader = PARSERS[name][0]

    @_SETTINGS
    @given(blob=_inputs(name))
    def fuzz(tmp_path_factory, blob: bytes) -> None:
        shm = Path("/dev/shm")  # memory-backed on Linux: no disk I/O per case
        folder = shm if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path_factory.getbasetemp()
        path = folder / f"spikeforge-fuzz-{os.getpid()}-{name}"
        try:
            _run_case(name, reader, path, blob)
        finally:
            path.unlink(missing_ok=True)

    return fuzz


for _name in PARSERS:
    globals()[f"test_fuzz_{_name.replace('-', '_').replace('.', '_')}"] = _make_test(_name)


def test_seed_files_parse():
    """The unmutated seeds are valid files (so mutations start from deep inside each parser)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for name, (reader, seeds, _) in PARSERS.items():
            for i, blob in enumerate(seeds):
                p = Path(d) / f"{name}-{i}"
                p.write_bytes(blob)
                reader(p)
