"""Time-folding layers equal the per-step application of the torch layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeforge import layers


@pytest.mark.parametrize("make,plain,shape", [
    (lambda: layers.Conv2d(3, 4, 3, padding=1), lambda: nn.Conv2d(3, 4, 3, padding=1), (5, 2, 3, 6, 6)),
    (lambda: layers.Conv1d(3, 4, 1), lambda: nn.Conv1d(3, 4, 1), (5, 2, 3, 7)),
    (lambda: layers.AvgPool2d(2), lambda: nn.AvgPool2d(2), (5, 2, 3, 6, 6)),
    (lambda: layers.MaxPool2d(2), lambda: nn.MaxPool2d(2), (5, 2, 3, 6, 6)),
    (lambda: layers.AdaptiveAvgPool2d(1), lambda: nn.AdaptiveAvgPool2d(1), (5, 2, 3, 6, 6)),
    (lambda: layers.Linear(6, 4), lambda: nn.Linear(6, 4), (5, 2, 6)),
])
def test_equals_per_step(make, plain, shape):
    m, p = make(), plain()
    p.load_state_dict(m.state_dict())
    x = torch.randn(shape)
    per_step = torch.stack([p(x[t]) for t in range(shape[0])])
    torch.testing.assert_close(m(x), per_step)


def test_flatten_keeps_time_and_batch():
    assert layers.Flatten()(torch.zeros(3, 2, 4, 5, 6)).shape == (3, 2, 120)


def test_rank_errors():
    with pytest.raises(ValueError, match="time-first"):
        layers.Conv2d(3, 4, 3)(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="time-first"):
        layers.Linear(3, 4)(torch.zeros(2, 3))


def test_state_dict_keys_are_torch_keys():
    assert set(layers.Conv2d(3, 4, 3).state_dict()) == set(nn.Conv2d(3, 4, 3).state_dict())


@pytest.mark.parametrize("size", [(7, 9), (8, 6)])  # (8, 6): tiling 2x2 windows, the fill-free backward
@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=(2, 3)),
                                    dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=3, stride=2, ceil_mode=True, count_include_pad=False),
                                    dict(kernel_size=(2, 3), stride=(1, 2), divisor_override=5)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_avg_pool_backward_keeps_no_input_and_equals_autograd_bit_for_bit(kwargs, channels_last, size):
    T, B = 3, 2
    spikes = (torch.rand(T * B, 4, *size) > 0.6).float()
    if channels_last:
        spikes = spikes.contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(nn.AvgPool2d(**kwargs)(spikes)).reshape(T, B, 4, *nn.AvgPool2d(**kwargs)(spikes).shape[2:])
    x_ref = spikes.clone().requires_grad_()
    ref = nn.AvgPool2d(**kwargs)(x_ref).reshape(g.shape)
    ref.backward(g)
    x = spikes.reshape(T, B, 4, *size).clone().requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
        out = layers.AvgPool2d(**kwargs)(x)
    assert saved == []  # nothing kept for backward
    out.backward(g)
    assert torch.equal(out, ref) and torch.equal(x.grad.reshape(x_ref.shape), x_ref.grad)


def test_static_input_runs_per_sample_layers_once():
    """Direct encoding (a stride-0 view over T): conv/pool/linear run once on x[0]; the values are those of the
    folded T*B batch and the weight gradient equals it to float rounding."""
    import copy

    import spikeforge as sf
    from spikeforge.encode import direct
    from spikeforge.layers import AvgPool2d, BatchNorm2d, Conv2d, is_static

    torch.manual_seed(0)
    img = torch.randn(5, 3, 12, 12)
    x = direct(img, 4)
    assert is_static(x) and not is_static(x.contiguous()) and not is_static(direct(img, 1))
    conv = Conv2d(3, 6, 3, 1, 1)
    y = conv(x)
    assert y.stride(0) == 0 and torch.equal(y, conv(x.contiguous()))
    assert AvgPool2d(2)(y).stride(0) == 0
    bn = BatchNorm2d(6).train()  # batch statistics pool T*B: not run once
    ref_bn = copy.deepcopy(bn)
    assert torch.equal(bn(y), ref_bn(y.contiguous()))
    assert torch.equal(bn.running_var, ref_bn.running_var)
    assert bn.eval()(y).stride(0) == 0  # running statistics: per sample

    model = sf.create_model("vgg11", width=0.125, num_classes=4).train()
    twin = copy.deepcopy(model)
    x = direct(torch.randn(5, 3, 32, 32), 4)
    target = torch.tensor([0, 1, 2, 3, 0])
    out = model(x)
    out_ref = twin(x.contiguous())
    assert torch.equal(out, out_ref)
    F.cross_entropy(out.mean(0), target).backward()
    F.cross_entropy(out_ref.mean(0), target).backward()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6, msg=name)
    for (name, b), c in zip(model.named_buffers(), twin.buffers()):
        assert torch.equal(b, c), name
