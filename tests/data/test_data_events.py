from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from spikeforge.data import event_formats as ef
from spikeforge.data import events as E

# (t, x, y, p), deliberately not in time order
ROWS = [(30, 2, 1, 1), (0, 0, 0, 1), (20, 1, 0, 1), (10, 1, 0, 0), (110, 2, 1, 0), (40, 0, 0, 0),
        (100, 2, 1, 0), (50, 9, 9, 1)]  # the last one lies outside a 2x3 sensor


def _ev(rows=ROWS):
    t, x, y, p = zip(*rows, strict=True)
    return ef.make_events(t, x, y, p)


def test_split_by_number_hand_counted():
    f = E.events_to_frames(_ev(), T=3, size=(2, 3), split_by="number")
    assert f.shape == (3, 2, 2, 3) and f.dtype == np.float32
    # t=50 lies off the 2x3 sensor and is dropped first; 7 events -> chunks of 3, 2, 2:
    # [0,10,20] [30,40] [100,110]
    exp = np.zeros((3, 2, 2, 3), np.float32)
    exp[0, 1, 0, 0] = 1  # t=0 ON (0,0)
    exp[0, 0, 0, 1] = 1  # t=10 OFF (y0,x1)
    exp[0, 1, 0, 1] = 1  # t=20 ON (y0,x1)
    exp[1, 1, 1, 2] = 1  # t=30 ON (y1,x2)
    exp[1, 0, 0, 0] = 1  # t=40 OFF (0,0)
    exp[2, 0, 1, 2] = 2  # t=100,110 OFF (y1,x2)
    np.testing.assert_array_equal(f, exp)


def test_split_by_time_hand_counted():
    f = E.events_to_frames(_ev(), T=3, size=(2, 3), split_by="time")
    # t0 = 0, D = 111: k = floor(3 t / 111) -> t<=36 in 0, 37..73 in 1, >=74 in 2
    exp = np.zeros((3, 2, 2, 3), np.float32)
    exp[0, 1, 0, 0] = exp[0, 0, 0, 1] = exp[0, 1, 0, 1] = exp[0, 1, 1, 2] = 1
    exp[1, 0, 0, 0] = 1
    exp[2, 0, 1, 2] = 2
    np.testing.assert_array_equal(f, exp)


def test_number_remainder_and_few_events():
    ev = ef.make_events(np.arange(7), np.zeros(7), np.zeros(7), np.ones(7))
    f = E.events_to_frames(ev, T=3, size=(1, 1))
    assert f[:, 1, 0, 0].tolist() == [3, 2, 2]  # first N % T frames get one extra event
    f = E.events_to_frames(ev[:2], T=4, size=(1, 1))
    assert f[:, 1, 0, 0].tolist() == [1, 1, 0, 0]
    assert E.events_to_frames(ev[:0], T=2, size=(3, 3)).sum() == 0
    with pytest.raises(ValueError, match="split_by"):
        E.events_to_frames(ev, T=2, size=(1, 1), split_by="count")


@pytest.mark.parametrize("split_by", ["number", "time"])
def test_batched_equals_single(split_by):
    rng = np.random.default_rng(0)
    n, per = 5, 37
    sample = np.repeat(np.arange(n), per)
    t = rng.integers(0, 10_000, n * per)
    x, y, p = rng.integers(0, 6, n * per), rng.integers(0, 4, n * per), rng.integers(0, 2, n * per)
    perm = rng.permutation(n * per)
    got = E.frames_from_columns(sample[perm], t[perm], x[perm], y[perm], p[perm], n, 4, (4, 6), split_by)
    order = np.argsort(t, kind="stable")  # time-sorted columns, samples interleaved
    got2 = E.frames_from_columns(sample[order], t[order], x[order], y[order], p[order], n, 4, (4, 6), split_by,
                                 time_sorted=True)
    for i in range(n):
        m = sample == i
        ref = E.events_to_frames(ef.make_events(t[m], x[m], y[m], p[m]), 4, (4, 6), split_by)
        np.testing.assert_array_equal(got[i], ref)
        np.testing.assert_array_equal(got2[i], ref)


def test_render_grey():
    # official NeuroCLIP rendering: channel 0 (p = 0) -> 255, then channel 1 (p = 1) -> 0; channel 1 wins
    f = np.zeros((2, 2, 3), np.float32)
    f[0, 0, 0] = 2  # channel 0 only -> 255
    f[1, 0, 1] = 1  # channel 1 only -> 0
    f[0, 1, 1] = f[1, 1, 1] = 3  # both -> channel 1 wins -> 0
    f[0, 1, 2] = 1  # channel-0 count 1, threshold 1 -> stays 127
    g = E.render_grey(f, count_threshold=0)
    assert g.dtype == np.uint8 and g.tolist() == [[255, 0, 127], [127, 0, 255]]
    assert E.render_grey(f, count_threshold=1).tolist() == [[255, 127, 127], [127, 0, 127]]
    gt = E.render_grey(torch.from_numpy(np.stack([f, f])))
    assert isinstance(gt, torch.Tensor) and gt.dtype == torch.uint8 and gt.shape == (2, 2, 3)
    assert gt[1].tolist() == g.tolist()
    with pytest.raises(ValueError, match=r"\[\.\.\., 2, H, W\]"):
        E.render_grey(np.zeros((3, 4, 4)))


def test_denoise():
    ev = _ev([(0, 5, 5, 1),  # neighbour (6,6) at t=50 -> kept
              (50, 6, 6, 0),  # kept (neighbour of the first)
              (60, 20, 20, 1),  # isolated -> removed
              (70, 20, 20, 1),  # same pixel does not count -> removed
              (100, 30, 30, 1), (5000, 31, 30, 1)])  # neighbours but 4900 us apart -> removed
    out = E.denoise(ev, time_window=1000)
    assert out["t"].tolist() == [0, 50]
    assert len(E.denoise(ev, time_window=10_000)) == 4


def test_crop_flip_drop():
    ev = _ev([(0, 1, 1, 1), (1, 4, 2, 0), (2, 9, 9, 1)])
    c = E.crop(ev, 1, 1, 4, 3)
    assert c[["x", "y"]].tolist() == [(0, 0), (3, 1)]
    assert E.hflip(ev, 10)["x"].tolist() == [8, 5, 0]
    many = ef.make_events(np.arange(10_000), np.zeros(10_000), np.zeros(10_000), np.ones(10_000))
    kept = E.random_drop(many, 0.25, rng=0)
    assert abs(len(kept) / 10_000 - 0.75) < 0.02
    np.testing.assert_array_equal(kept, E.random_drop(many, 0.25, rng=0))
    assert len(E.random_drop(many, 1.0, rng=1)) == 0


def test_frame_cache(tmp_path, monkeypatch):
    rec = ef.write_nmnist_bin(tmp_path / "r.bin", _ev([(0, 1, 1, 1), (10, 2, 2, 0), (20, 3, 3, 1)]))
    cache = tmp_path / "cache"
    f1 = E.cached_frames(rec, 2, (34, 34), "number", cache_dir=cache)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1 and f1.sum() == 3
    # a second call reads the cache, not the recording
    monkeypatch.setattr(E, "read_events", lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-read")))
    np.testing.assert_array_equal(E.cached_frames(rec, 2, (34, 34), "number", cache_dir=cache), f1)
    monkeypatch.undo()
    # other settings -> other entry; changed file (size/mtime) -> other entry
    E.cached_frames(rec, 3, (34, 34), "number", cache_dir=cache)
    ef.write_nmnist_bin(rec, _ev([(0, 1, 1, 1)]))
    os.utime(rec, ns=(1, 10**18))
    f3 = E.cached_frames(rec, 2, (34, 34), "number", cache_dir=cache)
    assert f3.sum() == 1 and len(list(cache.glob("*.npz"))) == 3
    # a damaged cache entry is recomputed
    for p in cache.glob("*.npz"):
        p.write_bytes(b"junk")
    np.testing.assert_array_equal(E.cached_frames(rec, 2, (34, 34), "number", cache_dir=cache), f3)


def test_off_sensor_events_do_not_count_in_number_split():
    ev = ef.make_events([0, 1, 2, 3], [0, 50, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1])
    f = E.events_to_frames(ev, T=2, size=(1, 1), split_by="number")
    assert f[:, 1, 0, 0].tolist() == [2, 1]
