"""Folded models of every CPU-scale recipe at tiny widths, with non-trivial BN/MPBN/amplitude parameters."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import spikeforge
from spikeforge.models import create_model
from spikeforge.neurons import Amplitude, MembraneBN
from spikeforge.train.config import load_recipe

# per recipe: model overrides (tiny widths) and the per-sample input shape
RECIPES: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "quickstart": ({"widths": (4, 6), "input_size": (8, 8)}, (1, 8, 8)),
    "ternary-fmnist": ({"widths": (4, 6), "in_channels": 1, "input_size": (8, 8)}, (1, 8, 8)),
    "realspike-fmnist": ({"widths": (4, 6), "in_channels": 1, "input_size": (8, 8)}, (1, 8, 8)),
    "mpbn-fmnist": ({"widths": (4, 6), "in_channels": 1, "input_size": (8, 8)}, (1, 8, 8)),
    "rmploss-fmnist": ({"widths": (4, 6), "in_channels": 1, "input_size": (8, 8)}, (1, 8, 8)),
    "softreset-mpr-fmnist": ({"widths": (4, 6), "in_channels": 1, "input_size": (8, 8)}, (1, 8, 8)),
    "joint-asnn-fmnist": ({"width": 0.0625, "in_channels": 1, "input_size": (8, 8), "num_classes": 10},
                          (1, 8, 8)),
    "pointnet-points": ({"width": 0.0625, "num_points": 16, "num_classes": 10}, (3, 16)),
    "dvs-events": ({"widths": (4, 6), "in_channels": 2, "input_size": (8, 8), "num_classes": 10}, (2, 8, 8)),
}


def perturb(model: nn.Module, seed: int = 1) -> None:
    """Move BN statistics/affines, MPBN and amplitudes away from their initial values (as training would)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Amplitude):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.4)
            elif isinstance(m, MembraneBN):
                m.weight.copy_(0.6 + 0.8 * torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
                for name, buf in m.named_buffers():
                    if "mean" in name:
                        buf.copy_(0.1 * torch.randn(buf.shape, generator=g))
                    elif "var" in name:
                        buf.copy_(0.5 + torch.rand(buf.shape, generator=g))
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                if m.weight is not None:
                    m.weight.copy_(0.7 + 0.6 * torch.rand(m.weight.shape, generator=g))
                    m.bias.copy_(0.3 + 0.1 * torch.randn(m.bias.shape, generator=g))
                if m.running_mean is not None:
                    m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                    m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))


def recipe_model(name: str) -> tuple[nn.Module, tuple[int, ...], int]:
    """``(training model in eval mode, per-sample input shape, T)`` of a bundled recipe at tiny width."""
    recipe = load_recipe(name)
    overrides, shape = RECIPES[name]
    cfg = dict(recipe["model"])
    model_name = cfg.pop("name")
    cfg.update(overrides)
    torch.manual_seed(0)
    model = create_model(model_name, **cfg)
    perturb(model)
    return model.eval(), shape, int(recipe.get("T", 2))


def folded_recipe_model(name: str) -> tuple[nn.Module, nn.Module, tuple[int, ...], int]:
    model, shape, T = recipe_model(name)
    return model, spikeforge.fold(model), shape, T


def sample(shape: tuple[int, ...], T: int, B: int = 3, seed: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((T, B) + shape, generator=g) * 1.5


# a small residual net: stem, an identity-shortcut block, a downsampling block, flatten, linear read-out
NET_T, NET_CIN, NET_HW = 3, 2, (6, 6)


def make_net(neuron: Any, *, style: str = "standard", norm: str = "bn") -> nn.Sequential:
    from spikeforge.layers import BasicBlock, Conv2d, Flatten, Linear, make_neuron, make_norm

    C = 4
    torch.manual_seed(0)
    net = nn.Sequential(
        Conv2d(NET_CIN, C, 3, 1, 1, bias=False), make_norm(norm, C, 8), make_neuron(neuron, C, NET_HW),
        BasicBlock(C, C, 1, neuron, style=style, norm=norm, hw=NET_HW, max_steps=8),
        BasicBlock(C, 2 * C, 2, neuron, style=style, norm=norm, hw=NET_HW, max_steps=8),
        Flatten(), Linear(2 * C * 3 * 3, 5),
    )
    perturb(net)
    _perturb_per_step(net)
    return net.eval()


def _perturb_per_step(model: nn.Module) -> None:
    """Per-step norms (BNTT/TEBN) and per-step MPBN statistics get different values per step."""
    from spikeforge.layers import BNTT2d, TEBN2d

    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (BNTT2d, TEBN2d)):
                for p in m.parameters():
                    p.copy_(0.7 + 0.6 * torch.rand(p.shape, generator=g))
                for name, buf in m.named_buffers():
                    if "var" in name:
                        buf.copy_(0.5 + torch.rand(buf.shape, generator=g))
                    elif "mean" in name:
                        buf.copy_(0.1 * torch.randn(buf.shape, generator=g))


def net_inputs(seed: int = 0, batch: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((NET_T, batch, NET_CIN) + NET_HW, generator=g) * 1.5
