"""The study's plan: every run is a valid recipe, the paired design holds, bad input is named."""

from __future__ import annotations

import pytest

from spikeforge.study.plan import PARTS, plan
from spikeforge.train.config import resolve


def test_every_planned_run_is_a_valid_recipe_full_and_quick():
    for quick in (False, True):
        runs = plan(seeds=1, quick=quick)
        assert len({r.run_id for r in runs}) == len(runs)
        for r in runs:
            cfg = resolve(r.recipe)
            assert cfg["T"] == r.T and cfg["seed"] == r.seed


def test_the_static_part_pairs_every_method_with_the_baseline_at_t1_and_t2():
    runs = plan(["static"], seeds=3)
    by = {(r.method, r.T, r.seed): r for r in runs}
    for m in PARTS["static"].methods:
        for seed in range(3):
            for T in m.Ts or (1, 2):
                assert (m.name, T, seed) in by
    # one network for every static method except Joint A-SNN's dual model; same data, optimiser and epochs
    base = by[("binary", 1, 0)].recipe
    for (name, _T, _seed), r in by.items():
        assert r.recipe["data"] == base["data"] and r.recipe["optim"] == base["optim"]
        assert r.recipe["epochs"] == base["epochs"]
        if name != "joint-asnn":
            assert r.recipe["model"]["name"] == "cifar_resnet"
            assert r.recipe["model"]["blocks"] == [1, 1, 1, 1]
    assert by[("ann", 1, 0)].recipe["model"]["ann"] is True
    assert ("ann", 2, 0) not in by  # the ANN has no time axis
    joint = by[("joint-asnn", 2, 1)].recipe["model"]
    assert joint["name"] == "joint_asnn_resnet18" and joint["blocks"] == [1, 1, 1, 1]
    assert joint["width"] == base["model"]["width"]


def test_quick_uses_embedded_data_only():
    for r in plan(quick=True, seeds=1):
        assert r.recipe["data"]["name"] in ("digits", "nmnist-sim", "digits-points")
        assert r.run_id.endswith("-quick")


def test_bad_parts_seeds_and_methods_are_named():
    with pytest.raises(ValueError, match="unknown study part"):
        plan(["statik"])
    with pytest.raises(ValueError, match="seeds must be an integer >= 1"):
        plan(seeds=0)
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['tenary'\]"):
        plan(["static"], methods=["tenary"])
