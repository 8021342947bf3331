"""Input encodings to the time-first layout ``[T, B, ...]`` and the readout over time.

Models always take ``[T, B, ...]`` and return per-step logits ``[T, B, classes]``; encoding happens before the
model (data pipeline / trainer), the readout after it (loss / evaluator).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

__all__ = ["direct", "time_first", "readout", "READOUTS", "READOUT_MODES", "check_readout", "INPUT_KINDS",
           "encoding_for", "for_kind", "input_kind"]

READOUTS = ("mean", "sum", "log_softmax_mean")
READOUT_MODES = READOUTS
INPUT_KINDS = ("static", "events", "points")


def check_readout(readout: str) -> str:
    """The one readout check: ``readout`` must be ``'mean'``, ``'sum'`` or ``'log_softmax_mean'`` (returned
    unchanged)."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {list(READOUTS[:2])} (the 'mean' or 'sum' of the per-step logits) or "
                         f"'log_softmax_mean' (the mean of their log-probabilities, Spiking PointNet), got {readout!r}")
    return readout


def input_kind(model: Any) -> str:
    """A model's ``input_kind`` (``static``, ``events`` or ``points``; ``static`` if unset), looking through a
    DistributedDataParallel-style ``.module`` wrapper."""
    inner = getattr(model, "module", model)
    return str(getattr(inner, "input_kind", "static"))


def encoding_for(kind: str) -> str:
    """The one input-kind -> encoding choice: ``events`` -> ``'time_first'`` (frames carry their own T),
    ``static`` / ``points`` -> ``'direct'`` (repeated T times)."""
    if kind == "events":
        return "time_first"
    if kind in ("static", "points"):
        return "direct"
    raise ValueError(f"unknown input kind {kind!r}; expected static, events or points")


def for_kind(x: Tensor, kind: str, T: int) -> Tensor:
    """Batch-first data -> time-first model input by :func:`encoding_for`: static/points repeated T times (direct
    encoding), event frames ``[B, T, 2, H, W]`` transposed to ``[T, B, 2, H, W]`` (their own T)."""
    return time_first(x) if encoding_for(kind) == "time_first" else direct(x, T)


def direct(x: Tensor, T: int) -> Tensor:
    """Direct encoding: repeat a static batch ``x[B, ...]`` T times -> ``[T, B, ...]`` (a view, no copy)."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    if x.ndim < 1:
        raise ValueError("direct encoding needs a batch tensor [B, ...]")
    return x.unsqueeze(0).expand((T,) + tuple(x.shape))


def time_first(x: Tensor) -> Tensor:
    """Batch-first sequences ``[B, T, ...]`` (event frames as stored by datasets) -> ``[T, B, ...]``."""
    if x.ndim < 2:
        raise ValueError(f"expected [B, T, ...], got shape {tuple(x.shape)}")
    return x.transpose(0, 1)




def readout(logits: Tensor, mode: str = "mean") -> Tensor:
    """Collapse per-step outputs ``[T, B, ..., K]`` over time: ``mean`` (most methods), ``sum`` (Joint A-SNN) or
    ``log_softmax_mean`` — ``(1/T) Σ_t log_softmax(z_t)`` over the last (class) axis, the official Spiking PointNet
    readout (arXiv:2310.06232; docs/methods/pointnet_scheme.md), trained with NLL on it."""
    if logits.ndim < 2:
        raise ValueError(f"readout expects [T, B, ...], got shape {tuple(logits.shape)}")
    if logits.shape[0] == 0:
        raise ValueError(f"readout of T = 0 time steps (shape {tuple(logits.shape)}); a sequence needs T >= 1")
    mode = check_readout(mode)
    if mode == "mean":
        return logits.mean(0)
    if mode == "sum":
        return logits.sum(0)
    return logits.log_softmax(-1).mean(0)
