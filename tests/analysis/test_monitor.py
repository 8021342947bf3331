"""Monitor: hand-computed firing statistics, provenance of spikes, no persistent state, removable hooks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeforge import create_model, layers
from spikeforge.analysis import Monitor, Reservoir
from spikeforge.neurons import Neuron


def _all_hooks_empty(model: nn.Module) -> bool:
    for m in model.modules():
        if m._forward_hooks or m._forward_pre_hooks or getattr(m, "_observers", []):
            return False
    return True


def test_lif_firing_rates_hand_computed():
    # LIF decay 0.25, threshold 0.5, hard reset. Neuron 0: u = 1, 1 -> spikes at t0, t1; neuron 2: u = .3, .375,
    # .39375 -> silent; neurons 1, 3 get no input.
    neuron = Neuron("lif")
    x = torch.tensor([[[1.0, 0, 0.3, 0]], [[1.0, 0, 0.3, 0]], [[0.0, 0, 0.3, 0]]])
    with Monitor(neuron) as mon:
        neuron(x)
    rec = mon.result().neurons[""]
    assert rec.rate_per_step == [0.25, 0.25, 0.0]
    assert rec.rate == pytest.approx(2 / 12)
    assert rec.negative_fraction == 0.0
    assert rec.raster is not None and rec.raster[:, 0].tolist() == [1, 1, 0]
    assert rec.threshold_min == rec.threshold_max == 0.5
    # the membrane compared with the threshold: all 12 values kept (reservoir larger than the stream)
    expected = torch.tensor([1.0, 0, 0.3, 0, 1.0, 0, 0.375, 0, 0.0, 0, 0.39375, 0])
    assert torch.allclose(rec.membrane, expected)


def test_ternary_negative_fraction_and_rate():
    neuron = Neuron("ternary-vanilla")
    x = torch.tensor([[[1.0, -1.0, -0.9, 0.1]]])  # +1, -1, -1, 0
    with Monitor(neuron) as mon:
        neuron(x)
    rec = mon.result().neurons[""]
    assert rec.rate == 0.75
    assert rec.negative_fraction == pytest.approx(2 / 3)


def test_detached_monitor_leaves_no_trace():
    torch.manual_seed(0)
    model = create_model("convnet", neuron="ternary", widths=(4, 8)).eval()
    x = torch.randn(3, 2, 1, 8, 8)
    keys = list(model.state_dict())
    attrs = set(vars(model))
    with torch.no_grad():
        before = model(x)
        mon = Monitor(model)
        during = model(x)
        assert list(model.state_dict()) == keys
        mon.detach()
        after = model(x)
    assert torch.equal(before, during) and torch.equal(before, after)
    assert _all_hooks_empty(model)
    assert set(vars(model)) == attrs
    assert mon.result().samples == 2  # data recorded while attached survive detach
    mon.detach()  # idempotent


def test_context_manager_detaches_and_records_only_inside():
    model = create_model("mlp", in_features=16, hidden=(8,))
    x = torch.rand(2, 3, 16)
    with Monitor(model) as mon:
        model(x)
    model(x)
    assert _all_hooks_empty(model)
    assert mon.result().samples == 3 and mon.result().sample_steps == 6


def test_monitor_does_not_change_gradients():
    torch.manual_seed(0)
    model = create_model("convnet", widths=(4, 8))
    x = torch.randn(2, 2, 1, 8, 8)
    model(x).sum().backward()
    ref = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with Monitor(model):
        model(x).sum().backward()
    assert all(torch.equal(a, p.grad) for a, p in zip(ref, model.parameters()))


def _amplitude_pair(granularity: str):
    """Conv -> neuron with amplitude a -> conv2, and the hand fold: plain spikes -> conv2 with W·a."""
    torch.manual_seed(1)
    conv = layers.Conv2d(1, 3, 3, padding=1)
    neuron = Neuron("real-spike", (3, 6, 6), amplitude=granularity)
    with torch.no_grad():
        neuron.amplitude.weight.uniform_(0.5, 1.5)
    conv2 = layers.Conv2d(3, 2, 3, stride=2, padding=1)
    model = nn.Sequential(conv, neuron, conv2)
    a = neuron.amplitude.weight.detach()
    plain = Neuron("real-spike", (3, 6, 6), amplitude=None)
    conv2f = layers.Conv2d(3, 2, 3, stride=2, padding=1)
    with torch.no_grad():
        conv2f.weight.copy_(conv2.weight * a.reshape(1, 3, 1, 1))
        conv2f.bias.copy_(conv2.bias)
    return model, nn.Sequential(conv, plain, conv2f)


def test_channel_amplitude_counts_as_spikes_like_its_fold():
    model, folded = _amplitude_pair("channel")
    x = torch.randn(2, 3, 1, 6, 6)
    with torch.no_grad():
        assert torch.allclose(model(x), folded(x), atol=1e-5)
    res = []
    for m in (model, folded):
        with Monitor(m) as mon, torch.no_grad():
            m(x)
        res.append(mon.result().synapses["2"])
    assert res[0].mode == res[1].mode == "sop"
    assert res[0].sops == res[1].sops > 0


def test_avgpool_counts_hand_computed():
    # spikes at (0,0), (0,1) (same 2x2 window) and (3,3); pooled 2x2 map, conv 3x3 pad 1 -> per-axis fan-out
    # [2, 2], i.e. 4 output positions x 3 channels per non-zero pooled element
    pool, conv = layers.AvgPool2d(2), layers.Conv2d(1, 3, 3, padding=1)
    model = nn.Sequential(pool, conv)
    s = torch.zeros(1, 1, 1, 4, 4)
    s[..., 0, 0] = s[..., 0, 1] = s[..., 3, 3] = 1
    for mode, expected in (("nonzero", 2 * 4 * 3), ("events", 3 * 4 * 3)):
        with Monitor(model, sop_mode=mode) as mon:
            model(s)
        assert mon.result().synapses["1"].sops == expected


def test_pool_provenance_from_neuron_and_flatten():
    # neuron -> avgpool -> flatten -> linear: pooled values are not spike-valued, provenance makes them events
    neuron = Neuron("lif")
    model = nn.Sequential(neuron, layers.AvgPool2d(2), layers.Flatten(), layers.Linear(4, 5))
    x = torch.zeros(1, 1, 1, 4, 4)
    x[..., 0, 0] = x[..., 0, 1] = x[..., 2, 2] = 1.0  # 3 spikes, 2 non-zero windows, one with two spikes
    with Monitor(model, sop_mode="events") as mon:
        model(x)
    lin = mon.result().synapses["3"]
    assert lin.mode == "sop" and lin.sops == 3 * 5
    with Monitor(model) as mon:
        model(x)
    assert mon.result().synapses["3"].sops == 2 * 5


def test_real_valued_input_is_charged_macs():
    model = nn.Sequential(layers.Linear(4, 3), Neuron("lif"), layers.Linear(3, 2))
    x = torch.tensor([[[0.9, 0.2, -0.3, 0.4]]])
    with Monitor(model) as mon:
        model(x)
    r = mon.result().synapses
    assert r["0"].mode == "mac" and r["0"].charged_macs == 12 and r["0"].sops == 0
    assert r["2"].mode == "sop" and r["2"].charged_macs == 0


def test_reservoir_keeps_everything_until_full_then_a_uniform_sample():
    r = Reservoir(5, seed=0)
    r.add(torch.arange(3.0))
    assert r.values.tolist() == [0, 1, 2]
    big = Reservoir(1000, seed=0)
    for chunk in torch.arange(20000.0).split(3000):
        big.add(chunk)
    v = big.values
    assert v.numel() == 1000 and big.seen == 20000
    assert len(set(v.tolist())) == 1000 and v.min() >= 0 and v.max() < 20000
    # uniform over 0..19999: mean 9999.5, sd of the mean ~ 5773/sqrt(1000) = 183
    assert abs(float(v.mean()) - 9999.5) < 5 * 183
    # the late part of the stream is represented (not just the first fill)
    assert int((v >= 10000).sum()) > 400
    again = Reservoir(1000, seed=0)
    for chunk in torch.arange(20000.0).split(3000):
        again.add(chunk)
    assert torch.equal(again.values, v)


def test_monitor_rejects_bad_arguments():
    with pytest.raises(TypeError, match="nn.Module"):
        Monitor(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sop_mode"):
        Monitor(nn.Linear(2, 2), sop_mode="dense")


def test_reservoir_inclusion_is_uniform_over_the_stream():
    # 400 seeded runs of a 400-value stream into 10 slots, in chunks of 40 (dense and sparse acceptance paths):
    # every value is held with probability 10/400, i.e. 100 expected hits per quarter of the stream and run set
    hits = torch.zeros(400)
    for seed in range(400):
        r = Reservoir(10, seed=seed)
        for chunk in torch.arange(400.0).split(40):
            r.add(chunk)
        hits[r.values.long()] += 1
    assert hits.sum() == 4000
    quarters = hits.reshape(4, 100).sum(1)
    assert torch.all((quarters - 1000).abs() < 5 * 1000**0.5), quarters  # binomial sd ~ sqrt(1000)
