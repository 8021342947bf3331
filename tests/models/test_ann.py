"""``create_model(..., ann=True)``: the same network with ReLU instead of spiking neurons."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeforge.models import create_model, to_ann
from spikeforge.neurons import Neuron


def test_ann_twin_keeps_every_parameter_and_replaces_every_neuron_by_relu():
    torch.manual_seed(0)
    snn = create_model("cifar_resnet", num_classes=10, in_channels=1, input_size=(16, 16), width=0.125,
                       blocks=(1, 1, 1, 1))
    torch.manual_seed(0)
    ann = create_model("cifar_resnet", num_classes=10, in_channels=1, input_size=(16, 16), width=0.125,
                       blocks=(1, 1, 1, 1), ann=True)
    n_neurons = sum(isinstance(m, Neuron) for m in snn.modules())
    assert n_neurons > 0 and not any(isinstance(m, Neuron) for m in ann.modules())
    assert sum(isinstance(m, nn.ReLU) for m in ann.modules()) == n_neurons
    snn_params = {k: v for k, v in snn.state_dict().items() if ".sn" not in k and "neuron" not in k}
    ann_params = ann.state_dict()
    for k, v in ann_params.items():
        assert torch.equal(v, snn_params[k]), k


def test_ann_twin_computes_relu_of_each_layer_input():
    # MLP in eval mode with fresh BN statistics (mean 0, var 1): logits = W2 relu(W1 x / sqrt(1 + eps)) + b2
    torch.manual_seed(1)
    model = create_model("mlp", in_features=5, hidden=(7,), num_classes=3, ann=True).eval()
    x = torch.randn(2, 4, 5)
    lin = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(lin) == 2
    expected = lin[1](torch.relu(lin[0](x) / (1 + 1e-5) ** 0.5))
    assert torch.allclose(model(x), expected, atol=1e-6)


def test_ann_is_refused_where_it_cannot_apply():
    with pytest.raises(ValueError, match="ann must be true or false"):
        create_model("mlp", in_features=5, hidden=(7,), num_classes=3, ann="yes")
    with pytest.raises(ValueError, match="dual-mode ANN/SNN model"):
        create_model("joint_asnn_resnet18", width=0.125, ann=True)
    with pytest.raises(ValueError, match="no spiking neuron"):
        to_ann(to_ann(create_model("mlp", in_features=5, hidden=(7,), num_classes=3)))


def test_cifar_resnet_is_the_snn_branch_of_joint_asnn_with_the_same_blocks():
    for blocks in ((1, 1, 1, 1), (2, 2, 2, 2)):
        plain = create_model("cifar_resnet", width=0.125, blocks=blocks)
        joint = create_model("joint_asnn_resnet18", width=0.125, blocks=blocks).export_snn()
        shapes = sorted(tuple(p.shape) for n, p in plain.named_parameters() if p.ndim == 4)
        joint_shapes = sorted(tuple(p.shape) for n, p in joint.named_parameters() if p.ndim == 4)
        assert shapes == joint_shapes
