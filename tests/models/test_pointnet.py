"""Spiking PointNet: parameter count, permutation invariance, the T-Net regulariser, shapes, exact folding."""

from __future__ import annotations

import copy

import pytest
import torch

import spikeforge as sf
from spikeforge.models.pointnet import PointTransform, feature_transform_regularizer

FOLD_NEURONS = {"binary": "lif", "ternary": "ternary", "mpbn": "mpbn", "real-spike": "real-spike"}


def lin(i: int, o: int) -> int:  # conv1d k=1 or linear, with bias
    return i * o + o


def tnet(cin: int, k: int) -> int:
    return (lin(cin, 64) + lin(64, 128) + lin(128, 1024) + lin(1024, 512) + lin(512, 256) + lin(256, k * k)
            + 2 * (64 + 128 + 1024 + 512 + 256))


def test_parameter_count_by_hand():
    with torch.device("meta"):
        m = sf.create_model("pointnet")
    encoder = lin(3, 64) + lin(64, 128) + lin(128, 1024) + 2 * (64 + 128 + 1024)
    head = lin(1024, 512) + lin(512, 256) + lin(256, 40) + 2 * (512 + 256)
    expected = tnet(3, 3) + tnet(64, 64) + encoder + head
    assert sum(p.numel() for p in m.parameters()) == expected == 3_471_473
    assert m.input_kind == "points" and m.input_shape == (3, 1024)


def _trained_looking(m, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.running_mean.copy_(torch.rand(mod.running_mean.shape, generator=g) * 0.4 - 0.2)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
    return m.eval()


def test_permuting_points_leaves_the_output_unchanged(spike_rate):
    torch.manual_seed(0)
    m = _trained_looking(sf.create_model("pointnet", width=1 / 8, num_classes=5))
    x = torch.randn(3, 2, 3, 50)
    assert 0.05 < spike_rate(m, x) < 0.95
    perm = torch.randperm(50)
    with torch.no_grad():
        y, a = m(x), m.last_feature_transform
        y_perm, a_perm = m(x[..., perm]), m.last_feature_transform
    assert torch.equal(y, y_perm) and torch.equal(a, a_perm)
    # sanity: the output does depend on the points themselves
    with torch.no_grad():
        assert not torch.equal(m(x * 1.5), y)


def test_regulariser_on_a_hand_example():
    # A1 = diag(2, 1): I - A Aᵀ = diag(-3, 0), ‖·‖_F = 3;  A2 = a rotation: A Aᵀ = I, 0
    c, s = 0.6, 0.8
    a = torch.tensor([[[2.0, 0.0], [0.0, 1.0]], [[c, -s], [s, c]]])
    assert feature_transform_regularizer(a).item() == pytest.approx((3.0 + 0.0) / 2)
    assert feature_transform_regularizer(a, squared=True).item() == pytest.approx((9.0 + 0.0) / 2)
    # [T, B, k, k]: the mean runs over time steps and samples
    assert feature_transform_regularizer(torch.stack([a, a.flip(0)])).item() == pytest.approx(1.5)
    with pytest.raises(ValueError, match="square"):
        feature_transform_regularizer(torch.zeros(2, 3, 4))


def test_model_regulariser_is_that_of_the_last_forward_call():
    torch.manual_seed(1)
    m = sf.create_model("pointnet", width=1 / 8, num_classes=4)
    with pytest.raises(RuntimeError, match="forward call first"):
        m.feature_transform_regularizer()
    m(torch.randn(1, 3, 3, 20))
    first = m.feature_transform_regularizer().item()
    m(torch.randn(2, 5, 3, 20) * 3)
    a = m.last_feature_transform
    assert a.shape == (2, 5, 8, 8)
    reg = m.feature_transform_regularizer()
    eye = torch.eye(8)
    by_hand = torch.stack([torch.linalg.matrix_norm(eye - a[t, b] @ a[t, b].T)
                           for t in range(2) for b in range(5)]).mean()
    assert reg.item() == pytest.approx(by_hand.item(), rel=1e-6) and reg.item() != pytest.approx(first)
    reg.backward()  # in the graph of that call: the feature T-Net gets a gradient
    assert m.fstn.mlp[-1].weight.grad.abs().sum() > 0
    # copies (fold, checkpoints) do not carry the per-call tensor
    clone = copy.deepcopy(m)
    assert clone.last_feature_transform is None and m.last_feature_transform is a


def test_point_transform_moves_xyz_and_keeps_normals():
    a = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, -1.0]])  # x_n <- x_n A
    pts = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # two points (N, 3)
    normals = torch.randn(2, 3)
    x = torch.cat([pts, normals], dim=1).T.reshape(1, 1, 6, 2)  # [T, B, D, N]
    out = PointTransform()(x, a.reshape(1, 1, 3, 3))
    assert torch.allclose(out[0, 0, :3].T, pts @ a)
    assert torch.equal(out[0, 0, 3:], x[0, 0, 3:])
    assert PointTransform.mac_count((x, a.reshape(1, 1, 3, 3)), out) == 2 * 9


@pytest.mark.parametrize("T", [1, 4])
@pytest.mark.parametrize("channels", [3, 6])
def test_forward_shape_and_backward(T, channels):
    torch.manual_seed(2)
    m = sf.create_model("pointnet", width=1 / 8, num_classes=10, in_channels=channels)
    y = m(torch.randn(T, 4, channels, 32))
    assert y.shape == (T, 4, 10)
    (y.mean(0).logsumexp(-1).sum() + 0.001 * m.feature_transform_regularizer()).backward()
    assert m.stn.features[0].weight.grad.abs().sum() > 0 and m.mlp1[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=f"points \\[T, B, {channels}, N\\]"):
        m(torch.randn(T, 4, channels + 1, 32))


@pytest.mark.parametrize("kind", list(FOLD_NEURONS) + ["pointnet-preset"])
def test_folds_exactly(kind, check_fold):
    torch.manual_seed(3)
    neuron = "pointnet" if kind == "pointnet-preset" else FOLD_NEURONS[kind]  # MPP: random initial membrane
    m = sf.create_model("pointnet", width=1 / 16, num_classes=5, neuron=neuron)
    check_fold(m, torch.randn(2, 2, 3, 24))


def test_element_wise_options_are_rejected():
    for neuron in ("real-spike-element", {"preset": "mpbn", "mpbn": "element"}):
        with pytest.raises(ValueError, match="permutation invariance"):
            sf.create_model("pointnet", width=1 / 16, neuron=neuron)


def test_weight_init_is_the_official_pytorch_default_unless_kaiming() -> None:
    import math

    from spikeforge import layers
    from spikeforge.models import create_model

    torch.manual_seed(0)
    model = create_model("pointnet", num_classes=5, num_points=32, width=0.125)
    assert model.weight_init == "pytorch"
    conv = model.mlp1[0]
    assert isinstance(conv, layers.Conv1d)
    bound = 1 / math.sqrt(conv.in_channels)  # PyTorch default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias
    assert conv.bias.abs().max() > 0 and conv.bias.abs().max() <= bound
    assert conv.weight.abs().max() <= bound  # kaiming_uniform(a=sqrt(5)) has the same bound
    torch.manual_seed(0)
    kaiming = create_model("pointnet", num_classes=5, num_points=32, width=0.125, weight_init="kaiming")
    assert torch.equal(kaiming.mlp1[0].bias, torch.zeros_like(kaiming.mlp1[0].bias))
    with pytest.raises(ValueError, match="weight_init"):
        create_model("pointnet", num_classes=5, num_points=32, weight_init="xavier")
