"""Recipe parsing, --set overrides (YAML-typed, dotted) and key validation."""

from __future__ import annotations

import pytest

from spikeforge.train.config import (
    DEFAULTS,
    RecipeError,
    apply_overrides,
    bundled_recipes,
    load_recipe,
    parse_override,
    resolve,
    valid_keys,
)


def test_parse_override_types_values_as_yaml():
    assert parse_override("optim.lr=0.05") == (["optim", "lr"], 0.05)
    assert parse_override("epochs=3") == (["epochs"], 3)
    assert parse_override("data.limit=200") == (["data", "limit"], 200)
    assert parse_override("device=cpu") == (["device"], "cpu")
    assert parse_override("amp=true") == (["amp"], True)
    assert parse_override("grad_clip=null") == (["grad_clip"], None)
    assert parse_override("optim.weight_decay=1e-4") == (["optim", "weight_decay"], 1e-4)  # YAML 1.1 string
    assert parse_override("model.widths=[8, 16]") == (["model", "widths"], [8, 16])


def test_parse_override_rejects_malformed():
    with pytest.raises(RecipeError, match="KEY=VALUE"):
        parse_override("epochs")
    with pytest.raises(RecipeError, match="empty key"):
        parse_override("optim..lr=1")


def test_apply_overrides_sets_nested_values_without_touching_input():
    recipe = {"model": {"name": "convnet"}, "optim": {"lr": 0.1}}
    out = apply_overrides(recipe, ["optim.lr=0.05", "epochs=3", "data.limit=200", "model.widths=[4, 8]"])
    assert out["optim"]["lr"] == 0.05 and out["epochs"] == 3 and out["data"]["limit"] == 200
    assert out["model"]["widths"] == [4, 8]
    assert recipe["optim"]["lr"] == 0.1  # input unchanged


def test_unknown_key_is_rejected_with_the_valid_keys():
    with pytest.raises(RecipeError) as exc:
        apply_overrides({"model": {"name": "convnet"}}, ["optim.lrr=0.1"])
    msg = str(exc.value)
    assert "optim.lrr" in msg and "optim.lr" in msg and "data.limit" in msg and "epochs" in msg
    with pytest.raises(RecipeError, match="unknown key 'epoch'"):
        apply_overrides({"model": {"name": "convnet"}}, ["epoch=3"])


def test_model_keys_are_checked_against_the_factory_and_neuron_options():
    ok = apply_overrides({"model": {"name": "convnet"}}, ["model.widths=[4]", "model.spike=ternary"])
    assert ok["model"]["spike"] == "ternary"
    with pytest.raises(RecipeError, match="model 'convnet'") as exc:
        apply_overrides({"model": {"name": "convnet"}}, ["model.depth=3"])
    assert "model.widths" in str(exc.value)
    assert "model.widths" in valid_keys({"model": {"name": "convnet"}})


def test_free_sections_accept_any_key():
    out = apply_overrides({"model": {"name": "convnet"}}, ["objective.weight=0.1", "data.options.T=5",
                                                           "data.augment.hflip=0.5"])
    assert out["objective"]["weight"] == 0.1 and out["data"]["options"]["T"] == 5


def test_resolve_fills_defaults_and_checks_values():
    cfg = resolve({"model": {"name": "convnet"}, "epochs": 2})
    assert cfg["epochs"] == 2 and cfg["optim"]["lr"] == DEFAULTS["optim"]["lr"] and cfg["T"] == DEFAULTS["T"]
    with pytest.raises(RecipeError, match="epochs must be an integer >= 1"):
        resolve({"model": {"name": "convnet"}, "epochs": 0})
    with pytest.raises(RecipeError, match="optim.name"):
        resolve({"model": {"name": "convnet"}, "optim": {"name": "lion"}})
    with pytest.raises(RecipeError, match="unknown key 'optim.moment'"):
        resolve({"model": {"name": "convnet"}, "optim": {"moment": 0.9}})


def test_load_recipe_by_bundled_name_and_file(tmp_path):
    q = load_recipe("quickstart")
    assert q["model"]["name"] == "convnet" and q["data"]["name"] == "digits"
    f = tmp_path / "r.yaml"
    f.write_text("model: {name: mlp}\nepochs: 2\noptim: {weight_decay: 5e-4}\n")
    r = load_recipe(str(f))
    assert r["optim"]["weight_decay"] == 5e-4  # '5e-4' (YAML 1.1 string) read as a number
    with pytest.raises(RecipeError, match="bundled recipes: .*quickstart"):
        load_recipe("no-such-recipe")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: mlp}\ntrainer: {x: 1}\n")
    with pytest.raises(RecipeError, match="unknown key 'trainer'"):
        load_recipe(str(bad))


REQUIRED = {"quickstart", "ternary-fmnist", "realspike-fmnist", "mpbn-fmnist", "rmploss-fmnist",
            "softreset-mpr-fmnist", "joint-asnn-fmnist", "pointnet-points", "dvs-events"}


def test_bundled_recipes_include_the_cpu_scale_set_and_all_resolve():
    names = set(bundled_recipes())
    assert REQUIRED <= names
    for name in names:
        cfg = resolve(apply_overrides(load_recipe(name), ["epochs=1", "data.limit=8", "device=cpu"]))
        assert cfg["epochs"] == 1 and cfg["data"]["limit"] == 8 and cfg["device"] == "cpu"


def test_quickstart_is_ternary_with_mpbn():
    """The embedded default demonstrates ternary spikes + MPBN (issue: quickstart recipe)."""
    from spikeforge.neurons import neuron_config

    cfg = neuron_config(load_recipe("quickstart")["model"]["neuron"])
    assert cfg.spike == "ternary" and cfg.pre_fire == "mpbn" and cfg.amplitude == "layer"
