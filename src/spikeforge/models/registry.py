"""Model registry: ``@register_model`` factories, ``create_model(name, **cfg)``, ``list_models()`` (like timm).

Every model maps ``[T, B, ...]`` to per-step logits ``[T, B, num_classes]``. Neuron options may be given as
``neuron=<preset | dict | NeuronConfig>`` and/or directly as keyword arguments (``spike="ternary"``).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from ..neurons import NeuronConfig, neuron_config
from ..registry import Registry
from ._input import check_model_input

__all__ = ["register_model", "create_model", "list_models", "model_entry", "SpikingModel"]

F = TypeVar("F", bound=Callable[..., nn.Module])
_REGISTRY: Registry[str, Callable[..., nn.Module]] = Registry("model", hint="available:")
_NEURON_KEYS = {f.name for f in dataclasses.fields(NeuronConfig)}


class SpikingModel(nn.Module):
    """Base of the zoo: ``input_kind`` is ``static`` (direct-encoded images), ``events`` or ``points``.

    Every call first runs :func:`~spikeforge.models._input.check_model_input` (no hook: the model's hook lists
    stay the user's), so a batch of the wrong dtype, layout or with NaN/Inf is rejected before any layer changes
    state."""

    input_kind: str = "static"
    num_classes: int

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not torch.compiler.is_compiling():
            check_model_input(self, args)
        return super().__call__(*args, **kwargs)


def register_model(fn: F | None = None, *, name: str | None = None) -> Any:
    def wrap(f: F) -> F:
        _REGISTRY.add(name or f.__name__, f)
        return f

    return wrap(fn) if fn is not None else wrap


def list_models() -> list[str]:
    _import_zoo()
    return sorted(_REGISTRY)


def model_entry(name: str) -> Callable[..., nn.Module]:
    _import_zoo()
    return _REGISTRY.lookup(name)


def create_model(name: str, **cfg: Any) -> nn.Module:
    """Build a registered model. Unknown options raise an error listing the valid ones."""
    factory = model_entry(name)
    neuron_opts = {k: cfg.pop(k) for k in list(cfg) if k in _NEURON_KEYS}
    neuron = cfg.pop("neuron", None)
    if neuron is not None or neuron_opts:
        cfg["neuron"] = neuron_config(neuron, **neuron_opts)
    params = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(cfg) - set(params))
        if unknown:
            raise ValueError(f"model {name!r} has no option(s) {unknown}; valid: "
                             f"{sorted(set(params) | _NEURON_KEYS)}")
    return factory(**cfg)


def _import_zoo() -> None:
    from . import _zoo  # noqa: F401  (registers the architectures)
