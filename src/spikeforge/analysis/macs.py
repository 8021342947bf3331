"""The one dense multiply-accumulate count of a model, measured on the real modules with forward hooks.

Every synaptic layer (:class:`~spikeforge.layers.synaptic.Synaptic`: conv, linear, unshared conv, Joint A-SNN's
dual-mode layers) adds ``output elements × fan-in`` per call; modules with multiply-accumulates of their own
(:class:`~spikeforge.layers.synaptic.MacCounted`: PointNet's learned point transforms) add their ``mac_count``.
Biases, BN, pooling and neuron updates are not counted. :func:`total_macs` counts all of one input ``[T, B, ...]``;
:func:`count_macs` divides by ``T·B`` (one sample, one time step = the ANN-equivalent). ``spikeforge models``,
``spikeforge energy`` (its ``ann_macs``, through :class:`~spikeforge.analysis.Monitor`, which counts the same
modules) and the trainer's metrics all use this count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..layers.synaptic import call_macs, is_mac_counted, is_synaptic

__all__ = ["MacCount", "count_macs", "total_macs", "counted_modules"]


def counted_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(qualified name, module)`` of every module whose operations are counted, in model order."""
    return [(n, m) for n, m in model.named_modules() if is_synaptic(m) or is_mac_counted(m)]


def _first_device(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def _per_layer(model: nn.Module, x: Tensor) -> dict[str, int]:
    counts: dict[str, int] = {}
    handles = []
    for name, mod in counted_modules(model):
        counts[name] = 0

        def hook(m: nn.Module, args: tuple[Any, ...], out: Any, _n: str = name) -> None:
            n = call_macs(m, args, out)
            if n is not None:
                counts[_n] += n

        handles.append(mod.register_forward_hook(hook))
    was_training = model.training
    model.eval()  # shapes do not depend on the mode; eval keeps BN usable on a single sample
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return counts


def total_macs(model: nn.Module, x: Tensor, per_layer: bool = False) -> int | dict[str, int]:
    """Dense MACs of ``model(x)`` over all of ``x[T, B, ...]`` (run in eval mode without gradients; the mode is
    restored). ``per_layer=True`` returns ``{qualified layer name: MACs}`` instead of the total."""
    counts = _per_layer(model, x)
    return counts if per_layer else sum(counts.values())


@dataclass
class MacCount:
    """Dense MACs of every counted layer for **one sample and one time step** (= the ANN-equivalent)."""

    layers: dict[str, int]
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {"layers": dict(self.layers), "total": self.total}


def count_macs(model: nn.Module, x: Tensor | tuple[int, ...]) -> MacCount:
    """Dense MACs per layer for one sample and one time step, measured by running the model once.

    ``x`` is an input ``[T, B, ...]`` (counts are divided by T·B) or a per-sample shape such as ``(3, 32, 32)``
    (a zero input ``[1, 1, *shape]`` on the model's device is used).
    """
    if not isinstance(x, Tensor):
        shape = tuple(int(v) for v in x)
        if not shape or min(shape) < 1:
            raise ValueError(f"a per-sample input shape needs positive sizes, got {x!r}")
        x = torch.zeros((1, 1) + shape, device=_first_device(model))
    if x.ndim < 3:
        raise ValueError(f"count_macs expects a time-first input [T, B, ...], got shape {tuple(x.shape)}")
    steps = int(x.shape[0]) * int(x.shape[1])
    per = {k: v // steps for k, v in _per_layer(model, x).items()}
    return MacCount(per, sum(per.values()))
