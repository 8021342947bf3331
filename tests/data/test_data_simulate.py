from __future__ import annotations

import numpy as np

from spikeforge.data import static
from spikeforge.data.events import events_to_frames
from spikeforge.data.simulate import SaccadeConfig, simulate_events, simulate_frames, upsample


def _digits(n=32):
    x, y = static.load_digits_split("test")
    return upsample(x[:n, 0], (28, 28)), y[:n]


def test_events_are_valid_and_deterministic():
    imgs, _ = _digits(4)
    evs = simulate_events(imgs)
    again = simulate_events(imgs[::-1].copy())[::-1]  # batch composition must not matter
    for e, e2 in zip(evs, again, strict=True):
        np.testing.assert_array_equal(e, e2)
        assert len(e) > 100
        assert np.all(np.diff(e["t"]) >= 0)
        assert 0 <= e["t"].min() and e["t"].max() <= 300_000
        assert e["x"].max() < 34 and e["y"].max() < 34 and e["x"].min() >= 0
        assert set(np.unique(e["p"])) == {0, 1}
        # all three saccades produce events
        assert all(np.any((e["t"] > a) & (e["t"] <= a + 100_000)) for a in (0, 100_000, 200_000))


def test_frames_match_events_path():
    imgs, _ = _digits(3)
    fr = simulate_frames(imgs, T=5, split_by="time", batch_size=2)
    for i, e in enumerate(simulate_events(imgs)):
        np.testing.assert_array_equal(fr[i], events_to_frames(e, 5, (34, 34), "time"))


def test_event_counts_correlate_with_image_edges():
    imgs, _ = _digits(16)
    fr = simulate_frames(imgs, T=1)
    rs = []
    for img, f in zip(imgs, fr, strict=True):
        # the image moves within the 34x34 canvas by 1..5 px: compare with the edge magnitude of
        # the image placed at the mean offset (3, 3)
        canvas = np.zeros((34, 34), np.float32)
        canvas[3:31, 3:31] = img
        gy, gx = np.gradient(canvas)
        edge = np.hypot(gx, gy)
        blur = sum(np.roll(np.roll(edge, dy, 0), dx, 1) for dy in (-2, -1, 0, 1, 2) for dx in (-2, -1, 0, 1, 2))
        counts = f[0].sum(0)
        rs.append(np.corrcoef(counts.ravel(), blur.ravel())[0, 1])
        # almost no events far from the digit
        assert counts[canvas == 0].sum() < counts.sum()
    assert np.mean(rs) > 0.6, rs


def test_blank_image_gives_no_events_and_threshold_matters():
    blank = np.zeros((1, 28, 28), np.float32)
    assert len(simulate_events(blank)[0]) == 0
    imgs, _ = _digits(2)
    lo = sum(len(e) for e in simulate_events(imgs, SaccadeConfig(threshold=0.1)))
    hi = sum(len(e) for e in simulate_events(imgs, SaccadeConfig(threshold=0.3)))
    assert lo > 2 * hi


def test_mismatch_is_seeded():
    imgs, _ = _digits(2)
    a = simulate_frames(imgs, cfg=SaccadeConfig(mismatch=0.1, seed=1))
    b = simulate_frames(imgs, cfg=SaccadeConfig(mismatch=0.1, seed=1))
    c = simulate_frames(imgs, cfg=SaccadeConfig(mismatch=0.1, seed=2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
