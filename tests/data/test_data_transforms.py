from __future__ import annotations

import pytest
import torch

from spikeforge.data import transforms as T


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_random_crop_is_a_padded_shift():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8) + 1
    out = T.RandomCrop(padding=2, generator=_gen())(x)
    assert out.shape == x.shape
    pad = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for b in range(2):
        hits = [(i, j) for i in range(5) for j in range(5) if torch.equal(pad[b, :, i:i + 8, j:j + 8], out[b])]
        assert len(hits) == 1


def test_random_crop_same_seed_same_result_and_5d():
    base = torch.rand(4, 1, 2, 10, 10) + 1
    x = torch.cat([base, base + 100], dim=1)  # [B, T=2, C, H, W]
    a = T.RandomCrop(padding=3, generator=_gen(1))(x)
    b = T.RandomCrop(padding=3, generator=_gen(1))(x)
    assert torch.equal(a, b) and a.shape == x.shape
    # all time steps of a sample share one offset: padding is at the same places
    assert torch.equal(a[:, 0] == 0, a[:, 1] == 0)
    m = a[:, 0] != 0
    assert torch.allclose((a[:, 1] - a[:, 0])[m], torch.full_like(a[:, 0][m], 100.0))


def test_random_crop_output_size():
    out = T.RandomCrop(padding=0, size=(5, 6), generator=_gen())(torch.randn(3, 1, 8, 8))
    assert out.shape == (3, 1, 5, 6)


def test_hflip_probabilities():
    x = torch.randn(5, 2, 4, 6)
    assert torch.equal(T.HFlip(p=1.0)(x), x.flip(-1))
    assert torch.equal(T.HFlip(p=0.0)(x), x)
    y = T.HFlip(p=0.5, generator=_gen(3))(x)
    for b in range(5):
        assert torch.equal(y[b], x[b]) or torch.equal(y[b], x[b].flip(-1))


def test_cutout_hole_area():
    x = torch.ones(64, 1, 32, 32)
    out = T.Cutout(n_holes=1, length=8, generator=_gen())(x)
    zeros = (out == 0).flatten(1).sum(1)
    assert zeros.max() == 64 and zeros.min() >= 16  # clipped at the border: at least 4x4
    assert torch.equal(out[out != 0], torch.ones_like(out[out != 0]))


def test_build_recipe_and_errors():
    f = T.build({"random_crop": {"padding": 4}, "hflip": True, "cutout": {"length": 16}}, generator=_gen())
    assert len(f) == 3
    x = torch.randn(8, 3, 32, 32)
    assert f(x).shape == x.shape
    assert len(T.build({"hflip": False, "cutout": None})) == 0
    assert T.build({"hflip": 0.3}).transforms[0].p == 0.3
    with pytest.raises(ValueError, match="valid keys: random_crop, hflip, cutout"):
        T.build({"rotate": True})
    with pytest.raises(ValueError, match="AutoAugment"):
        T.build({"autoaugment": {"policy": "cifar10"}})
    with pytest.raises(ValueError, match="cutout"):
        T.build({"cutout": {"size": 3}})
    with pytest.raises(ValueError, match="expected true/false"):
        T.build({"random_crop": "yes"})
def test_point_augmentations_on_channel_first_clouds():
    from spikeforge.data.transforms import PointDropout, PointScale, PointShift, build

    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, 64)
    y = PointScale(low=0.8, high=1.25, generator=g)(x)
    ratio = y / x
    assert torch.allclose(ratio, ratio[:, :1, :1].expand_as(ratio), atol=1e-5)  # one factor per cloud
    assert bool(((ratio[:, 0, 0] >= 0.8) & (ratio[:, 0, 0] <= 1.25)).all())
    z = PointShift(shift=0.1, generator=g)(x)
    off = z - x
    assert torch.allclose(off, off[:, :, :1].expand_as(off), atol=1e-6) and float(off.abs().max()) <= 0.1
    d = PointDropout(max_ratio=0.875, generator=g)(x)
    assert d.shape == x.shape
    kept = (d == x).all(1)
    replaced = (d == x[:, :, :1]).all(1)
    assert bool((kept | replaced).all())
    assert len(build({"point_scale": True, "point_shift": True, "point_dropout": True})) == 3
    with pytest.raises(ValueError, match=r"\[B, C, N\]"):
        PointScale()(torch.randn(2, 3, 4, 4))
