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
    with pytest.raises(ValueError, match="autoaugment policy must be one of cifar10"):
        T.build({"autoaugment": "cifar100"})
    with pytest.raises(ValueError, match="'roll'"):
        T.build({"roll": "5"})
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


def test_random_roll_is_torch_roll_per_sample_on_event_frames():
    x = torch.arange(3 * 2 * 2 * 6 * 7, dtype=torch.float32).reshape(3, 2, 2, 6, 7)  # [B, T, 2, H, W]
    out = T.build({"roll": 5}, generator=_gen(4))(x)
    g = _gen(4)
    dy = torch.randint(0, 11, (3,), generator=g) - 5
    dx = torch.randint(0, 11, (3,), generator=g) - 5
    for b in range(3):
        assert torch.equal(out[b], torch.roll(x[b], (int(dy[b]), int(dx[b])), (-2, -1)))
    roll = T.RandomRoll(5, generator=_gen(0))
    delta = torch.zeros(64, 1, 16, 16)
    delta[:, :, 8, 8] = 1
    seen: set[int] = set()
    for _ in range(4):
        pos = roll(delta).flatten(1).argmax(1)
        seen |= set((pos // 16 - 8).tolist()) | set((pos % 16 - 8).tolist())
    assert seen == set(range(-5, 6))  # every shift in [-5, 5], both ends included
    assert torch.equal(T.RandomRoll(0, generator=_gen())(x), x)


def test_autoaugment_cifar10_keeps_shape_dtype_range_and_replays_under_a_seed():
    pytest.importorskip("kornia")
    x = torch.rand(24, 3, 16, 16)
    state = torch.get_rng_state()
    a = T.AutoAugment("cifar10", generator=_gen(1))(x)
    assert torch.equal(torch.get_rng_state(), state)  # the global stream is left untouched
    assert a.shape == x.shape and a.dtype == x.dtype and 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert torch.equal(T.AutoAugment("cifar10", generator=_gen(1))(x), a)
    assert not torch.equal(T.AutoAugment("cifar10", generator=_gen(2))(x), a)
    changed = (a - x).abs().flatten(1).amax(1) > 1e-6
    assert 0 < int(changed.sum()) <= 24  # some sub-policies fire on some samples
    # normalised input: augmented in [0, 1] then normalised again with the same statistics
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    b = T.build({"autoaugment": "cifar10"}, generator=_gen(1), mean=mean, std=std)((x - m) / s)
    assert torch.allclose(b * s + m, a, atol=1e-5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        T.AutoAugment("cifar10", generator=_gen())(x * 4 - 2)
    with pytest.raises(ValueError, match="RGB"):
        T.AutoAugment("cifar10")(torch.rand(2, 1, 8, 8))


def test_autoaugment_draws_one_sub_policy_per_sample():
    pytest.importorskip("kornia")
    aa = T.AutoAugment("cifar10", generator=_gen(3))
    calls: list[int] = []

    def recording(k, sub):
        def run(t):
            calls.append(k)
            return sub(t)
        return run

    aa.subpolicies = [recording(k, sub) for k, sub in enumerate(aa.subpolicies)]
    aa(torch.rand(64, 3, 8, 8))
    assert len(set(calls)) == len(calls) > 10  # each sub-policy runs once, on its own samples
