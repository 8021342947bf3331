"""``fold(model)``: a trained network -> its plain binary/ternary spiking inference form."""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers.blocks import BasicBlock
from ..layers.norm import BNTT2d
from ..neurons import Amplitude, MembraneBN, Neuron
from .linear import CONV_LIKE
from .registry import FoldContext, FoldError

__all__ = ["fold", "leftovers"]


def fold(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Return the inference form of ``model``: a deep copy (or ``model`` itself with ``inplace=True``) in eval
    mode whose neurons emit plain {0, 1} / {−1, 0, 1} spikes.

    MPBN and MPR move into thresholds, amplitudes into every consumer of the spike tensor, time-shared BNs into
    the preceding conv/linear, per-step BNs become :class:`~spikeforge.folding.StepAffine`, train-only initial
    membranes are dropped. Raises :class:`~spikeforge.folding.FoldError` for anything without an exact rule.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"fold expects an nn.Module, got {type(model).__name__}")
    out = model if inplace else copy.deepcopy(model)
    out.eval()
    ctx = FoldContext()
    folded, scale = ctx.fold(out, None, "")
    if scale is not None:
        raise FoldError(f"the amplitude of {scale.source} reaches the model output; the last spiking layer must "
                        "feed a conv/linear layer (or carry no amplitude)")
    problems = leftovers(folded)
    if problems:
        raise FoldError("the folded model still holds training-only parts:\n  " + "\n  ".join(problems))
    return folded.eval()


def leftovers(model: nn.Module) -> list[str]:
    """Training-only parts left in a (folded) model: MPBN, amplitudes, MPR, uniform initial membranes used in
    training only, and BNs that directly follow a conv/linear in a ``Sequential`` or a ``BasicBlock``."""
    found: list[str] = []
    for name, m in model.named_modules():
        label = name or "<model>"
        if isinstance(m, MembraneBN):
            found.append(f"{label}: MembraneBN")
        elif isinstance(m, Amplitude):
            found.append(f"{label}: Amplitude")
        elif isinstance(m, Neuron):
            if m.spec.pre_fire == "mpr":
                found.append(f"{label}: MPR pre-fire")
            if m.config.init == "uniform" and m.config.init_when == "train":
                found.append(f"{label}: train-only uniform initial membrane")
        if isinstance(m, nn.Sequential):
            kids = [k for k in m._modules.values() if k is not None]
            for a, b in zip(kids, kids[1:]):
                if isinstance(a, CONV_LIKE) and isinstance(b, (_BatchNorm, BNTT2d)):
                    found.append(f"{label}: {type(b).__name__} after {type(a).__name__}")
        if isinstance(m, BasicBlock):
            for attr in ("bn1", "bn2"):
                if isinstance(getattr(m, attr), (_BatchNorm, BNTT2d)):
                    found.append(f"{label}.{attr}: {type(getattr(m, attr)).__name__}")
    return found
