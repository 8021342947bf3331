"""Energy report, count_macs and measure: closed-form totals, ANN equivalent, fold invariance."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeforge import create_model, layers
from spikeforge.analysis import E_AC_PJ, E_MAC_PJ, Monitor, count_macs, energy_report, measure
from spikeforge.neurons import Neuron, neuron_config


def _tiny_mlp() -> nn.Sequential:
    """Linear(4->3) on real input, IF-like neuron, Linear(3->2) on spikes; weights chosen so spikes are known."""
    first = layers.Linear(4, 3, bias=False)
    second = layers.Linear(3, 2, bias=False)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 0]]))
        second.weight.fill_(1.0)
    return nn.Sequential(first, Neuron("lif"), second)


def test_energy_totals_closed_form():
    model = _tiny_mlp()
    # T=2, B=2. Sample 0: x = [1, 1, ., .] -> neurons 0, 1 fire at both steps (u = 1 >= 0.5, hard reset);
    # sample 1: x = [0.2, 0, ., .] -> u = 0.2, 0.25 -> silent.
    x = torch.tensor([[1.0, 1.0, 0.3, -0.7], [0.2, 0.0, 0.9, 0.4]]).expand(2, 2, 4)
    with Monitor(model) as mon:
        model(x)
    rep = energy_report(mon.result())
    # per sample: first layer 4*3 MACs per step x 2 steps (real-valued input); second layer: 4 spikes (sample 0)
    # over 2 samples -> 2 spikes per sample, each feeding 2 outputs -> 4 SOPs per sample
    assert rep.macs == 24 and rep.sops == 4
    assert rep.energy_pj == pytest.approx(E_MAC_PJ * 24 + E_AC_PJ * 4)
    assert rep.ann_macs == 12 + 6  # one dense evaluation of both layers
    assert rep.ann_energy_pj == pytest.approx(E_MAC_PJ * 18)
    assert rep.dense_macs == 36
    assert rep.firing_rates == {"1": pytest.approx(8 / 24)}
    assert [layer.mode for layer in rep.layers] == ["mac", "sop"]
    custom = energy_report(mon.result(), e_mac=3.0, e_ac=0.1)
    assert custom.energy_pj == pytest.approx(3.0 * 24 + 0.1 * 4)
    d = rep.to_dict()
    for key in ("sops", "macs", "energy_pj", "ann_energy_pj", "firing_rates", "layers"):
        assert key in d


def test_energy_report_errors():
    model = _tiny_mlp()
    mon = Monitor(model)
    with pytest.raises(ValueError, match="no samples"):
        energy_report(mon.result())
    model(torch.rand(1, 1, 4))
    with pytest.raises(ValueError, match=">= 0"):
        energy_report(mon.result(), e_mac=-1.0)
    mon.detach()


def test_count_macs_convnet_hand_computed():
    model = create_model("convnet", widths=(4, 8))  # 1x8x8 -> conv3x3 p1 (4) -> pool -> conv (8) -> pool -> fc
    counts = count_macs(model, (1, 8, 8))
    assert counts.layers == {"0": 64 * 4 * 9, "4": 16 * 8 * 4 * 9, "9": 8 * 2 * 2 * 10}
    assert counts.total == sum(counts.layers.values())
    assert model.training  # mode restored
    x = torch.randn(3, 5, 1, 8, 8)
    assert count_macs(model, x).total == counts.total  # per sample and step
    with pytest.raises(ValueError, match="time-first"):
        count_macs(model, torch.zeros(8, 8))


def test_measure_restores_mode_and_matches_monitor():
    torch.manual_seed(0)
    model = create_model("convnet", widths=(4, 8), neuron="ternary")
    x = torch.randn(6, 1, 8, 8)
    rep = measure(model, [(x[:3], None), (x[3:], None)], T=3)
    assert model.training
    assert rep.samples == 6 and rep.time_steps == 3
    with Monitor(model.eval()) as mon, torch.no_grad():
        model(x.unsqueeze(0).expand(3, *x.shape))
    ref = energy_report(mon.result())
    assert rep.sops == pytest.approx(ref.sops) and rep.macs == ref.macs
    assert rep.ann_macs == count_macs(model, (1, 8, 8)).total
    assert 0 < rep.negative_fractions["2"] < 1  # ternary neurons emit -1 spikes
    with pytest.raises(ValueError, match="needs T"):
        measure(model, [x])
    with pytest.raises(ValueError, match="no batches"):
        measure(model, [], T=2)


def _randomise(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and amplitudes, so that the fold has something to move."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.6 - 0.3)
            if type(m).__name__ == "Amplitude":
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.8 + 0.6)
    return model.eval()


def _element_amplitude_net() -> nn.Sequential:
    cfg = neuron_config("real-spike-element")
    return nn.Sequential(
        *layers.conv_bn(1, 4, 3), layers.make_neuron(cfg, 4, (8, 8)),
        *layers.conv_bn(4, 6, 3, stride=2), Neuron("lif"), layers.Flatten(), layers.Linear(6 * 16, 5))


@pytest.mark.parametrize("build", [
    lambda: create_model("convnet", widths=(4, 8), neuron="mpbn"),
    lambda: create_model("convnet", widths=(4, 8), neuron="ternary"),
    lambda: create_model("convnet", widths=(4, 8), neuron="real-spike", amplitude="channel"),
    _element_amplitude_net,
], ids=["mpbn", "ternary-layer-amplitude", "real-spike-channel", "real-spike-element"])
def test_folded_and_unfolded_models_have_identical_energy(build):
    fold_mod = pytest.importorskip("spikeforge.folding")
    model = _randomise(build())
    folded = fold_mod.fold(model)
    x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    a, b = measure(model, [x], T=3), measure(folded, [x], T=3)
    assert a.sops > 0
    assert (a.sops, a.macs, a.ann_macs, a.energy_pj) == (b.sops, b.macs, b.ann_macs, b.energy_pj)
    assert list(a.firing_rates.values()) == list(b.firing_rates.values())
    assert [layer.mode for layer in a.layers] == [layer.mode for layer in b.layers]
