"""The Joint A-SNN objective (Guo et al., arXiv:2305.02099, "Joint A-SNN" loss;
``docs/methods/joint_asnn.md``; official code yfguo91/Joint-A-SNN).

With exits e ∈ {final, 1, 2, 3}, ANN logits ``z_ann^e``, SNN logits ``z_snn^e`` summed over T, pooled features
``f^e`` (SNN summed over T), temperature τ = 3, α = 0.1, β = 1e-6::

    L = (1 − α)·Σ_e [CE(z_ann^e, y) + CE(z_snn^e, y)]
      + α·τ²·[ Σ_{i=1..3} KD(z_ann^i ← z_ann^final) + Σ_{i=1..3} KD(z_snn^i ← z_ann^i) + KD(z_snn^final ← z_ann^final) ]
      + β·Σ_e Σ_elements (f_snn^e − f_ann^e)² · 1[f_snn^e > 0 ∨ f_ann^e > 0]

``KD(s ← t) = −mean_batch Σ_c softmax(t/τ)_c · log softmax(s/τ)_c`` (soft cross-entropy), every teacher
(logits and features) detached. The feature term is a sum over batch and channels (hence the tiny β).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models import ModelOutput
from .base import Membranes, Objective, check_logits, register_objective, reject_unknown

__all__ = ["JointASNNObjective", "joint_asnn_loss", "kd_soft_ce"]


def kd_soft_ce(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """``−mean_batch Σ_c softmax(teacher/τ)_c · log softmax(student/τ)_c`` with the teacher detached."""
    p_t = F.softmax(teacher.detach() / temperature, dim=-1)
    return -(p_t * F.log_softmax(student / temperature, dim=-1)).sum(-1).mean()


def joint_asnn_loss(ann_logits: list[Tensor], snn_logits: list[Tensor], ann_features: list[Tensor],
                    snn_features: list[Tensor], target: Tensor, alpha: float = 0.1, temperature: float = 3.0,
                    beta: float = 1e-6) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss above. Lists are ordered ``[final, exit1, exit2, exit3]``; SNN entries already summed over T
    (``[B, K]`` / ``[B, C]``). Returns the total and its parts ``ce``, ``kd``, ``feature``."""
    n = len(ann_logits)
    if not (len(snn_logits) == len(ann_features) == len(snn_features) == n) or n < 1:
        raise ValueError("ANN/SNN logits and features must be equally long lists [final, exit1, ...]")
    ce = sum(F.cross_entropy(za, target) + F.cross_entropy(zs, target) for za, zs in zip(ann_logits, snn_logits))
    kd = kd_soft_ce(snn_logits[0], ann_logits[0], temperature)
    for i in range(1, n):
        kd = kd + kd_soft_ce(ann_logits[i], ann_logits[0], temperature)
        kd = kd + kd_soft_ce(snn_logits[i], ann_logits[i], temperature)
    feat = snn_logits[0].new_zeros(())
    for fa, fs in zip(ann_features, snn_features):
        fa = fa.detach()
        mask = ((fs > 0) | (fa > 0)).to(fs.dtype)
        feat = feat + ((fs - fa).pow(2) * mask).sum()
    total = (1.0 - alpha) * ce + alpha * temperature ** 2 * kd + beta * feat
    return total, {"ce": ce, "kd": kd, "feature": feat}  # type: ignore[dict-item]


class JointASNNObjective(Objective):
    """Runs both branches of a :class:`~spikeforge.models.joint_asnn.JointASNN` (``model.forward_joint``) and
    applies :func:`joint_asnn_loss`. Accuracy: SNN final exit, logits summed over T (readout ``sum``)."""

    name = "joint_asnn"
    readout = "sum"

    def __init__(self, alpha: float = 0.1, temperature: float = 3.0, beta: float = 1e-6):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.alpha, self.temperature, self.beta = float(alpha), float(temperature), float(beta)

    def forward(self, model: Any, x: Tensor) -> Any:
        """``model(x, aux=True).aux["joint"]`` — both branches with all exits (:class:`JointOutputs`). Called through
        ``model(...)`` rather than ``model.forward_joint`` so that wrappers (DistributedDataParallel, compiled
        modules) work unchanged."""
        inner = getattr(model, "module", model)  # a DDP / DataParallel wrapper keeps the network in .module
        if not hasattr(inner, "forward_joint") and not hasattr(model, "forward_joint"):
            raise TypeError(f"the joint_asnn objective needs a dual-mode model with forward_joint() (e.g. "
                            f"create_model('joint_asnn_resnet18')), got {type(inner).__name__}")
        out = model(x, aux=True)
        if not isinstance(out, ModelOutput):
            raise TypeError(f"{type(inner).__name__}(x, aux=True) must return a ModelOutput, got {type(out).__name__}")
        return out.need("joint", "the joint_asnn objective")

    def logits(self, outputs: Any) -> Tensor:
        """SNN final-exit per-step logits ``[T, B, K]``; also accepts a plain ``model(x)`` output."""
        if isinstance(outputs, Tensor):
            return check_logits(outputs)
        snn = getattr(outputs, "snn", None)
        if snn is None:
            raise TypeError(f"expected JointOutputs (from forward_joint) or per-step logits, got "
                            f"{type(outputs).__name__}")
        return check_logits(snn.logits[0], "SNN final-exit logits")

    def loss(self, outputs: Any, target: Tensor, *, membranes: Membranes | None = None,
             progress: float = 0.0) -> tuple[Tensor, dict[str, float]]:
        ann, snn = getattr(outputs, "ann", None), getattr(outputs, "snn", None)
        if ann is None or snn is None:
            raise TypeError("the joint_asnn loss needs the JointOutputs of objective.forward(model, x)")
        snn_logits = [z.sum(0) for z in snn.logits]
        snn_features = [f.sum(0) for f in snn.features]
        total, parts = joint_asnn_loss(ann.logits, snn_logits, ann.features, snn_features, target,
                                       self.alpha, self.temperature, self.beta)
        with torch.no_grad():
            acc_ann = float((ann.logits[0].argmax(-1) == target).float().mean())
        return total, {**{k: float(v.detach()) for k, v in parts.items()}, "ann_acc": acc_ann}

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "alpha": self.alpha, "temperature": self.temperature, "beta": self.beta}


@register_objective("joint_asnn")
def _build_joint(**opts: Any) -> JointASNNObjective:
    reject_unknown("joint_asnn", opts, {"alpha", "temperature", "beta"})
    return JointASNNObjective(**opts)
