"""Neuron modules: explicit state, no leaks, validation, presets, observers."""

from __future__ import annotations

import pytest
import torch

from spikeforge.neurons import IF, LIF, PLIF, Neuron, NeuronConfig, neuron_config, observe, spiking_neurons


def test_no_state_leaks_between_calls():
    n = LIF()
    x = torch.rand(4, 3, 5)
    first = n(x)
    n(torch.rand(4, 3, 5) * 10)  # a very different batch in between
    assert torch.equal(n(x), first)
    assert not any(t.requires_grad for t in n.buffers())


def test_explicit_state_continues_and_steps_match():
    n = LIF(reset="soft")
    x = torch.rand(6, 2, 4)
    whole = n(x)
    a, st = n.run(x[:3])
    b, _ = n.run(x[3:], st)
    assert torch.equal(whole, torch.cat([a, b]))
    state = None
    outs = []
    for t in range(6):
        o, state = n.step(x[t], state, t)
        outs.append(o)
    assert torch.equal(torch.stack(outs), whole)


@pytest.mark.parametrize("bad,err,msg", [
    (torch.rand(4), ValueError, "at least 2 dims"),
    (torch.rand(0, 2, 3), ValueError, "T = 0"),
    (torch.tensor([[float("nan"), 1.0]]), ValueError, "NaN"),
    (torch.ones(2, 3, dtype=torch.long), TypeError, "floating-point"),
])
def test_bad_input_raises_clear_errors(bad, err, msg):
    with pytest.raises(err, match=msg):
        LIF()(bad)


def test_feature_shape_mismatch_is_reported():
    n = Neuron("real-spike", (3, None, None))
    n(torch.rand(2, 1, 3, 4, 4))
    with pytest.raises(ValueError, match="built for per-sample features"):
        n(torch.rand(2, 1, 5, 4, 4))


def test_if_neuron_integrates_without_leak():
    x = torch.full((3, 1, 1), 0.2)
    # IF: 0.2, 0.4, 0.6 -> fires at the third step
    assert IF()(x).flatten().tolist() == [0.0, 0.0, 1.0]
    # LIF with decay 0.25: 0.2, 0.25, 0.2625 -> never fires
    assert LIF()(x).flatten().tolist() == [0.0, 0.0, 0.0]


def test_tau_form():
    c = NeuronConfig(tau=2.0)
    assert c.decay == 0.5
    with pytest.raises(ValueError, match="tau"):
        NeuronConfig(tau=0.5)


def test_plif_learns_its_decay():
    n = PLIF()
    assert float(n.decay.detach()) == pytest.approx(0.5)
    x = torch.rand(5, 4, 3) * 2
    n(x).sum().backward()
    assert n.decay_logit.grad is not None and n.decay_logit.grad.abs() > 0


def test_learnable_threshold_gets_gradient():
    n = Neuron("lif", learn_threshold=True)
    n(torch.rand(5, 4, 3)).sum().backward()
    assert isinstance(n.threshold, torch.nn.Parameter) and n.threshold.grad is not None


def test_amplitude_scales_output():
    n = Neuron("real-spike", (2, None, None))
    with torch.no_grad():
        n.amplitude.weight.copy_(torch.tensor([2.0, 0.5]).view(2, 1, 1))
    x = torch.rand(3, 1, 2, 2, 2) * 2
    plain = Neuron("lif")(x)
    torch.testing.assert_close(n(x), plain * torch.tensor([2.0, 0.5]).view(2, 1, 1))


def test_ternary_emits_three_levels():
    n = Neuron("ternary-vanilla")
    x = torch.tensor([[0.7, -0.7, 0.1]])
    assert n(x).tolist() == [[1.0, -1.0, 0.0]]


def test_random_initial_membrane_train_only_or_always():
    x = torch.zeros(1, 1000)
    train_only = Neuron("lif", init="uniform", init_range=0.5)
    train_only.train()
    # from rest, zero input: no spike; the random membrane never reaches 0.5 either (U[0, 0.5) * 1 < 0.5)
    assert train_only(x).sum() == 0
    v = train_only.run(x)[1].v
    assert 0 < float(v.min()) or float(v.max()) < 0.5 * 0.25 + 1e-6
    train_only.eval()
    assert float(train_only.run(x)[1].v.abs().max()) == 0.0
    always = Neuron("pointnet")
    always.eval()
    assert float(always.run(x)[1].v.abs().max()) > 0.0


def test_config_validation_and_presets():
    with pytest.raises(ValueError, match="unknown neuron option"):
        neuron_config({"treshold": 1.0})
    with pytest.raises(ValueError, match="unknown neuron preset"):
        neuron_config("izhikevich")
    with pytest.raises(ValueError, match="amplitude"):
        NeuronConfig(amplitude="row")
    c = neuron_config("mpbn", mpbn="element")
    assert c.pre_fire == "mpbn" and c.mpbn == "element" and c.surrogate == "dspike"
    with pytest.raises(ValueError, match="feature_shape"):
        Neuron("mpbn")


def test_mpbn_neuron_uses_reference_path_and_normalises():
    n = Neuron("mpbn", (2, None, None))
    x = torch.randn(3, 8, 2, 4, 4) * 3 + 5
    out = n(x)
    assert out.shape == x.shape
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert float(n.mpbn.running_mean.abs().sum()) > 0  # statistics were tracked


def test_observe_records_only_inside_block():
    model = torch.nn.Sequential(LIF(), LIF())
    seen = []
    with observe(model, lambda m, r, s: seen.append((m, r.shape, s.shape))):
        model(torch.rand(3, 2, 4))
    assert len(seen) == 2
    model(torch.rand(3, 2, 4))
    assert len(seen) == 2
    assert all(not m._observers for _, m in spiking_neurons(model))
