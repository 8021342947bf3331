"""Streaming, single-step inference: feed one time step at a time and carry the neuron state yourself.

A call on a whole sequence `[T, B, ...]` always starts from a fresh membrane. For online use (a sensor that delivers
one frame at a time) every neuron has `step(x_t, state) -> (spikes_t, new_state)`: the state is an explicit value,
nothing is hidden in the module. This example checks that stepping reproduces the sequence call exactly.

Run: `python examples/streaming.py` (`SPIKEFORGE_EXAMPLE_QUICK=1` is accepted; it is fast either way).
"""

import os

import torch
from torch import nn

import spikeforge as sf
from spikeforge import layers as L
from spikeforge import neurons as N

QUICK = os.environ.get("SPIKEFORGE_EXAMPLE_QUICK") == "1"
torch.manual_seed(0)

# --8<-- [start:net]
net = nn.Sequential(
    L.Linear(20, 32), N.LIF(decay=0.5, threshold=0.5, reset="soft"),
    L.Linear(32, 16), N.Neuron("ternary", feature_shape=(16,)),   # ternary spikes with a learnable amplitude
    L.Linear(16, 5),                                               # per-step outputs [T, B, 5]
).eval()
# --8<-- [end:net]


def stream(model: nn.Sequential, frames: torch.Tensor) -> torch.Tensor:
    """Run ``model`` one step at a time over ``frames[T, B, ...]``; returns the stacked outputs ``[T, B, ...]``."""
    # --8<-- [start:step]
    states: dict[int, object] = {}            # one state per neuron, owned by the caller
    outputs = []
    for t, x_t in enumerate(frames):          # x_t: [B, ...], e.g. the newest sensor frame
        h = x_t
        for i, layer in enumerate(model):
            if isinstance(layer, N.Neuron):
                h, states[i] = layer.step(h, states.get(i), t=t)   # t indexes per-step thresholds/statistics
            else:
                h = layer(h.unsqueeze(0))[0]  # stateless layers take [T=1, B, ...]
        outputs.append(h)
    # --8<-- [end:step]
    return torch.stack(outputs)


def main() -> float:
    T, B = (6, 3) if QUICK else (50, 16)
    x = torch.randn(T, B, 20)
    with torch.no_grad():
        whole = net(x)                # the sequence call: fresh state, all steps at once
        online = stream(net, x)
        folded = sf.fold(net)         # a folded network streams the same way
        online_folded = stream(folded, x)
    dev = (whole - online).abs().max().item()
    print(f"T={T}: streaming vs sequence max |difference| {dev:.1e}; "
          f"folded network streaming: max |difference| {(online_folded - online).abs().max().item():.1e}")
    assert dev < 1e-6
    return dev


if __name__ == "__main__":
    main()
