"""The transformers CLIP backend, offline only, with a tiny randomly initialised CLIP written to tmp_path."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")

from spikeforge.interop.clip import ClipEncoder, ClipNotFoundError, load_clip, save_tiny_random_clip  # noqa: E402


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    return save_tiny_random_clip(tmp_path_factory.mktemp("clip") / "tiny", image_size=32, projection_dim=16)


def test_tiny_clip_loads_offline_and_encodes(tiny_clip_dir):
    clip = load_clip(tiny_clip_dir)
    assert isinstance(clip, ClipEncoder)
    assert (clip.image_size, clip.feature_dim) == (32, 16) and clip.logit_scale == pytest.approx(1 / 0.07, rel=1e-4)
    text = clip.encode_text(['A black and white photo of the Arabic numeral number: "3".', "a 4."])
    assert text.shape == (2, 16) and text.dtype == torch.float32 and not torch.equal(text[0], text[1])
    img = clip.encode_images(torch.rand(5, 3, 32, 32) - 0.5)
    assert img.shape == (5, 16)
    # batch independence: encoding one image alone gives the same feature
    torch.testing.assert_close(clip.encode_images(torch.zeros(1, 3, 32, 32)),
                               clip.encode_images(torch.zeros(3, 3, 32, 32))[:1], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"\[N, 3, 32, 32\]"):
        clip.encode_images(torch.zeros(1, 3, 24, 24))


def test_a_tokenizer_callable_replaces_the_stored_one(tiny_clip_dir):
    calls = []

    def tok(prompts):
        calls.append(list(prompts))
        ids = torch.tensor([[0, 5, 7, 1]] * len(prompts))
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    clip = load_clip(tiny_clip_dir, tokenizer=tok)
    out = clip.encode_text(["x", "y"])
    assert calls == [["x", "y"]] and out.shape == (2, 16) and torch.equal(out[0], out[1])


def test_missing_models_give_a_clear_error_and_never_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty Hugging Face cache
    with pytest.raises(ClipNotFoundError, match="huggingface-cli download openai/clip-vit-base-patch32"):
        load_clip(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClipNotFoundError, match="no config.json"):
        load_clip(tmp_path / "empty")
    with pytest.raises(ClipNotFoundError, match="offline Hugging Face cache"):
        load_clip("openai/clip-vit-base-patch32")


def test_fingerprint_changes_when_the_weights_change(tmp_path):
    a = save_tiny_random_clip(tmp_path / "a", seed=0)
    fp0 = load_clip(a).fingerprint
    assert load_clip(a).fingerprint == fp0
    save_tiny_random_clip(tmp_path / "a", seed=1)
    import os
    w = next(p for p in a.iterdir() if p.suffix == ".safetensors")
    os.utime(w, ns=(w.stat().st_atime_ns, w.stat().st_mtime_ns + 10**9))
    assert load_clip(a).fingerprint != fp0
