"""SOP / MAC counting against hand-computed values and a brute-force reference (conv of the event map with ones)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeforge import layers
from spikeforge.analysis.ops import axis_fanout, dense_macs, sops, spike_events, synaptic_geometry


def _brute_force_sops(conv: nn.Conv2d, events: torch.Tensor) -> float:
    """Σ over outputs of the events in each receptive field: conv of the events with an all-ones kernel."""
    ones = torch.ones_like(conv.weight)
    x = events.flatten(0, -4) if events.ndim > 4 else events
    if conv.padding_mode != "zeros":
        rev = conv._reversed_padding_repeated_twice
        x = F.pad(x, rev, mode=conv.padding_mode)
        pad = 0
    else:
        pad = conv.padding
    y = F.conv2d(x.double(), ones.double(), None, conv.stride, pad, conv.dilation, conv.groups)
    return float(y.sum())


def test_axis_fanout_hand_computed_stride2_pad1():
    # 5 inputs, k=3, stride 2, pad 1 -> padded 7: rows cover {-1,0,1}, {1,2,3}, {3,4,5}
    f = axis_fanout(7, 3, 2, 1)
    assert f.tolist() == [1, 1, 2, 1, 2, 1, 1]


def test_linear_sops_binary_and_ternary_hand_computed():
    lin = layers.Linear(4, 3)
    g = synaptic_geometry(lin)
    binary = torch.tensor([[[1.0, 0, 1, 0]], [[0, 0, 0, 1]]])  # [T=2, B=1, 4]: 3 spikes
    ternary = torch.tensor([[[1.0, -1, 0, 0]], [[0, 0, -1, 0]]])  # 3 spikes, two of them -1
    assert sops(g, spike_events(binary)) == 3 * 3
    assert sops(g, spike_events(ternary)) == 3 * 3
    assert dense_macs(g, lin(binary)) == 2 * 3 * 4


def test_conv_sops_padding_stride_hand_computed():
    conv = layers.Conv2d(1, 2, 3, stride=2, padding=1, bias=False)
    s = torch.zeros(1, 1, 1, 5, 5)
    s[0, 0, 0, 0, 0] = 1  # corner: 1 output row x 1 output col, 2 channels -> 2
    s[0, 0, 0, 1, 1] = 1  # read by 2 rows x 2 cols -> 8
    s[0, 0, 0, 2, 3] = 1  # 1 row x 2 cols -> 4
    g = synaptic_geometry(conv)
    assert sops(g, spike_events(s)) == 2 + 8 + 4
    s[0, 0, 0, 4, 4] = -1  # ternary -1 spike in the far corner: 1 x 1 x 2 -> 2
    assert sops(g, spike_events(s)) == 16
    assert dense_macs(g, conv(s)) == 1 * 2 * 3 * 3 * 9  # 3x3 output, 2 channels, fan-in 9


def test_conv_all_ones_counts_every_unpadded_tap():
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    s = torch.ones(2, 3, 4, 4)
    # each output position reads (#valid rows)(#valid cols) x 3 channels; valid taps per axis: 2,3,3,2 = 10
    expected = 2 * 4 * 3 * 10 * 10
    assert sops(synaptic_geometry(conv), spike_events(s)) == expected
    assert dense_macs(synaptic_geometry(conv), conv(s)) == 2 * 4 * 16 * 27


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3, stride=1, padding=0),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
    dict(kernel_size=3, stride=3, padding=2, dilation=2),
    dict(kernel_size=3, padding="same"),
    dict(kernel_size=3, stride=2, padding=1, padding_mode="reflect"),
    dict(kernel_size=3, stride=1, padding=2, padding_mode="circular"),
    dict(kernel_size=3, stride=2, padding=1, groups=2),
])
def test_conv_sops_match_brute_force(kw):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, **kw)
    s = (torch.rand(3, 4, 9, 7) < 0.3).float() - (torch.rand(3, 4, 9, 7) < 0.1).float()  # ternary
    ev = spike_events(s)
    assert sops(synaptic_geometry(conv), ev) == _brute_force_sops(conv, ev.abs())


def test_conv1d_sops_match_brute_force():
    conv = nn.Conv1d(2, 5, 4, stride=3, padding=2)
    s = (torch.rand(2, 2, 11) < 0.5).float()
    ref = F.conv1d(s, torch.ones_like(conv.weight), None, 3, 2).sum()
    assert sops(synaptic_geometry(conv), s) == float(ref)


def test_unshared_conv_counts_like_dense_conv():
    unshared = pytest.importorskip("spikeforge.layers.unshared")
    u = unshared.UnsharedConv2d(3, 4, 3, in_size=(6, 6), stride=2, padding=1)
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    s = (torch.rand(1, 2, 3, 6, 6) < 0.4).float()
    assert sops(synaptic_geometry(u), s) == sops(synaptic_geometry(conv), s)
    assert dense_macs(synaptic_geometry(u), u(s)) == 2 * 4 * 3 * 3 * 27


def test_spike_events_rule_is_exact():
    assert spike_events(torch.tensor([0.0, 1.0, 1.0])).tolist() == [0, 1, 1]
    assert spike_events(torch.tensor([0.0, -0.7, 0.7])).tolist() == [0, 1, 1]  # ternary with amplitude
    assert spike_events(torch.tensor([0.0, 2.0, 1.0])).tolist() == [0, 2, 1]  # integer sums (SEW ADD)
    assert spike_events(torch.zeros(3)).tolist() == [0, 0, 0]
    assert spike_events(torch.tensor([0.0, 0.5, 0.25])) is None  # real-valued
    assert spike_events(torch.tensor([0.7, 0.7000001])) is None  # no tolerance
    assert spike_events(torch.tensor([float("nan"), 1.0])) is None
    assert spike_events(torch.tensor([float("inf"), 1.0])) is None


def test_non_synaptic_layer_is_rejected():
    with pytest.raises(TypeError, match="not a synaptic layer"):
        synaptic_geometry(nn.ReLU())
