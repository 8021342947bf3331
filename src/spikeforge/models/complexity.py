"""Model size: parameter counts, the per-sample input shape and an example input.

Dense compute (MACs) is counted in one place, :func:`spikeforge.analysis.count_macs`, from what the layers declare
about themselves (:mod:`spikeforge.layers.synaptic`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["count_parameters", "example_input", "input_shape_of"]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    seen: set[int] = set()
    n = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        n += p.numel()
    return n


def input_shape_of(model: nn.Module, factory: Callable[..., nn.Module] | None = None) -> tuple[int, ...] | None:
    """The per-sample input shape: ``model.input_shape`` if set, else derived from the factory's defaults
    (``in_channels`` + ``input_size``, or ``in_features``); None if unknown."""
    shape = getattr(model, "input_shape", None)
    if shape is not None:
        return tuple(int(v) for v in shape)
    if factory is None:
        return None
    params = inspect.signature(factory).parameters

    def default(key: str):
        p = params.get(key)
        return None if p is None or p.default is inspect.Parameter.empty else p.default

    if default("in_features") is not None:
        return (int(default("in_features")),)
    size, chans = default("input_size"), default("in_channels")
    if size is not None and chans is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        return (int(chans),) + tuple(int(v) for v in hw)
    return None


def example_input(shape: tuple[int, ...], T: int = 1, batch: int = 1, device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32) -> Tensor:
    """A zero input ``[T, batch, *shape]`` (enough for shape-driven counts such as MACs)."""
    if T < 1 or batch < 1:
        raise ValueError(f"T and batch must be >= 1, got {T}, {batch}")
    return torch.zeros((T, batch) + tuple(shape), device=device, dtype=dtype)
