from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeforge.data import points as P
from spikeforge.data.errors import CorruptFileError


def test_modelnet_txt(tmp_path):
    p = tmp_path / "chair_0001.txt"
    p.write_text("0.1,0.2,0.3,0,0,1\n-1,2.5e-1,3,1,0,0\n")
    a = P.read_modelnet_txt(p)
    assert a.shape == (2, 6) and a.dtype == np.float32
    np.testing.assert_allclose(a[1], [-1, 0.25, 3, 1, 0, 0])
    p.write_text("0.1,0.2,0.3,0,0,1\n-1,2.5e-1,3,1,0\n")
    with pytest.raises(CorruptFileError, match="comma-separated"):
        P.read_modelnet_txt(p)
    p.write_text("0.1,0.2,x\n")
    with pytest.raises(CorruptFileError, match="non-numeric"):
        P.read_modelnet_txt(p)


def test_off_parsing_variants(tmp_path):
    p = tmp_path / "m.off"
    # ModelNet's broken header (counts glued to OFF), comments, a quad face
    p.write_text("OFF4 1 0\n# comment\n0 0 0\n1 0 0\n1 1 0\n0 1 0  # trailing\n4 0 1 2 3\n")
    v, f = P.read_off(p)
    assert v.shape == (4, 3) and f.tolist() == [[0, 1, 2], [0, 2, 3]]
    p.write_text("OFF\n\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    v, f = P.read_off(p)
    assert f.tolist() == [[0, 1, 2]]
    P.write_off(tmp_path / "w.off", v, f)
    v2, f2 = P.read_off(tmp_path / "w.off")
    np.testing.assert_allclose(v2, v) and np.testing.assert_array_equal(f2, f)


@pytest.mark.parametrize("text, needle", [
    ("PLY\n3 1 0\n", "first token"),
    ("OFF\n3 1\n0 0 0\n1 0 0\n", "only 2 data lines"),
    ("OFF\nthree 1 0\n", "counts line"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "out of range"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n4 0 1 2\n", "does not list"),
])
def test_off_corrupt(tmp_path, text, needle):
    p = tmp_path / "bad.off"
    p.write_text(text)
    with pytest.raises(CorruptFileError, match=needle):
        P.read_off(p)


def test_surface_sampling_is_area_weighted():
    # two triangles in the z=0 plane: areas 1/2 and 4 -> ratio 1:8
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [10, 0, 0], [12, 0, 0], [10, 4, 0]], np.float32)
    f = np.array([[0, 1, 2], [3, 4, 5]])
    pts = P.sample_surface(v, f, 9000, rng=0)
    assert np.all(pts[:, 2] == 0)
    small = pts[:, 0] < 5
    assert abs(small.mean() - 1 / 9) < 0.015
    s = pts[small]
    assert np.all(s[:, 0] + s[:, 1] <= 1 + 1e-6) and np.all(s >= -1e-6)  # inside the triangle
    # uniform inside: the centroid of the samples is the triangle's centroid
    np.testing.assert_allclose(s[:, :2].mean(0), [1 / 3, 1 / 3], atol=0.02)


def test_fps_properties():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(3, 200, 3, generator=g)
    idx = P.farthest_point_sample(pts, 32)
    assert idx.shape == (3, 32) and torch.all(idx[:, 0] == 0)
    for b in range(3):
        assert len(set(idx[b].tolist())) == 32
        single = P.farthest_point_sample(pts[b:b + 1], 32)
        assert torch.equal(single[0], idx[b])
        # greedy rule: point i is the farthest from the first i points
        for i in (1, 5, 31):
            sel = pts[b, idx[b, :i]]
            d = torch.cdist(pts[b], sel).min(1).values
            assert torch.isclose(d[idx[b, i]], d.max())
    # FPS spreads points better than the first m points
    def cover(ix):
        return torch.cdist(pts[0], pts[0, ix]).min(1).values.max()
    assert cover(idx[0]) < cover(torch.arange(32))
    with pytest.raises(ValueError):
        P.farthest_point_sample(pts, 201)


def test_normalize_and_augment():
    x = torch.randn(2, 50, 6) * 5 + 3
    n = P.normalize_unit_sphere(x)
    assert torch.allclose(n[..., :3].mean(1), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(n[..., :3].norm(dim=-1).amax(1), torch.ones(2))
    assert torch.equal(n[..., 3:], x[..., 3:])
    g = torch.Generator().manual_seed(0)
    s = P.random_scale(n, generator=g)
    ratio = s[..., :3].norm(dim=-1).amax(1)
    assert torch.all((ratio >= 0.8) & (ratio <= 1.25))
    sh = P.random_shift(n, generator=g)
    off = (sh - n)[..., :3]
    assert torch.allclose(off, off[:, :1].expand_as(off), atol=1e-6) and off.abs().max() <= 0.1
    d = P.random_point_dropout(n, max_ratio=0.875, generator=torch.Generator().manual_seed(1))
    changed = ~(d == n).all(-1)
    assert torch.all(d[changed] == n[:, :1].expand_as(n)[changed])  # replaced by the first point
    assert d.shape == n.shape


def test_images_to_points():
    img = np.zeros((2, 4, 4), np.float32)
    img[0, 0, 3] = 1.0  # top-right pixel only
    img[1, 2, 1], img[1, 3, 3] = 1.0, 3.0
    pts = P.images_to_points(img, 2000, seed=0)
    assert pts.shape == (2, 2000, 3) and np.all(pts[..., 2] == 0)
    assert np.all((pts[0, :, 0] >= 0.5) & (pts[0, :, 0] <= 1) & (pts[0, :, 1] >= 0.5) & (pts[0, :, 1] <= 1))
    frac = np.mean(pts[1, :, 0] > 0.5)  # pixel (3,3) has 3/4 of the mass
    assert abs(frac - 0.75) < 0.04
    np.testing.assert_array_equal(pts, P.images_to_points(img, 2000, seed=0))


def test_load_modelnet_txt(tmp_path, fakes):
    names = fakes.modelnet(tmp_path)
    x, y, cls = P.load_modelnet(tmp_path, 40, "train", n_points=16)
    assert cls == names and x.shape == (4, 3, 16) and y.tolist() == [0, 0, 1, 1]
    assert np.allclose(np.linalg.norm(x, axis=1).max(1), 1, atol=1e-5)
    xn, *_ = P.load_modelnet(tmp_path, 40, "test", n_points=16, sampling="fps", normals=True)
    assert xn.shape == (2, 6, 16)
    with pytest.raises(CorruptFileError, match="fewer than n_points"):
        P.load_modelnet(tmp_path, 40, "test", n_points=100)


def test_load_modelnet_off(tmp_path):
    for c in ("bed", "chair"):
        for split in ("train", "test"):
            (tmp_path / c / split).mkdir(parents=True)
            P.write_off(tmp_path / c / split / f"{c}_0001.off",
                        np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32),
                        np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]))
    assert P.modelnet_layout(tmp_path, 10) == "off"
    x, y, cls = P.load_modelnet(tmp_path, 10, "test", n_points=64)
    assert cls == ["bed", "chair"] and x.shape == (2, 3, 64) and y.tolist() == [0, 1]


# ------------------------------------------------------------------ robustness (issue 13)
@pytest.mark.parametrize("text, needle", [
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 100000000000000000000\n", "out of range"),  # 10**20: int64 overflow before
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 -1\n", "out of range"),
    ("OFF\n3 1 0\nnan 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "non-finite"),
    ("OFF\n3 1 0\n0 0 0\n1 inf 0\n0 1 0\n3 0 1 2\n", "non-finite"),
    ("OFF\n3 1 0\n0 0 0\n1 1e39 0\n0 1 0\n3 0 1 2\n", "non-finite"),  # beyond float32
    ("OFF\n3 1 0\n0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "vertex 0 has 2 coordinates"),
    ("OFF\n" + "9" * 5000 + " 1 0\n", "bad counts line"),
])
def test_off_rejects_bad_values(tmp_path, text, needle):
    p = tmp_path / "m.off"
    p.write_text(text)
    with pytest.raises(CorruptFileError, match=needle):
        P.read_off(p)


@pytest.mark.parametrize("text, needle", [
    ("0,0,0\nnan,1,2\n", "point 1 has a non-finite"),
    ("0,0,0\n1,-inf,2\n", "non-finite"),
    ("0,0,0,0,0,1\n1,2,3\n4,5,6,7,8,9\n", "line 2 has 3 columns"),
])
def test_modelnet_txt_rejects_bad_values(tmp_path, text, needle):
    p = tmp_path / "m.txt"
    p.write_text(text)
    with pytest.raises(CorruptFileError, match=needle):
        P.read_modelnet_txt(p)


def test_off_face_indices_hand_checked(tmp_path):
    p = tmp_path / "q.off"
    p.write_text("OFF\n4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n")
    v, f = P.read_off(p)
    assert f.tolist() == [[0, 1, 2], [0, 2, 3]] and v.dtype == np.float32 and v[2].tolist() == [1, 1, 0]
