"""spikeforge neuroclip zeroshot / fewshot end to end on simulated events with a tiny random CLIP (no download)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from spikeforge.cli.main import main  # noqa: E402
from spikeforge.interop.clip import save_tiny_random_clip  # noqa: E402


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return save_tiny_random_clip(tmp_path_factory.mktemp("clip") / "tiny", image_size=16, patch_size=8)


def test_zeroshot_then_fewshot_from_the_cli_share_the_feature_cache(clip_dir, tmp_path, capsys):
    common = ["--clip", str(clip_dir), "--data", "nmnist-sim", "--limit", "100", "--T", "4", "--device", "cpu",
              "--set", f"cache_dir={tmp_path / 'cache'}", "--json"]
    assert main(["neuroclip", "zeroshot", *common, "--out", str(tmp_path / "zs"), "--set", "val_per_class=2"]) == 0
    zs = json.loads(capsys.readouterr().out)
    assert zs["protocol"] == "zeroshot" and zs["test_samples"] == 100 and zs["val_samples"] == 20
    assert zs["encoded_samples"] == 100 + 20 and len(zs["frame_weights"]) == 4
    assert set(zs["frame_weights"]) <= {0.25, 0.5, 0.75, 1.0} and 0 <= zs["test_acc"] <= 1
    assert zs["prompt"] == 'A black and white photo of the Arabic numeral number: "{}".'
    run = tmp_path / "zs"
    assert {"metrics.json", "report.md", "config.yaml", "splits.json"} <= {p.name for p in run.iterdir()}
    # same settings again: every feature comes from the cache
    assert main(["neuroclip", "zeroshot", *common, "--out", str(tmp_path / "zs2"), "--set", "val_per_class=2"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["encoded_samples"] == 0 and again["test_acc"] == zs["test_acc"]
    # few-shot (spiking adapter): the 2 validation samples per class are already cached; only the shots are new
    assert main(["neuroclip", "fewshot", *common, "--shots", "2", "--epochs", "2", "--out", str(tmp_path / "fs")]) == 0
    fs = json.loads(capsys.readouterr().out)
    assert fs["protocol"] == "fewshot" and fs["adapter"] == "spiking" and fs["train_samples"] == 20
    assert fs["encoded_samples"] <= 20 and 1 <= fs["best_epoch"] <= 2
    assert (tmp_path / "fs" / "adapter.safetensors").is_file()
    assert main(["neuroclip", "fewshot", *common, "--shots", "2", "--epochs", "1", "--adapter", "relu",
                 "--out", str(tmp_path / "fs-ann")]) == 0
    assert json.loads(capsys.readouterr().out)["adapter"] == "relu"


def test_missing_clip_and_bad_settings_are_clear_errors(clip_dir, tmp_path, capsys):
    assert main(["neuroclip", "zeroshot", "--clip", str(tmp_path / "none"), "--data", "nmnist-sim"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "huggingface-cli download" in err
    assert main(["neuroclip", "fewshot", "--clip", str(tmp_path), "--shots", "0"]) == 2
    assert "shots must be" in capsys.readouterr().err
    assert main(["neuroclip", "zeroshot", "--clip", str(clip_dir), "--data", "digits",
                 "--set", f"cache_dir={tmp_path}"]) == 2
    assert "needs an event dataset; 'digits' is 'static'" in capsys.readouterr().err
    assert main(["neuroclip", "recipes"]) == 0
    assert "neuroclip-nmnist-fewshot" in capsys.readouterr().out
