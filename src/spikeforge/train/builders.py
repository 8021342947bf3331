"""Recipe sections -> objects: model, data splits, input encoding, objective, optimiser and the lr schedule."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from ..encode import for_kind as encode_input
from ..encode import input_kind
from ..layers import BNTT2d, compress_spikes, recompute
from ..neurons import MembraneBN, Neuron
from ..runs import build_model, fill_model_from_data, model_kwargs

__all__ = [
    "apply_memory_options", "build_model", "model_kwargs", "fill_model_from_data", "load_data", "encode_input",
    "build_objective",
    "param_groups", "build_optimizer", "lr_at", "input_kind",
]


def load_data(cfg: Mapping[str, Any], split: str) -> Any:
    """``spikeforge.data.get(name, split, root=, limit=, **options)`` for the recipe's data section
    (``data.train_limit``, when set, replaces ``data.limit`` for the training split)."""
    from .. import data as data_mod

    d = cfg["data"]
    limit = d["train_limit"] if split == "train" and d.get("train_limit") is not None else d["limit"]
    return data_mod.get(d["name"], split, root=d["root"], limit=limit, **dict(d["options"] or {}))


def apply_memory_options(cfg: Mapping[str, Any], model: nn.Module, objective: Any = None) -> nn.Module:
    """The recipe's ``memory`` section on ``model``: bit storage of spike inputs and/or recomputation (both exact:
    :func:`spikeforge.layers.compress_spikes`, :func:`spikeforge.layers.recompute`)."""
    mem = cfg.get("memory", {})
    if mem.get("compress_spikes"):
        compress_spikes(model, True)
    if mem.get("recompute"):
        if objective is not None and getattr(objective, "needs_membranes", False):
            raise ValueError(f"memory.recompute saves nothing with the {objective.name!r} objective: its loss needs "
                             "every membrane of the forward itself (RMP-Loss); set memory.recompute: false")
        recompute(model, True, time_chunk=mem.get("time_chunk"))
    return model


def build_objective(cfg: Mapping[str, Any]) -> Any:
    """The recipe's objective via :func:`spikeforge.losses.build_objective`; the top-level ``label_smoothing`` is
    passed on (objectives without that option reject a non-zero value)."""
    from ..losses import build_objective as _build

    obj_cfg = dict(cfg["objective"])
    ls = float(cfg.get("label_smoothing", 0.0) or 0.0)
    if ls and "label_smoothing" not in obj_cfg:
        try:
            return _build({**obj_cfg, "label_smoothing": ls})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"label_smoothing={ls} cannot be applied to objective {obj_cfg.get('name')!r}: "
                             f"{exc}") from None
    return _build(obj_cfg)


# --- optimiser ---------------------------------------------------------------------------------------------
_NORM_TYPES: tuple[type, ...] = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, MembraneBN, BNTT2d)


def _named_params_by_kind(model: nn.Module) -> Iterator[tuple[str, nn.Parameter, str]]:
    """Yield ``(name, param, kind)``; kind is 'neuron' (inside a spiking neuron, incl. its MPBN), 'norm',
    'bias' or 'weight'. Each parameter once."""
    seen: set[int] = set()
    neuron_prefixes = [n for n, m in model.named_modules() if isinstance(m, Neuron)]
    modules = dict(model.named_modules())
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        owner_name = name.rsplit(".", 1)[0] if "." in name else ""
        owner = modules.get(owner_name)
        if any(owner_name == q or owner_name.startswith(q + ".") for q in neuron_prefixes):
            kind = "neuron"
        elif isinstance(owner, _NORM_TYPES):
            kind = "norm"
        elif name.endswith("bias"):
            kind = "bias"
        else:
            kind = "weight"
        yield name, p, kind


def param_groups(model: nn.Module, weight_decay: float, no_decay: list[str]) -> list[dict[str, Any]]:
    """Two groups: decayed weights and undecayed ``no_decay`` kinds (norm affine, biases, neuron parameters:
    amplitudes, learnable thresholds/decays, MPBN affine)."""
    decay: list[nn.Parameter] = []
    plain: list[nn.Parameter] = []
    for _, p, kind in _named_params_by_kind(model):
        if not p.requires_grad:
            continue
        (plain if kind in no_decay else decay).append(p)
    groups = [{"params": decay, "weight_decay": float(weight_decay)}]
    if plain:
        groups.append({"params": plain, "weight_decay": 0.0})
    return groups


def build_optimizer(cfg: Mapping[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    o = cfg["optim"]
    groups = param_groups(model, o["weight_decay"], list(o["no_decay"]))
    lr = float(o["lr"])
    if o["name"] == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=float(o["momentum"]), nesterov=bool(o["nesterov"]))
    cls = torch.optim.Adam if o["name"] == "adam" else torch.optim.AdamW
    return cls(groups, lr=lr, betas=tuple(o["betas"]), eps=float(o["eps"]))


def lr_at(cfg: Mapping[str, Any], step: int, steps_per_epoch: int) -> float:
    """Learning rate at optimiser step ``step`` (0-based), a pure function of the step (the schedule's state).

    * warm-up (cosine/step/constant): linear from ``warmup_start_factor * lr`` to ``lr`` over ``warmup_epochs``;
    * cosine: ``min_lr + (lr - min_lr) (1 + cos(pi p)) / 2``, p = progress after warm-up in [0, 1];
    * step: ``lr * gamma ** floor(epoch / step_size)`` (StepLR on epochs);
    * onecycle: cosine from ``lr/div_factor`` up to ``lr`` over ``pct_start`` of the steps, then cosine down to
      ``lr/(div_factor*final_div_factor)`` (the one-cycle policy, arXiv:1708.07120).
    """
    s = cfg["schedule"]
    base = float(cfg["optim"]["lr"])
    total = max(1, int(cfg["epochs"]) * steps_per_epoch)
    step = min(step, total - 1)
    name = s["name"]
    if name == "onecycle":
        up = max(1, int(round(float(s["pct_start"]) * total)))
        start, end = base / float(s["div_factor"]), base / (float(s["div_factor"]) * float(s["final_div_factor"]))
        if step < up:
            p = step / up
            return start + (base - start) * (1 - math.cos(math.pi * p)) / 2
        p = (step - up) / max(1, total - 1 - up)
        return end + (base - end) * (1 + math.cos(math.pi * p)) / 2
    warm = int(round(float(s["warmup_epochs"]) * steps_per_epoch))
    if warm > 0 and step < warm:
        f0 = float(s["warmup_start_factor"])
        return base * (f0 + (1 - f0) * step / warm)
    if name == "constant":
        return base
    if name == "step":
        return base * float(s["gamma"]) ** (step // steps_per_epoch // int(s["step_size"]))
    p = (step - warm) / max(1, total - warm)
    lo = float(s["min_lr"])
    return lo + (base - lo) * (1 + math.cos(math.pi * p)) / 2
