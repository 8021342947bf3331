"""Every bundled recipe parses and runs one tiny training step where its data is available offline."""

from __future__ import annotations

import pytest

from spikeforge import data
from spikeforge.train import train
from spikeforge.train.config import apply_overrides, bundled_recipes, load_recipe, resolve

TINY = ["epochs=1", "data.limit=8", "batch_size=8", "eval_batch_size=8", "device=cpu", "log.tensorboard=false",
        "log.progress=never", "fold.verify_samples=8", "analysis.samples=8"]


def _available(cfg) -> str | None:
    d = cfg["data"]
    try:
        data.get(d["name"], "train", root=d["root"], limit=1, **dict(d["options"] or {}))
    except data.DatasetNotFoundError as exc:
        return str(exc).splitlines()[0]
    except ValueError as exc:  # e.g. imagefolder: "needs root=<folder>"
        if "needs root" not in str(exc):
            raise
        return str(exc)
    return None


@pytest.mark.parametrize("name", list(bundled_recipes()))
def test_recipe_runs_one_tiny_step(name, tmp_path):
    recipe = load_recipe(name)
    overrides = list(TINY)
    missing = _available(resolve(recipe))
    if missing is not None:
        if name.endswith("-fmnist") and recipe["data"]["name"] == "fashion-mnist":
            # CPU-scale recipes: Fashion-MNIST comes from a Debian package; without it, run the same model,
            # objective and optimiser on the embedded digits
            overrides.append("data.name=digits")
        else:
            pytest.skip(f"recipe {name!r} needs user-provided files: {missing}")
    cfg = resolve(apply_overrides(recipe, overrides))
    m = train(cfg, tmp_path / name, verbose=False)
    assert m["epochs"] == 1 and 0.0 <= m["test_acc"] <= 1.0
    assert "fold_error" not in m, m.get("fold_error")
    assert m["fold_max_dev"] is not None and m["fold_max_dev"] <= 1e-4
    if cfg["eval"]["T_sweep"]:
        assert len(m["T_sweep"]) == cfg["eval"]["T_sweep"]
