"""Input encodings to the time-first layout ``[T, B, ...]`` and the readout over time.

Models always take ``[T, B, ...]`` and return per-step logits ``[T, B, classes]``; encoding happens before the
model (data pipeline / trainer), the readout after it (loss / evaluator).
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["direct", "time_first", "readout", "READOUT_MODES"]


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


READOUT_MODES = ("mean", "sum", "log_softmax_mean")


def readout(logits: Tensor, mode: str = "mean") -> Tensor:
    """Collapse per-step outputs ``[T, B, ..., K]`` over time: ``mean`` (most methods), ``sum`` (Joint A-SNN) or
    ``log_softmax_mean`` — ``(1/T) Σ_t log_softmax(z_t)`` over the last (class) axis, the official Spiking PointNet
    readout (arXiv:2310.06232; docs/methods/pointnet_scheme.md), trained with NLL on it."""
    if logits.ndim < 2:
        raise ValueError(f"readout expects [T, B, ...], got shape {tuple(logits.shape)}")
    if logits.shape[0] == 0:
        raise ValueError(f"readout of T = 0 time steps (shape {tuple(logits.shape)}); a sequence needs T >= 1")
    if mode == "mean":
        return logits.mean(0)
    if mode == "sum":
        return logits.sum(0)
    if mode == "log_softmax_mean":
        return logits.log_softmax(-1).mean(0)
    raise ValueError(f"readout mode must be one of {list(READOUT_MODES)}, got {mode!r}")
