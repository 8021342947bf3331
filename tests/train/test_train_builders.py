"""Learning-rate schedules against closed forms, weight-decay groups, input encoding."""

from __future__ import annotations

import math

import pytest
import torch

from spikeforge.models import create_model
from spikeforge.train.builders import build_optimizer, encode_input, lr_at, param_groups
from spikeforge.train.config import resolve


def _cfg(**schedule):
    return resolve({"model": {"name": "mlp"}, "epochs": 10, "optim": {"lr": 0.1}, "schedule": schedule})


def test_cosine_schedule_closed_form():
    cfg = _cfg(name="cosine", min_lr=0.0)
    spe = 5  # steps per epoch, 50 steps in total
    assert lr_at(cfg, 0, spe) == pytest.approx(0.1)
    assert lr_at(cfg, 25, spe) == pytest.approx(0.05)  # half-way: (1 + cos(pi/2)) / 2
    assert lr_at(cfg, 10, spe) == pytest.approx(0.05 * (1 + math.cos(math.pi * 0.2)))


def test_warmup_is_linear_then_cosine():
    cfg = _cfg(name="cosine", warmup_epochs=2, warmup_start_factor=0.0)
    spe = 5
    assert lr_at(cfg, 0, spe) == pytest.approx(0.0)
    assert lr_at(cfg, 5, spe) == pytest.approx(0.05)  # half of the 10 warm-up steps
    assert lr_at(cfg, 10, spe) == pytest.approx(0.1)  # cosine starts at the peak
    assert lr_at(cfg, 30, spe) == pytest.approx(0.05)  # half of the 40 cosine steps


def test_step_schedule_decays_per_step_size_epochs():
    cfg = _cfg(name="step", step_size=3, gamma=0.5)
    spe = 4
    assert lr_at(cfg, 11, spe) == pytest.approx(0.1)  # epoch 2
    assert lr_at(cfg, 12, spe) == pytest.approx(0.05)  # epoch 3
    assert lr_at(cfg, 24, spe) == pytest.approx(0.025)  # epoch 6


def test_onecycle_rises_to_lr_then_falls_to_the_floor():
    cfg = _cfg(name="onecycle", pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
    spe = 10  # 100 steps, 30 rising
    assert lr_at(cfg, 0, spe) == pytest.approx(0.1 / 25)
    assert lr_at(cfg, 30, spe) == pytest.approx(0.1)
    assert lr_at(cfg, 99, spe) == pytest.approx(0.1 / 25 / 1e4)
    assert lr_at(cfg, 15, spe) == pytest.approx(0.004 + (0.1 - 0.004) * 0.5)


def test_no_weight_decay_on_norm_bias_and_neuron_parameters():
    model = create_model("convnet", widths=(4,), neuron="ternary", pre_fire="mpbn", spike="binary")
    groups = param_groups(model, 1e-4, ["norm", "bias", "neuron"])
    decayed = {id(p) for p in groups[0]["params"]}
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[i] for i in decayed} == {"0.weight", "5.weight"}  # conv and linear weights only
    assert groups[1]["weight_decay"] == 0.0
    plain = {names[id(p)] for p in groups[1]["params"]}
    assert any("amplitude" in n for n in plain) and any("mpbn" in n for n in plain)
    assert "1.weight" in plain and "5.bias" in plain  # BN affine, linear bias
    # with no exclusions, everything is decayed
    assert len(param_groups(model, 1e-4, [])) == 1


@pytest.mark.parametrize("name,cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                      ("adamw", torch.optim.AdamW)])
def test_build_optimizer(name, cls):
    cfg = resolve({"model": {"name": "mlp"}, "optim": {"name": name, "lr": 0.01, "momentum": 0.5}})
    opt = build_optimizer(cfg, create_model("mlp", hidden=(4,)))
    assert isinstance(opt, cls) and opt.param_groups[0]["lr"] == 0.01
    if name == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.5


def test_encode_input_layouts():
    x = torch.arange(6.0).reshape(2, 3)
    seq = encode_input(x, "static", 3)
    assert seq.shape == (3, 2, 3) and torch.equal(seq[2], x)
    ev = torch.arange(24.0).reshape(2, 3, 4)  # [B, T, F]
    out = encode_input(ev, "events", 99)  # events keep their own T
    assert out.shape == (3, 2, 4) and torch.equal(out[1, 0], ev[0, 1])
    with pytest.raises(ValueError, match="unknown input kind"):
        encode_input(x, "audio", 2)


def test_train_limit_cuts_only_the_training_split():
    from spikeforge.train.builders import load_data
    from spikeforge.train.config import RecipeError

    cfg = resolve({"model": {"name": "mlp"}, "data": {"name": "digits", "train_limit": 100, "limit": 50}})
    assert len(load_data(cfg, "train")) == 100
    assert len(load_data(cfg, "test")) == 50
    cfg = resolve({"model": {"name": "mlp"}, "data": {"name": "digits", "limit": 40}})
    assert len(load_data(cfg, "train")) == 40 and len(load_data(cfg, "test")) == 40
    with pytest.raises(RecipeError, match="data.train_limit must be null or an integer >= 1"):
        resolve({"model": {"name": "mlp"}, "data": {"name": "digits", "train_limit": 0}})
