"""The model-entry input check: one place that rejects a bad batch before any layer (BatchNorm running statistics
included) can change state."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..functional import NonFiniteError
from ..neurons import input_validation_enabled

__all__ = ["check_model_input", "expected_layout"]

_LAYOUTS = {
    "static": (5, "[T, B, {C}, H, W]", "encode a static batch [B, C, H, W] with spikeforge.encode.direct(x, T)"),
    "events": (5, "[T, B, {C}, H, W]", "event frames from spikeforge.data are [B, T, 2, H, W]: use "
                                       "spikeforge.encode.time_first(x)"),
    "points": (4, "[T, B, {C}, N]", "repeat a point batch [B, 3, N] with spikeforge.encode.direct(x, T)"),
}


def expected_layout(model: nn.Module) -> tuple[int | None, str, str]:
    """``(ndim or None, layout text such as "points [T, B, 3, N]", hint)`` of the input a model takes
    (``input_ndim = None`` on the model accepts any ``[T, B, ...]``)."""
    kind = str(getattr(model, "input_kind", "static"))
    ndim, text, hint = _LAYOUTS.get(kind, (None, "[T, B, ...]", ""))
    channels = getattr(model, "in_channels", None)
    fallback = "2" if kind == "events" else "C"
    text = text.replace("{C}", str(channels) if isinstance(channels, int) else fallback)
    if getattr(model, "input_ndim", "kind") is None:
        ndim, text = None, "[T, B, ...]"
    return ndim, f"{kind} {text}", hint


def check_model_input(model: nn.Module, args: tuple[Any, ...]) -> None:
    """Entry check of every zoo model (:class:`~spikeforge.models.registry.SpikingModel`): the input must be a
    floating tensor of the model's dtype, time-first with T >= 1, the model's channel count, and finite. Raises
    ``TypeError``/``ValueError``/``NonFiniteError`` naming the model;
    :func:`spikeforge.neurons.set_input_validation` turns it off with the neurons' checks."""
    if not input_validation_enabled():
        return
    name = type(model).__name__
    if not args or not isinstance(args[0], Tensor):
        got = type(args[0]).__name__ if args else "nothing"
        raise TypeError(f"{name} takes a tensor [T, B, ...] (time first), got {got}")
    x = args[0]
    ndim, layout, hint = expected_layout(model)
    if not x.is_floating_point():
        raise TypeError(f"{name} takes floating-point input {layout}, got dtype {x.dtype}; convert with x.float() "
                        "(images scaled to [0, 1] or normalised)")
    ref = next((p for p in model.parameters() if p.is_floating_point()), None)
    if ref is not None and x.dtype != ref.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"{name} has {ref.dtype} parameters but the input is {x.dtype}; convert the input "
                        f"(x.to({ref.dtype})) or the model (model.to({x.dtype}))")
    if (ndim is not None and x.ndim != ndim) or x.ndim < 3:
        raise ValueError(f"{name} expects input {layout} (time first), got shape {tuple(x.shape)}"
                         + (f"; {hint}" if hint else ""))
    if x.shape[0] == 0:
        raise ValueError(f"{name} got T = 0 time steps (shape {tuple(x.shape)}); a sequence needs T >= 1")
    channels = getattr(model, "in_channels", None)
    if isinstance(channels, int) and ndim is not None and x.shape[2] != channels:
        raise ValueError(f"{name} expects {layout} (built for {channels} input channel(s)), got shape "
                         f"{tuple(x.shape)}")
    if not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise NonFiniteError(f"input to {name} contains {bad} NaN/Inf value(s) (shape {tuple(x.shape)}); "
                             "rejected before any layer ran, so no state (BatchNorm running statistics) changed")
