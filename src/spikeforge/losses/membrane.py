"""Membrane-distribution regularisers: RMP-Loss and IM-Loss, with weight schedules over training progress.

Both act on the threshold-normalised pre-fire membranes ``m`` recorded by
:func:`spikeforge.losses.base.collect_membranes` (``m = r / (2·V_th)``, spike levels 0 and 1, firing threshold at
0.5; ternary neurons fold their symmetric levels −1, 0, 1 onto 0, 1 via ``|r|``).

**RMP-Loss** (Guo et al., ICCV 2023, arXiv:2308.06787, "RMP-Loss" section; ``docs/methods/rmp_loss.md``): the squared
quantisation error of the
membrane, i.e. the squared distance to the nearest spike level, averaged per layer and then over layers::

    L_RMP = (1/L) Σ_l mean_{t,b,i} (m_{l} − q(m_{l}))²,     q(m) = 1[m ≥ 0.5]

(``q`` uses the same ``≥`` as firing, so the nearest level is the emitted spike). Values outside [0, 1] are
penalised by their distance to 0 or 1; ``clip=True`` clamps ``m`` to [0, 1] first (out-of-range values then
cost nothing). Total: ``L = L_task + λ(p)·L_RMP``.

**IM-Loss** (Guo et al., NeurIPS 2022; survey arXiv:2305.19725, loss menu; ``docs/methods/losses.md``): information
maximisation
by pushing each layer's firing probability towards 0.5, i.e. its mean normalised membrane towards a target::

    L_IM = (1/L) Σ_l (mean_{t,b,i} m_l − μ*)²

``target="code"`` (default) uses μ* = 0.5/T as in the group's released code (yfguo91/IM-Loss,
models/distrloss_layer.py, coefficient 0.005 constant); ``target="threshold"`` uses μ* = 0.5, the membrane
mean at the firing threshold (the code's commented alternative). The released code applies it to the input of
each residual block's output neuron; here it applies to every spiking layer (restrict with ``layers=<regex>``).

**Schedules** of the weight over training progress p ∈ [0, 1] (p = e/N), all with λ(0) = λ0:

* ``constant``: λ0
* ``linear``:   λ0·(1 − p)            (= λ0·(N − e)/N; the disabled line in yfguo91/MPBN main_train.py)
* ``cosine``:   λ0·(1 + cos(π·p))/2   (the IM-Loss code's disabled ``0.05·(1 + cos(π e/N))`` is λ0 = 0.1 here)
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import Tensor

from .base import Membranes, Objective, check_progress, register_objective, reject_unknown
from .classification import BASES

__all__ = [
    "SCHEDULES", "schedule_weight", "rmp_loss", "rmp_layer_loss", "im_loss", "MembraneRegularisedObjective",
    "RMPObjective", "IMObjective",
]

SCHEDULES = ("constant", "linear", "cosine")


def schedule_weight(weight: float, schedule: str, progress: float) -> float:
    """λ(p) for the schedules above."""
    p = check_progress(progress)
    if schedule == "constant":
        return float(weight)
    if schedule == "linear":
        return float(weight) * (1.0 - p)
    if schedule == "cosine":
        return float(weight) * (1.0 + math.cos(math.pi * p)) / 2.0
    raise ValueError(f"unknown schedule {schedule!r}; choose one of {list(SCHEDULES)}")


def rmp_layer_loss(m: Tensor, clip: bool = False) -> Tensor:
    """mean((m − q(m))²) for one layer's normalised membrane, q(m) = 1[m ≥ 0.5]."""
    if clip:
        m = m.clamp(0.0, 1.0)
    nearest = (m >= 0.5).to(m.dtype)  # constant w.r.t. m: the gradient is 2(m − q), towards the level
    return (m - nearest).pow(2).mean()


def _select(membranes: Membranes | None, pattern: re.Pattern[str] | None, who: str) -> list[Tensor]:
    if membranes is None:
        raise ValueError(f"{who} needs the spiking layers' membranes: run objective.forward(model, x) inside "
                         "`with objective.observe(model) as membranes:` and pass membranes=membranes")
    picked = [m for name, m in membranes if pattern is None or pattern.search(name)]
    if not picked:
        # with membranes recorded, nothing is picked only when a pattern filtered everything out
        what = "no spiking-neuron calls were recorded" if not membranes or pattern is None else \
            f"no recorded layer matches layers={pattern.pattern!r} (recorded: {sorted({n for n, _ in membranes})})"
        raise ValueError(f"{who}: {what}")
    return picked


def rmp_loss(membranes: Membranes, clip: bool = False, layers: str | None = None) -> Tensor:
    """L_RMP: per-layer mean squared distance to the nearest spike level, averaged over layers."""
    picked = _select(membranes, re.compile(layers) if layers else None, "RMP-Loss")
    return torch.stack([rmp_layer_loss(m, clip) for m in picked]).mean()


def im_loss(membranes: Membranes, target: str = "code", layers: str | None = None) -> Tensor:
    """L_IM: per-layer (mean(m) − μ*)², averaged over layers; μ* = 0.5/T (``code``) or 0.5 (``threshold``)."""
    if target not in ("code", "threshold"):
        raise ValueError(f"IM-Loss target must be 'code' (0.5/T) or 'threshold' (0.5), got {target!r}")
    picked = _select(membranes, re.compile(layers) if layers else None, "IM-Loss")
    terms = []
    for m in picked:
        mu = 0.5 / m.shape[0] if target == "code" else 0.5
        terms.append((m.mean() - mu).pow(2))
    return torch.stack(terms).mean()


class MembraneRegularisedObjective(Objective):
    """A classification objective (``ce`` or ``tet``) plus ``λ(progress) · regulariser(membranes)``."""

    needs_membranes = True
    reg_name = "reg"

    def __init__(self, base: Objective, weight: float, schedule: str, layers: str | None):
        if weight < 0:
            raise ValueError(f"{self.name} weight must be >= 0, got {weight}")
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; choose one of {list(SCHEDULES)}")
        self.base, self.weight, self.schedule = base, float(weight), schedule
        self.layers = layers
        self._pattern = re.compile(layers) if layers else None
        self.readout = base.readout

    def regulariser(self, membranes: Membranes) -> Tensor:
        raise NotImplementedError

    def forward(self, model: Any, x: Tensor) -> Any:
        return self.base.forward(model, x)

    def logits(self, outputs: Any) -> Tensor:
        return self.base.logits(outputs)

    def weight_at(self, progress: float) -> float:
        return schedule_weight(self.weight, self.schedule, progress)

    def loss(self, outputs: Any, target: Tensor, *, membranes: Membranes | None = None,
             progress: float = 0.0) -> tuple[Tensor, dict[str, float]]:
        lam = self.weight_at(progress)
        task, parts = self.base.loss(outputs, target, membranes=None, progress=progress)
        reg = self.regulariser(_picked_list(membranes, self._pattern, self.name))
        parts = {**parts, self.reg_name: float(reg.detach()), f"{self.reg_name}_weight": lam}
        return task + lam * reg, parts

    def config(self) -> dict[str, Any]:
        base = {k: v for k, v in self.base.config().items() if k != "name"}
        return {"name": self.name, "base": self.base.name, **base, "weight": self.weight,
                "schedule": self.schedule, "layers": self.layers}


def _picked_list(membranes: Membranes | None, pattern: re.Pattern[str] | None, who: str) -> Membranes:
    picked = _select(membranes, pattern, who)
    return [("", m) for m in picked]


class RMPObjective(MembraneRegularisedObjective):
    """``L_task + λ(p)·L_RMP`` (arXiv:2308.06787). Defaults: λ0 = 0.1 with the cosine decay (see module doc)."""

    name = "rmp"
    reg_name = "rmp"

    def __init__(self, base: Objective, weight: float = 0.1, schedule: str = "cosine", clip: bool = False,
                 layers: str | None = None):
        super().__init__(base, weight, schedule, layers)
        self.clip = bool(clip)

    def regulariser(self, membranes: Membranes) -> Tensor:
        return rmp_loss(membranes, self.clip)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "clip": self.clip}


class IMObjective(MembraneRegularisedObjective):
    """``L_task + λ·L_IM`` (IM-Loss; group code coefficient 0.005, constant)."""

    name = "im"
    reg_name = "im"

    def __init__(self, base: Objective, weight: float = 0.005, schedule: str = "constant", target: str = "code",
                 layers: str | None = None):
        super().__init__(base, weight, schedule, layers)
        if target not in ("code", "threshold"):
            raise ValueError(f"IM-Loss target must be 'code' (0.5/T) or 'threshold' (0.5), got {target!r}")
        self.target = target

    def regulariser(self, membranes: Membranes) -> Tensor:
        return im_loss(membranes, self.target)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "target": self.target}


def _build(cls: type[MembraneRegularisedObjective], own: set[str], opts: dict[str, Any]) -> Objective:
    base_name = opts.pop("base", "ce")
    if base_name not in BASES:
        raise ValueError(f"{cls.name} base must be one of {sorted(BASES)}, got {base_name!r}")
    base_cls, base_opts = BASES[base_name]
    reject_unknown(cls.name, opts, own | base_opts | {"base"})
    mine = {k: opts.pop(k) for k in list(opts) if k in own}
    return cls(base_cls(**opts), **mine)


@register_objective("rmp")
def _build_rmp(**opts: Any) -> Objective:
    return _build(RMPObjective, {"weight", "schedule", "clip", "layers"}, opts)


@register_objective("im")
def _build_im(**opts: Any) -> Objective:
    return _build(IMObjective, {"weight", "schedule", "target", "layers"}, opts)
