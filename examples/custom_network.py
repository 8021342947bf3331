"""Build your own spiking network from `spikeforge.layers` and `spikeforge.neurons`, train it, fold it.

Every layer takes and returns time-first tensors `[T, B, ...]`; a neuron module runs the whole sequence from a
fresh membrane on each call. Run: `python examples/custom_network.py` (`SPIKEFORGE_EXAMPLE_QUICK=1` for a few
seconds).
"""

import os

import torch
from sklearn.datasets import load_digits
from torch import nn

import spikeforge as sf
from spikeforge import layers as L
from spikeforge import neurons as N

QUICK = os.environ.get("SPIKEFORGE_EXAMPLE_QUICK") == "1"
torch.manual_seed(0)
T = 4

# --8<-- [start:net]
def spiking_cnn(num_classes: int = 10) -> nn.Sequential:
    """conv-BN-neuron twice, pooling, a linear readout; ternary spikes with MPBN (Ternary Spike + MPBN)."""
    neuron = {"preset": "ternary", "pre_fire": "mpbn"}  # any NeuronConfig options, or a preset name
    return nn.Sequential(
        L.Conv2d(1, 16, 3, padding=1, bias=False), L.BatchNorm2d(16),
        N.Neuron(neuron, feature_shape=(16, 8, 8)),   # MPBN / channel amplitudes need the per-sample shape
        L.AvgPool2d(2),
        L.Conv2d(16, 32, 3, padding=1, bias=False), L.BatchNorm2d(32),
        N.Neuron(neuron, feature_shape=(32, 4, 4)),
        L.AvgPool2d(2), L.Flatten(),
        L.Linear(32 * 2 * 2, num_classes),                # per-step logits [T, B, classes]
    )
# --8<-- [end:net]


def main() -> float:
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # [N, 1, 8, 8] in [0, 1]
    y = torch.tensor(digits.target)
    n_train = 256 if QUICK else 1400
    x_train, y_train, x_test, y_test = x[:n_train], y[:n_train], x[1400:], y[1400:]

    model = spiking_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _epoch in range(1 if QUICK else 5):
        model.train()
        for i in range(0, n_train, 32):
            xb, yb = x_train[i:i + 32], y_train[i:i + 32]
            logits = model(sf.encode.direct(xb, T))                       # [T, B, 10]
            loss = nn.functional.cross_entropy(sf.readout(logits, "mean"), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    model.eval()
    with torch.no_grad():
        acc = (sf.readout(model(sf.encode.direct(x_test, T))).argmax(1) == y_test).float().mean().item()
    # --8<-- [start:fold]
    folded = sf.fold(model)                       # BN into conv, MPBN into thresholds, amplitudes into weights
    report = sf.verify_fold(model, folded, sf.encode.direct(x_test[:64], T))
    print(f"test accuracy {acc:.3f}; fold: max deviation {report.max_dev:.2e}, spikes equal {report.spikes_equal}")
    for name, module in folded.named_modules():
        if isinstance(module, N.Neuron):
            print(f"  {name}: {module.config.spike} spikes, amplitude folded: {module.amplitude is None}")
    # --8<-- [end:fold]
    assert report.spikes_equal
    return acc


if __name__ == "__main__":
    main()
