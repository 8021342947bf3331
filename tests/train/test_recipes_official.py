"""Full-scale recipes carry the official set-ups (methods.md-level facts; deviations in docs/reproduction.md).

Each assertion pins one hyper-parameter that a recipe once got wrong or that the official code fixes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from spikeforge import fold
from spikeforge.fold import FoldError
from spikeforge.losses import build_objective
from spikeforge.models import create_model
from spikeforge.neurons import Neuron
from spikeforge.train.builders import build_optimizer
from spikeforge.train.config import RecipeError, bundled_recipes, load_recipe, resolve

FULL_SCALE = ["ternary-cifar10", "ternary-cifar100", "ternary-imagenet", "realspike-cifar100", "mpbn-cifar10",
              "mpbn-cifar10-dvs", "rmploss-cifar10", "softreset-mpr-cifar10", "joint-asnn-cifar100",
              "pointnet-modelnet40"]


def _cfg(name: str) -> dict:
    return resolve(load_recipe(name))


@pytest.mark.parametrize("name", FULL_SCALE)
def test_full_scale_recipe_names_its_source(name: str) -> None:
    text = Path(bundled_recipes()[name]).read_text()
    source = [line for line in text.splitlines() if line.startswith("# Source:")]
    assert source, f"{name}: no '# Source:' comment naming the official file or paper section"
    assert "arXiv:" in text or "official code" in source[0]
    assert "docs/reproduction.md" in text


def test_joint_asnn_recipe_decays_every_parameter_without_momentum() -> None:
    cfg = _cfg("joint-asnn-cifar100")
    assert cfg["optim"]["no_decay"] == [] and cfg["optim"]["momentum"] == 0.0
    assert (cfg["optim"]["lr"], cfg["optim"]["weight_decay"], cfg["batch_size"], cfg["epochs"], cfg["T"],
            cfg["seed"]) == (0.1, 5e-4, 1024, 300, 4, 1000)
    assert cfg["model"]["snn_bn"] == "per_step" and cfg["model"]["bn_weight_init"] == 1.0
    model = create_model("joint_asnn_resnet18", num_classes=4, in_channels=1, width=1 / 16,
                         bn_weight_init=cfg["model"]["bn_weight_init"], snn_bn=cfg["model"]["snn_bn"])
    opt = build_optimizer(cfg, model)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["weight_decay"] == 5e-4
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    bn = model.layer1[0].bn1
    assert {id(bn.bn_snn.weight), id(bn.bn_snn.bias), id(model.fc.bias)} <= decayed
    assert opt.param_groups[0]["momentum"] == 0.0


def test_no_decay_validation() -> None:
    cfg = load_recipe("quickstart")
    with pytest.raises(RecipeError, match="optim.no_decay must be a list"):
        resolve({**cfg, "optim": {**cfg["optim"], "no_decay": "norm"}})
    with pytest.raises(RecipeError, match="optim.no_decay must be a list"):
        resolve({**cfg, "optim": {**cfg["optim"], "no_decay": ["norms"]}})


def test_pointnet_recipe_is_the_official_objective_optimiser_and_test() -> None:
    cfg = _cfg("pointnet-modelnet40")
    obj = build_objective(cfg["objective"])
    assert obj.readout == "log_softmax_mean" and obj.config()["feature_transform_weight"] == 0.001
    assert cfg["eval"]["votes"] == 3 and cfg["eval"]["T_sweep"] == 4 and (cfg["T"], cfg["eval_T"]) == (1, 4)
    o = cfg["optim"]
    assert (o["name"], o["lr"], o["weight_decay"], o["betas"], o["no_decay"]) == \
        ("adam", 1e-3, 1e-4, [0.9, 0.999], [])
    s = cfg["schedule"]
    assert (s["name"], s["step_size"], s["gamma"], s["warmup_epochs"]) == ("step", 20, 0.7, 0.0)
    assert (cfg["batch_size"], cfg["epochs"]) == (48, 200)
    assert cfg["model"]["weight_init"] == "pytorch" and cfg["model"]["neuron"] == "pointnet"
    # the CPU-scale recipe uses the same readout and test
    small = _cfg("pointnet-points")
    assert build_objective(small["objective"]).readout == "log_softmax_mean" and small["eval"]["votes"] == 3


def test_rmp_recipes_start_at_the_lambda_of_the_group_code() -> None:
    # methods.md §4: lambda(e) = 0.05 (1 + cos(pi e / N)) -> lambda(0) = 0.1
    for name in ("rmploss-cifar10", "rmploss-fmnist"):
        obj = build_objective(_cfg(name)["objective"])
        for p in (0.0, 0.25, 0.5, 1.0):
            assert obj.weight_at(p) == pytest.approx(0.05 * (1 + math.cos(math.pi * p)))


def test_mpbn_recipes_leave_lambda_unconstrained_and_use_the_code_seed() -> None:
    for name in ("mpbn-cifar10", "mpbn-cifar10-dvs"):
        cfg = _cfg(name)
        assert cfg["model"]["mpbn_min_scale"] is None and cfg["seed"] == 3407
        model = create_model("convnet", num_classes=3, widths=(4,), neuron=cfg["model"]["neuron"],
                             mpbn=cfg["model"]["mpbn"], mpbn_min_scale=cfg["model"]["mpbn_min_scale"])
        neurons = [m for m in model.modules() if isinstance(m, Neuron)]
        assert neurons and all(n.mpbn.min_scale is None for n in neurons)
        assert all(n.config.surrogate == "dspike" and n.config.surrogate_param == 3.0 for n in neurons)
        with torch.no_grad():
            neurons[0].mpbn.weight.fill_(-0.5)
        assert torch.equal(neurons[0].mpbn.scale(), neurons[0].mpbn.weight)  # no floor: lambda stays negative
        with pytest.raises(FoldError, match="MPBN scale λ ≤ 0"):  # the fold keeps its clear error
            fold(model.eval())
    cfg = _cfg("mpbn-cifar10")
    assert (cfg["epochs"], cfg["batch_size"], cfg["optim"]["lr"], cfg["optim"]["no_decay"]) == \
        (400, 128, 0.1, ["norm", "bias", "neuron"])


def test_ternary_imagenet_runs_without_warm_up() -> None:
    cfg = _cfg("ternary-imagenet")
    assert cfg["schedule"]["warmup_epochs"] == 0 and cfg["seed"] == 1000
    assert (cfg["batch_size"], cfg["epochs"], cfg["T"], cfg["sync_bn"], cfg["amp"]) == (320, 320, 4, True, True)
    assert cfg["optim"]["no_decay"] == ["norm", "bias", "neuron"]


def test_inflor_recipe_is_the_re_loss_set_up() -> None:
    cfg = _cfg("softreset-mpr-cifar10")
    assert cfg["seed"] == 2022 and cfg["optim"]["no_decay"] == [] and cfg["model"]["zero_init_residual"] is False
    assert (cfg["optim"]["lr"], cfg["optim"]["momentum"], cfg["epochs"], cfg["batch_size"], cfg["T"]) == \
        (0.01, 0.9, 400, 128, 4)
    n = Neuron(cfg["model"]["neuron"], (2,))
    assert (n.config.decay, n.config.reset, n.config.soft_reset_amount, n.config.pre_fire, n.config.surrogate) == \
        (1.0, "soft", 1.0, "mpr", "ste")
