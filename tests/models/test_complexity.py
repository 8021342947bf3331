"""Parameter and MAC counting from the real modules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import spikeforge as sf
from spikeforge.analysis import total_macs as count_macs
from spikeforge.models import model_entry
from spikeforge.models.complexity import count_parameters, example_input, input_shape_of
from spikeforge.neurons import base as neuron_base


def test_macs_of_the_event_cnn_by_hand():
    m = sf.create_model("dvs_cnn", widths=(4, 8), input_size=8, num_classes=3)
    # conv 2->4 on 8×8, conv 4->8 on 4×4 (3×3 kernels), FC 8·2·2 -> 3; per sample and step
    by_hand = 8 * 8 * 4 * (2 * 9) + 4 * 4 * 8 * (4 * 9) + 3 * 32
    assert count_macs(m, example_input((2, 8, 8))) == by_hand
    # all of x is counted: T = 3 steps of B = 2 samples
    assert count_macs(m, example_input((2, 8, 8), T=3, batch=2)) == 6 * by_hand
    per_layer = count_macs(m, example_input((2, 8, 8)), per_layer=True)
    assert per_layer == {"0": 8 * 8 * 4 * 18, "4": 4 * 4 * 8 * 36, "9": 96}


def test_pointnet_counts_its_point_transforms():
    m = sf.create_model("pointnet", width=1 / 16, num_classes=2, num_points=10)
    per_layer = count_macs(m, example_input(m.input_shape), per_layer=True)
    assert per_layer["input_transform"] == 10 * 3 * 3
    assert per_layer["feature_transform"] == 10 * 4 * 4
    assert per_layer["mlp1.0"] == 10 * 3 * 4


def test_resnet18_macs_and_params_at_imagenet_size():
    with torch.device("meta"):
        m = sf.create_model("resnet18")
    assert count_parameters(m) == 11_689_512
    # the known 1.814 G MACs of ResNet-18 at 224×224: stem 118.0 M + stages + FC 0.5 M
    saved = neuron_base._VALIDATE
    sf.neurons.set_input_validation(False)  # meta tensors have no values to check
    try:
        macs = count_macs(m, torch.zeros(1, 1, 3, 224, 224, device="meta"))
    finally:
        sf.neurons.set_input_validation(saved)
    assert macs == 1_814_073_344


def test_count_parameters_counts_shared_weights_once():
    lin = nn.Linear(3, 4)
    assert count_parameters(nn.Sequential(lin, lin)) == 16
    frozen = nn.Linear(2, 2)
    frozen.bias.requires_grad_(False)
    assert count_parameters(frozen, trainable_only=True) == 4


def test_input_shape_from_attribute_or_factory_defaults():
    assert input_shape_of(sf.create_model("vgg11", input_size=40)) == (3, 40, 40)
    conv = sf.create_model("convnet")
    assert input_shape_of(conv, model_entry("convnet")) == (1, 8, 8)
    assert input_shape_of(sf.create_model("mlp"), model_entry("mlp")) == (64,)
    with pytest.raises(ValueError, match="T and batch"):
        example_input((3,), T=0)
