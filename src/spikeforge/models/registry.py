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

from ..neurons import Neuron, NeuronConfig, neuron_config
from ..registry import Registry
from ._input import check_model_input

__all__ = ["register_model", "create_model", "list_models", "model_entry", "SpikingModel", "to_ann"]

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
    """Build a registered model. Unknown options raise an error listing the valid ones.

    ``ann=True`` returns the same network as a non-spiking ANN (:func:`to_ann`): the reference every SNN of that
    shape is compared with."""
    factory = model_entry(name)
    ann = cfg.pop("ann", False)
    if not isinstance(ann, bool):
        raise ValueError(f"model option ann must be true or false, got {ann!r}")
    neuron_opts = {k: cfg.pop(k) for k in list(cfg) if k in _NEURON_KEYS}
    neuron = cfg.pop("neuron", None)
    if neuron is not None or neuron_opts:
        cfg["neuron"] = neuron_config(neuron, **neuron_opts)
    params = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(cfg) - set(params))
        if unknown:
            raise ValueError(f"model {name!r} has no option(s) {unknown}; valid: "
                             f"{sorted(set(params) | _NEURON_KEYS | {'ann'})}")
    model = factory(**cfg)
    return to_ann(model, name) if ann else model


def to_ann(model: nn.Module, name: str | None = None) -> nn.Module:
    """The same network as an ANN, in place: every spiking neuron becomes a ReLU ``max(x, 0)`` applied to its input
    (no membrane, no threshold, no time dependence), every other layer and parameter is kept.

    Run with T = 1 (direct encoding), the model is then exactly the conventional ANN of that architecture: the
    baseline an SNN of the same shape is measured against. Models whose neurons are not plain
    :class:`~spikeforge.neurons.Neuron` children (e.g. the dual-mode Joint A-SNN, which has its own ANN branch)
    are refused."""
    what = f"model {name!r}" if name else type(model).__name__
    if not hasattr(model, "input_kind"):
        raise ValueError(f"{what} is not a spikeforge model (no input_kind)")
    if hasattr(model, "forward_joint"):
        raise ValueError(f"{what} is a dual-mode ANN/SNN model; use its own ANN branch instead of ann=True")
    targets = [(n, m) for n, m in model.named_modules() if isinstance(m, Neuron)]
    if not targets:
        raise ValueError(f"{what} has no spiking neuron to replace; ann=True needs a spiking model")
    for qualified, _ in targets:
        parent_name, _, child = qualified.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, nn.ReLU())
    return model


def _import_zoo() -> None:
    from . import _zoo  # noqa: F401  (registers the architectures)
