"""The registry: create_model, neuron options as kwargs, clear errors."""

from __future__ import annotations

import pytest
import torch

import spikeforge as sf
from spikeforge.models import register_model


def test_list_and_create():
    names = sf.list_models()
    assert "convnet" in names and "mlp" in names
    m = sf.create_model("convnet", num_classes=5, spike="ternary", amplitude="channel")
    y = m(sf.encode.direct(torch.rand(2, 1, 8, 8), 3))
    assert y.shape == (3, 2, 5)
    neurons = [n for _, n in sf.neurons.spiking_neurons(m)]
    assert neurons and all(n.config.spike == "ternary" and n.amplitude is not None for n in neurons)


def test_neuron_preset_and_overrides():
    m = sf.create_model("mlp", neuron="mpbn", mpbn="element")
    n = next(n for _, n in sf.neurons.spiking_neurons(m))
    assert n.mpbn is not None and n.mpbn.mode == "element"


def test_unknown_model_and_option():
    with pytest.raises(ValueError, match="unknown model"):
        sf.create_model("resnet9000")
    with pytest.raises(ValueError, match="no option"):
        sf.create_model("convnet", depth=3)
    with pytest.raises(ValueError, match="unknown neuron option"):
        sf.create_model("convnet", neuron={"treshold": 0.3})


def test_duplicate_registration_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register_model(lambda: None, name="convnet")


def test_encode_and_readout():
    x = torch.rand(4, 3)
    seq = sf.encode.direct(x, 5)
    assert seq.shape == (5, 4, 3) and torch.equal(seq[2], x)
    logits = torch.arange(6.0).view(3, 2, 1)
    assert sf.readout(logits, "mean").flatten().tolist() == [2.0, 3.0]
    assert sf.readout(logits, "sum").flatten().tolist() == [6.0, 9.0]
    with pytest.raises(ValueError):
        sf.readout(logits, "max")
    with pytest.raises(ValueError):
        sf.encode.direct(x, 0)
