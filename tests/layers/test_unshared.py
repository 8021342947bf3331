"""UnsharedConv2d: locally connected conv, and the fold of a shared conv applied to a ⊙ s."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spikeforge.layers import Conv2d
from spikeforge.layers.unshared import UnsharedConv2d, conv_out_size, unshared_conv2d


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups"),
                         [(1, 1, 1, 1), (2, 1, 1, 1), (2, 0, 1, 1), (1, 2, 2, 1), (1, 1, 1, 2), (3, 2, 1, 1)])
def test_from_conv_equals_conv_of_scaled_spikes(stride: int, padding: int, dilation: int, groups: int) -> None:
    g = torch.Generator().manual_seed(0)
    conv = Conv2d(4, 6, 3, stride, padding, dilation, groups=groups, bias=True).double()
    a = torch.rand(4, 7, 7, generator=g, dtype=torch.float64) * 2 - 0.5  # any sign
    s = (torch.rand(2, 3, 4, 7, 7, generator=g) > 0.5).double()
    un = UnsharedConv2d.from_conv(conv, (7, 7), a)
    ref = conv(a * s)
    assert un(s).shape == ref.shape
    assert torch.allclose(un(s), ref, rtol=0, atol=1e-12)


def test_hand_computed_1d_like_case() -> None:
    # one channel, 1×2 kernel, input 1×3, no padding: y[p] = w[tap 0, p] x[p] + w[tap 1, p] x[p+1] + b[p]
    taps_by_position = torch.tensor([[1.0, 3.0], [2.0, 4.0]])  # [tap, position]
    w = taps_by_position.reshape(1, 1, 1, 2, 1, 2)  # [O, C, kh, kw, Ho, Wo]
    b = torch.tensor([0.5, -0.5]).reshape(1, 1, 2)
    x = torch.tensor([1.0, 10.0, 100.0]).reshape(1, 1, 1, 3)
    y = unshared_conv2d(x, w, b)
    assert y.flatten().tolist() == [1 * 1 + 2 * 10 + 0.5, 3 * 10 + 4 * 100 - 0.5]


def test_shared_weights_reduce_to_conv() -> None:
    torch.manual_seed(0)
    un = UnsharedConv2d(3, 5, (3, 2), (6, 5), stride=(2, 1), padding=(1, 0))
    k = torch.randn(5, 3, 3, 2)
    with torch.no_grad():
        un.weight.copy_(k[..., None, None].expand_as(un.weight))
        un.bias.copy_(torch.arange(5.0)[:, None, None].expand_as(un.bias))
    x = torch.randn(2, 4, 3, 6, 5)
    ref = F.conv2d(x.flatten(0, 1), k, torch.arange(5.0), (2, 1), (1, 0)).reshape(2, 4, 5, *un.out_size)
    assert torch.allclose(un(x), ref, atol=1e-5)
    assert un.out_size == conv_out_size((6, 5), (3, 2), (2, 1), (1, 0), (1, 1)) == (3, 4)


def test_gradients_flow_and_errors() -> None:
    un = UnsharedConv2d(2, 3, 3, (4, 4), padding=1, bias=False)
    un(torch.randn(1, 2, 2, 4, 4)).sum().backward()
    assert un.weight.grad is not None and un.weight.grad.shape == (3, 2, 3, 3, 4, 4)
    with pytest.raises(ValueError, match="built for inputs of size"):
        un(torch.randn(1, 2, 2, 5, 5))
    with pytest.raises(ValueError, match="time-first"):
        un(torch.randn(2, 2, 4, 4))
    with pytest.raises(ValueError, match="does not fit"):
        UnsharedConv2d(2, 3, 5, (3, 3))
    with pytest.raises(ValueError, match="zero-padded"):
        UnsharedConv2d.from_conv(Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), (4, 4))


def test_depthwise_groups_equal_grouped_conv() -> None:
    torch.manual_seed(1)
    un = UnsharedConv2d(4, 4, 3, (5, 5), stride=2, padding=1, bias=False, groups=4)
    k = torch.randn(4, 1, 3, 3)
    with torch.no_grad():
        un.weight.copy_(k[..., None, None].expand_as(un.weight))
    x = torch.randn(2, 3, 4, 5, 5)
    ref = F.conv2d(x.flatten(0, 1), k, None, 2, 1, groups=4).reshape(2, 3, 4, 3, 3)
    assert torch.allclose(un(x), ref, atol=1e-5)
    with pytest.raises(ValueError, match="groups=3 must divide"):
        UnsharedConv2d(4, 4, 3, (5, 5), groups=3)
