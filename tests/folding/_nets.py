"""Small trained test networks for the fold tests: a stem, a residual block with an identity shortcut, a
downsampling residual block, flatten and a linear read-out."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spikeforge.layers import BasicBlock, Conv2d, Flatten, Linear, TDBatchNorm2d, make_neuron, make_norm
from spikeforge.neurons import Amplitude, MembraneBN

T, B, CIN, HW, C, CLASSES = 3, 6, 2, (6, 6), 4, 5


def make_net(neuron: Any, *, style: str = "standard", norm: str = "bn") -> nn.Sequential:
    return nn.Sequential(
        Conv2d(CIN, C, 3, 1, 1, bias=False), make_norm(norm, C, 8), make_neuron(neuron, C, HW),
        BasicBlock(C, C, 1, neuron, style=style, norm=norm, hw=HW, max_steps=8),
        BasicBlock(C, 2 * C, 2, neuron, style=style, norm=norm, hw=HW, max_steps=8),
        Flatten(), Linear(2 * C * 3 * 3, CLASSES),
    )


def inputs(seed: int = 0, batch: int = B) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, batch, CIN, *HW, generator=g) * 1.5


def perturb(model: nn.Module, seed: int = 1, amp_low: float = 0.4, amp_high: float = 1.6) -> None:
    """Move amplitudes, BN affines and MPBN affines away from their initial values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Amplitude):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * (amp_high - amp_low) + amp_low)
            elif isinstance(m, MembraneBN):
                m.weight.copy_(0.6 + 0.8 * torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None:
                gain = 1.0 / (m.alpha * m.v_th) if isinstance(m, TDBatchNorm2d) else 1.0  # undo tdBN's α·V_th
                m.weight.copy_(gain * (0.7 + 0.6 * torch.rand(m.weight.shape, generator=g)))
                m.bias.copy_(0.3 + 0.1 * torch.randn(m.bias.shape, generator=g))


def train_steps(model: nn.Module, steps: int = 4, seed: int = 0, lr: float = 0.05) -> nn.Module:
    """A few SGD steps on random data so BN statistics, amplitudes and weights are non-trivial."""
    torch.manual_seed(seed)
    perturb(model, seed + 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    for step in range(steps):
        x = inputs(100 + step)
        y = torch.randint(0, CLASSES, (B,), generator=torch.Generator().manual_seed(step))
        loss = F.cross_entropy(model(x).mean(0), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()
