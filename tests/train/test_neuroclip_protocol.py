"""NeuroCLIP protocol: CLIP inputs from event frames, the feature cache, splits and K-shot sampler, the frame-weight
search, the learning-rate schedule and a tiny few-shot run (tiny random CLIP, no download)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from spikeforge.interop.clip import load_clip, save_tiny_random_clip  # noqa: E402
from spikeforge.models.neuroclip import zero_shot_logits  # noqa: E402
from spikeforge.train.neuroclip import (  # noqa: E402
    FeatureStore,
    NeuroClipConfig,
    clip_images,
    kshot_indices,
    load_neuroclip_config,
    lr_for_epoch,
    run_fewshot,
    search_frame_weights,
    split_train_val,
)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return load_clip(save_tiny_random_clip(tmp_path_factory.mktemp("clip") / "tiny", image_size=16, patch_size=8))


class CountingClip:
    """Forwards to a real encoder and counts the images it encodes."""

    def __init__(self, clip):
        self.clip, self.images = clip, 0
        self.image_size, self.feature_dim = clip.image_size, clip.feature_dim
        self.logit_scale, self.fingerprint = clip.logit_scale, clip.fingerprint

    def encode_images(self, pixels):
        self.images += pixels.shape[0]
        return self.clip.encode_images(pixels)

    def encode_text(self, prompts):
        return self.clip.encode_text(prompts)


def test_clip_images_render_hand_drawn_frames():
    f = torch.zeros(1, 3, 2, 2, 2)  # N=1, T=3 frames of 2x2
    f[0, 0, 0, 0, 0] = 1  # frame 0: channel 0 only at (0,0) -> 255
    f[0, 1, 1, 0, 1] = 2  # frame 1: channel 1 only at (0,1) -> 0
    f[0, 2, 0, 1, 1] = f[0, 2, 1, 1, 1] = 1  # frame 2: both at (1,1) -> channel 1 wins -> 0
    img = clip_images(f, image_size=2)
    assert img.shape == (3, 3, 2, 2) and torch.equal(img[:, 0], img[:, 2])  # 3 identical channels
    bg = 127 / 255 - 0.5
    torch.testing.assert_close(img[0, 0], torch.tensor([[0.5, bg], [bg, bg]]))
    torch.testing.assert_close(img[1, 0], torch.tensor([[bg, -0.5], [bg, bg]]))
    torch.testing.assert_close(img[2, 0], torch.tensor([[bg, bg], [bg, -0.5]]))
    # noise threshold: a count of 1 no longer marks a pixel; 2 does
    torch.testing.assert_close(clip_images(f, 2, count_threshold=1)[1, 0], torch.tensor([[bg, -0.5], [bg, bg]]))
    torch.testing.assert_close(clip_images(f, 2, count_threshold=1)[0, 0], torch.full((2, 2), bg))
    # bilinear resize to the CLIP size: a uniform image stays uniform, a 2x2 image becomes its bilinear upsampling
    big = clip_images(f, image_size=4)
    assert big.shape == (3, 3, 4, 4)
    assert big[0, 0, 0, 0] == pytest.approx(0.5) and big[0, 0, 3, 3] == pytest.approx(bg)
    assert big[0, 0, 0, 1] == pytest.approx(0.75 * 0.5 + 0.25 * bg)  # align_corners=False weights 3/4, 1/4
    with pytest.raises(ValueError, match=r"\[N, T, 2, H, W\]"):
        clip_images(torch.zeros(3, 2, 4, 4), 4)


def test_kshot_sampler_and_validation_split():
    y = np.repeat(np.arange(5), 12)
    np.random.default_rng(0).shuffle(y)
    pool, val = split_train_val(y, 3, seed=0)
    shots = kshot_indices(y, 4, seed=0, pool=pool)
    assert np.bincount(y[val]).tolist() == [3] * 5 and np.bincount(y[shots]).tolist() == [4] * 5
    assert not set(val) & set(shots) and set(pool) | set(val) == set(range(len(y)))
    assert np.array_equal(shots, kshot_indices(y, 4, seed=0, pool=pool))  # seeded
    assert not np.array_equal(shots, kshot_indices(y, 4, seed=1, pool=pool))
    # the validation split does not depend on K: the same samples are held out for every shot count
    for k in (1, 2, 8):
        s = kshot_indices(y, k, seed=0, pool=pool)
        assert np.bincount(y[s]).tolist() == [k] * 5 and not set(s) & set(val)
    with pytest.raises(ValueError, match="class .* has only 9 candidate samples for 10 shots"):
        kshot_indices(y, 10, seed=0, pool=pool)


def test_frame_weight_search_matches_the_nested_loop_reference():
    g = torch.Generator().manual_seed(3)
    T, N, C, D = 3, 30, 4, 8
    f, e = torch.randn(T, N, D, generator=g), torch.randn(C, D, generator=g)
    y = torch.randint(0, C, (N,), generator=g)
    grid = [0.25, 0.5, 0.75, 1.0]
    best, best_w = -1.0, None
    for w in itertools.product(grid, repeat=T):  # nested loops, frame 1 outermost, strict improvement
        acc = float((zero_shot_logits(f, e, 1.0, torch.tensor(w)).argmax(1) == y).float().mean())
        if acc > best:
            best, best_w = acc, w
    w, acc = search_frame_weights(f, y, e, grid, chunk_elems=7 * N * C)  # several chunks
    assert tuple(w.tolist()) == best_w and acc == pytest.approx(best)
    # a frame that carries the label and one that contradicts it: the search down-weights the bad frame
    e2 = torch.eye(2, 4)
    good = e2[y % 2] + 0.1 * torch.randn(N, 4, generator=g)
    bad = e2[1 - y % 2] * 0.5 + 0.1 * torch.randn(N, 4, generator=g)
    w2, acc2 = search_frame_weights(torch.stack([bad, good]), y % 2, e2, grid)
    assert acc2 == 1.0 and w2[0] < w2[1]


def test_lr_schedule_is_constant_warmup_then_cosine():
    cfg = NeuroClipConfig(protocol="fewshot", epochs=250)
    assert lr_for_epoch(cfg, 0) == 1e-5
    assert lr_for_epoch(cfg, 1) == pytest.approx(0.01 * (1 + math.cos(math.pi / 250)) / 2)
    assert lr_for_epoch(cfg, 125) == pytest.approx(0.005)


def test_config_recipes_and_overrides():
    cfg = load_neuroclip_config("neuroclip-nmnist-fewshot", ["shots=4", "data_options.denoise_us=5000"])
    assert (cfg.protocol, cfg.data, cfg.shots, cfg.lr, cfg.warmup_lr, cfg.epochs) == \
        ("fewshot", "nmnist", 4, 0.01, 1e-5, 250)
    assert cfg.data_options == {"denoise_us": 5000} and cfg.val_size() == 4
    assert load_neuroclip_config("neuroclip-cifar10-dvs-zeroshot").count_threshold == 1
    with pytest.raises(ValueError, match="unknown setting"):
        load_neuroclip_config(None, ["shotz=4"])
    with pytest.raises(ValueError, match="shots must be"):
        load_neuroclip_config(None, ["shots=0"])


def test_feature_cache_is_hit_on_the_second_run(tiny_clip, tmp_path):
    cfg = NeuroClipConfig(data="nmnist-sim", limit=30, T=3, cache_dir=str(tmp_path / "cache"), encode_batch_size=7)
    c1 = CountingClip(tiny_clip)
    s1 = FeatureStore(cfg, c1, "test")
    first = s1.features(np.array([4, 1, 9]))
    assert c1.images == 3 * 3 and first.shape == (3, 3, 16)
    all_feats = s1.features(np.arange(30))  # only the 27 new samples are encoded
    assert c1.images == 30 * 3 and torch.equal(all_feats[[4, 1, 9]], first)
    # a second store (a new run) reads everything from disk: no encoder call, identical features
    c2 = CountingClip(tiny_clip)
    s2 = FeatureStore(cfg, c2, "test")
    torch.testing.assert_close(s2.features(np.arange(30)), all_feats)
    assert c2.images == 0 and s2._data is None  # not even the events were loaded
    # the features are those of the rendered frames
    ref = tiny_clip.encode_images(clip_images(s1._split().x[[1]], 16)).reshape(1, 3, 16)
    torch.testing.assert_close(first[1:2], ref, atol=1e-5, rtol=1e-5)
    # another rendering setting is another cache entry
    c3 = CountingClip(tiny_clip)
    FeatureStore(NeuroClipConfig(**{**cfg.to_dict(), "count_threshold": 1.0}), c3, "test").features(np.arange(2))
    assert c3.images == 2 * 3


def test_fewshot_run_selects_on_validation_and_tests_once(tiny_clip, tmp_path, monkeypatch):
    cfg = NeuroClipConfig(protocol="fewshot", data="nmnist-sim", limit=80, T=3, shots=2, epochs=3, batch_size=8,
                          cache_dir=str(tmp_path / "cache"), device="cpu")
    import spikeforge.train.neuroclip as nc

    evaluated = []
    real_predict = nc._predict

    def spy(model, f, bs, device):
        evaluated.append(f.shape[1])
        return real_predict(model, f, bs, device)

    monkeypatch.setattr(nc, "_predict", spy)
    m = run_fewshot(cfg, tiny_clip, tmp_path / "run")
    # 3 validation passes (one per epoch, 2 per class = min(K, 4)) and exactly one pass over the 80 test samples
    assert evaluated == [20, 20, 20, 80]
    assert m["train_samples"] == 20 and m["val_samples"] == 20 and m["test_samples"] == 80
    assert 1 <= m["best_epoch"] <= 3 and 0 <= m["test_acc"] <= 1
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert splits["split"] == "train" and not set(splits["shots"]) & set(splits["val"])
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert rows[0] == "epoch,lr,train_loss,val_acc" and len(rows) == 4
    assert "evaluated once" in (tmp_path / "run" / "report.md").read_text()
