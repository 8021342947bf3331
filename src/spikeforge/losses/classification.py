"""Classification objectives on per-step logits ``z[T, B, K]``: cross-entropy on the readout, and TET.

* ``ce`` — ``CE(readout_T(z), y)`` with ``readout`` ``mean`` (most methods) or ``sum`` (Joint A-SNN), optional
  label smoothing. ``readout="log_softmax_mean"`` is the official Spiking PointNet readout (arXiv:2310.06232,
  docs/methods/pointnet_scheme.md): per-step log-softmax averaged over T, ``p̄ = (1/T) Σ_t log_softmax(z_t)``, and
  the loss is NLL on it, ``−p̄_y`` (with label smoothing ε: ``−(1 − ε)·p̄_y − (ε/K) Σ_k p̄_k``). At T = 1 this is
  the cross-entropy of the logits; at T > 1 it differs from ``CE(mean_t z_t)`` (``p̄`` is not renormalised).
* ``tet`` — Temporal Efficient Training (Deng et al., ICLR 2022, arXiv:2202.11946): cross-entropy at every step
  plus an MSE regulariser pulling every step's logits towards a constant φ:

  ``L = (1 − λ)·(1/T) Σ_t CE(z_t, y) + λ·(1/T) Σ_t MSE(z_t, φ)``, MSE averaged over batch and classes.

  Defaults λ = 1e-3, φ = 1.0 are the official code's defaults (brain-intelligence-lab/temporal_efficient_training,
  ``--lamb 1e-3 --means 1.0``); ``mse_weight=0`` gives pure per-step CE. Evaluation averages logits over T.

Both take ``feature_transform_weight`` (w): ``L += w·model.feature_transform_regularizer()`` — PointNet's
``mean ‖I − A Aᵀ‖_F`` on the feature transform of the same forward call (Spiking PointNet uses w = 0.001,
methods.md §2). The objective's forward then returns a :class:`RegularizedOutput`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..encode import readout as _readout
from .base import Membranes, Objective, check_logits, check_readout, register_objective, reject_unknown

__all__ = ["CrossEntropyObjective", "RegularizedOutput", "TETObjective", "readout_loss", "tet_loss"]


@dataclass
class RegularizedOutput:
    """Per-step logits and the model's regulariser from the same forward call."""

    logits: Tensor
    regularizer: Tensor


def readout_loss(z: Tensor, target: Tensor, readout: str, label_smoothing: float = 0.0,
                 reduction: str = "mean") -> Tensor:
    """Loss of a readout ``z[B, K]``: cross-entropy of logits (``mean``/``sum`` readouts), or NLL of the averaged
    log-probabilities (``log_softmax_mean``), both with optional label smoothing."""
    if readout != "log_softmax_mean":
        return F.cross_entropy(z, target, label_smoothing=label_smoothing, reduction=reduction)
    nll = F.nll_loss(z, target, reduction=reduction)
    if not label_smoothing:
        return nll
    smooth = -z.mean(-1)
    smooth = smooth.mean() if reduction == "mean" else smooth.sum() if reduction == "sum" else smooth
    return (1.0 - label_smoothing) * nll + label_smoothing * smooth


def _check_target(target: Tensor, logits: Tensor) -> None:
    if target.ndim != 1 or target.shape[0] != logits.shape[1]:
        raise ValueError(f"target must be class indices [B] with B = {logits.shape[1]}, got shape "
                         f"{tuple(target.shape)}")


class CrossEntropyObjective(Objective):
    """``CE(readout(z), y)``; ``readout`` is ``mean`` or ``sum`` over T (explicit, recorded)."""

    name = "ce"

    def __init__(self, readout: str = "mean", label_smoothing: float = 0.0, feature_transform_weight: float = 0.0):
        self.readout = check_readout(readout)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        if feature_transform_weight < 0:
            raise ValueError(f"feature_transform_weight must be >= 0, got {feature_transform_weight}")
        self.feature_transform_weight = float(feature_transform_weight)

    def forward(self, model: nn.Module, x: Tensor) -> Any:
        out = model(x)
        if not self.feature_transform_weight:
            return out
        inner = getattr(model, "module", model)  # DistributedDataParallel wraps the model
        regularizer = getattr(inner, "feature_transform_regularizer", None)
        if regularizer is None:
            raise ValueError(f"feature_transform_weight needs a model with feature_transform_regularizer() "
                             f"(PointNet); {type(inner).__name__} has none")
        return RegularizedOutput(out, regularizer())

    def logits(self, outputs: Any) -> Tensor:
        return super().logits(outputs.logits if isinstance(outputs, RegularizedOutput) else outputs)

    def _add_regularizer(self, total: Tensor, outputs: Any, parts: dict[str, float]) -> Tensor:
        if not isinstance(outputs, RegularizedOutput):
            return total
        parts["feature_transform_reg"] = float(outputs.regularizer.detach())
        return total + self.feature_transform_weight * outputs.regularizer

    def classification_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        check_logits(logits)
        _check_target(target, logits)
        return readout_loss(_readout(logits, self.readout), target, self.readout, self.label_smoothing)

    def loss(self, outputs: Any, target: Tensor, *, membranes: Membranes | None = None,
             progress: float = 0.0) -> tuple[Tensor, dict[str, float]]:
        ce = self.classification_loss(self.logits(outputs), target)
        parts = {"ce": float(ce.detach())}
        return self._add_regularizer(ce, outputs, parts), parts

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "readout": self.readout, "label_smoothing": self.label_smoothing,
                "feature_transform_weight": self.feature_transform_weight}


def tet_loss(logits: Tensor, target: Tensor, mse_weight: float = 1e-3, mse_target: float = 1.0,
             label_smoothing: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """TET (arXiv:2202.11946): ``(1 − λ)·mean_t CE(z_t, y) + λ·mean_t MSE(z_t, φ)``.

    Returns ``(total, per-step CE term, MSE term)``.
    """
    check_logits(logits)
    _check_target(target, logits)
    T, B, K = logits.shape
    # CE per step, averaged over the batch, then over t == CE over the flattened (T·B) batch
    ce = F.cross_entropy(logits.reshape(T * B, K), target.repeat(T), label_smoothing=label_smoothing)
    if mse_weight == 0.0:
        return ce, ce, ce.new_zeros(())
    mse = (logits - mse_target).pow(2).mean()
    return (1.0 - mse_weight) * ce + mse_weight * mse, ce, mse


class TETObjective(CrossEntropyObjective):
    """Temporal Efficient Training: per-step CE + λ·MSE towards φ (see the module docstring)."""

    name = "tet"

    def __init__(self, mse_weight: float = 1e-3, mse_target: float = 1.0, label_smoothing: float = 0.0,
                 readout: str = "mean", feature_transform_weight: float = 0.0):
        super().__init__(readout, label_smoothing, feature_transform_weight)
        if not 0.0 <= mse_weight <= 1.0:
            raise ValueError(f"TET mse_weight (lambda) must lie in [0, 1], got {mse_weight}")
        self.mse_weight, self.mse_target = float(mse_weight), float(mse_target)

    def classification_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return tet_loss(logits, target, self.mse_weight, self.mse_target, self.label_smoothing)[0]

    def loss(self, outputs: Any, target: Tensor, *, membranes: Membranes | None = None,
             progress: float = 0.0) -> tuple[Tensor, dict[str, float]]:
        total, ce, mse = tet_loss(self.logits(outputs), target, self.mse_weight, self.mse_target,
                                  self.label_smoothing)
        parts = {"tet_ce": float(ce.detach()), "tet_mse": float(mse.detach())}
        return self._add_regularizer(total, outputs, parts), parts

    def config(self) -> dict[str, Any]:
        return {**super().config(), "mse_weight": self.mse_weight, "mse_target": self.mse_target}


_CE_OPTS = {"readout", "label_smoothing", "feature_transform_weight"}
_TET_OPTS = _CE_OPTS | {"mse_weight", "mse_target"}


@register_objective("ce")
def _build_ce(**opts: Any) -> CrossEntropyObjective:
    reject_unknown("ce", opts, _CE_OPTS)
    return CrossEntropyObjective(**opts)


@register_objective("tet")
def _build_tet(**opts: Any) -> TETObjective:
    reject_unknown("tet", opts, _TET_OPTS)
    return TETObjective(**opts)


BASES = {"ce": (CrossEntropyObjective, _CE_OPTS), "tet": (TETObjective, _TET_OPTS)}
