"""Spikes saved as bits for backward: exact rebuild, bit-identical gradients, fallback on non-spike input."""

import copy

import pytest
import torch

from spikeforge.layers import Conv2d, Linear, compress_spikes, pack_spikes, spike_amplitude, unpack_spikes
from spikeforge.models import create_model


def _spikes(shape, a=1.0, ternary=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(shape, generator=g)
    s = (u > 0.7).float()
    if ternary:
        s = s - (u < 0.2).float()
    return s * a


@pytest.mark.parametrize("ternary", [False, True])
@pytest.mark.parametrize("a", [1.0, 0.37])
def test_pack_unpack_is_exact(ternary, a):
    x = _spikes((3, 5, 7, 3), a, ternary)  # 315 elements: not a multiple of 8
    code = spike_amplitude(x)
    assert code is not None and code[1] == ternary and float(code[0]) == float(torch.tensor(a))
    pos, neg = pack_spikes(x, code[0], ternary)
    assert pos.dtype == torch.uint8 and pos.numel() == (x.numel() + 7) // 8
    assert (neg is not None) == ternary
    assert torch.equal(unpack_spikes(pos, neg, code[0], x.shape, x.dtype), x)


def test_non_spike_input_is_detected():
    assert spike_amplitude(torch.tensor([0.0, 1.0, 0.5])) is None
    assert spike_amplitude(torch.tensor([0.0, 2.0, -1.0])) is None
    assert spike_amplitude(torch.tensor([0.0, 2.0, 2.0]))[1] is False


def _grads(layer, x):
    x = x.clone().requires_grad_(True)
    y = layer(x)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(3))
    y.backward(g)
    return y.detach(), x.grad, [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("ternary", [False, True])
@pytest.mark.parametrize("kind", ["conv", "conv_stride_nobias", "linear"])
def test_compressed_gradients_equal_uncompressed_bit_for_bit(kind, ternary):
    torch.manual_seed(0)
    if kind == "linear":
        layer, x = Linear(40, 9), _spikes((4, 3, 40), 0.5, ternary)
    elif kind == "conv":
        layer, x = Conv2d(6, 8, 3, 1, 1), _spikes((4, 3, 6, 9, 9), 1.0, ternary)
    else:
        layer, x = Conv2d(6, 8, 3, 2, 1, bias=False), _spikes((2, 3, 6, 10, 10), 1.0, ternary)
    packed = compress_spikes(copy.deepcopy(layer), True)
    y0, gx0, gp0 = _grads(layer, x)
    y1, gx1, gp1 = _grads(packed, x)
    assert torch.equal(y0, y1) and torch.equal(gx0, gx1)
    assert all(torch.equal(a, b) for a, b in zip(gp0, gp1))


def test_compressed_model_step_is_bit_identical_and_saves_bits():
    neuron = dict(decay=0.5, surrogate="atan", surrogate_param=2.0)
    torch.manual_seed(0)
    ref = create_model("resnet19", width=0.0625, input_size=16, neuron=neuron)
    packed = compress_spikes(copy.deepcopy(ref), True)
    x = torch.randn(2, 4, 3, 16, 16)
    y = torch.tensor([1, 2, 3, 4])
    for m in (ref, packed):
        torch.nn.functional.cross_entropy(m(x).mean(0), y).backward()
    for (name, p), q in zip(ref.named_parameters(), packed.parameters()):
        assert torch.equal(p.grad, q.grad), name
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        packed(x).sum()
    assert any(t.dtype == torch.uint8 for t in saved)


def test_non_spike_input_takes_the_ordinary_path():
    torch.manual_seed(0)
    layer = Conv2d(2, 3, 3, 1, 1)
    packed = compress_spikes(copy.deepcopy(layer), True)
    x = torch.randn(2, 2, 2, 5, 5)
    _, gx0, gp0 = _grads(layer, x)
    _, gx1, gp1 = _grads(packed, x)
    assert torch.equal(gx0, gx1) and all(torch.equal(a, b) for a, b in zip(gp0, gp1))


def test_compress_spikes_needs_a_layer():
    with pytest.raises(ValueError, match="no spikeforge Conv2d/Linear"):
        compress_spikes(torch.nn.ReLU(), True)
