"""Model size and dense compute: parameter counts and multiply-accumulates (MACs) from the real modules.

``count_macs`` runs one forward pass with forward hooks and adds, per synaptic layer (``Conv1d/2d/3d``,
``Linear``, unshared conv), ``output elements × fan-in`` (``C_in/groups · prod(kernel)`` for a conv,
``in_features`` for a linear layer); biases, BN, pooling and neuron updates are not counted. Modules with other
multiply-accumulates (PointNet's learned point transforms) expose ``mac_count(inputs, output) -> int``.
The per-layer rule is :func:`spikeforge.analysis.ops.dense_macs` when that module is available, so the figures agree
with the analysis package's SOP/energy accounting; a local fan-in rule is the fallback.
FLOPs are conventionally ``2 × MACs``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["count_parameters", "count_macs", "example_input", "input_shape_of"]


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


def _layer_macs_rule() -> Callable[[nn.Module, Tensor], int | None]:
    try:
        from ..analysis.ops import dense_macs, is_synaptic, synaptic_geometry
    except ImportError:  # pragma: no cover - depends on the installed tree
        dense_macs = is_synaptic = synaptic_geometry = None  # type: ignore[assignment]

    def rule(m: nn.Module, out: Tensor) -> int | None:
        if is_synaptic is not None and is_synaptic(m):
            return dense_macs(synaptic_geometry(m), out)
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return int(out.numel()) * (m.in_channels // m.groups) * math.prod(m.kernel_size)
        if isinstance(m, nn.Linear):
            return int(out.numel()) * m.in_features
        return None

    return rule


def count_macs(model: nn.Module, x: Tensor, per_layer: bool = False) -> int | dict[str, int]:
    """Dense MACs of ``model(x)`` (all of ``x``: divide by ``T·B`` for one sample and step), run in eval mode
    without gradients (the model's mode is restored).

    ``per_layer=True`` returns ``{qualified layer name: MACs}`` instead of the total.
    """
    rule = _layer_macs_rule()
    counts: dict[str, int] = {}
    handles = []

    def hook_for(name: str):
        def hook(m: nn.Module, inputs: tuple, out: Tensor) -> None:
            custom = getattr(m, "mac_count", None)
            n = custom(inputs, out) if callable(custom) else rule(m, out)
            if n is not None:
                counts[name] = counts.get(name, 0) + int(n)
        return hook

    for name, m in model.named_modules():
        handles.append(m.register_forward_hook(hook_for(name)))
    was_training = model.training
    model.eval()  # shapes do not depend on the mode; eval keeps BN usable on a single sample
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return counts if per_layer else sum(counts.values())


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
