"""Named neurons. Each is :class:`Neuron` with the paper's defaults; every option stays overridable."""

from __future__ import annotations

from typing import Any

from .base import Neuron

__all__ = ["LIF", "IF", "PLIF", "TernaryLIF", "RealSpikeLIF", "MPBNLIF", "SoftResetMPRNeuron"]


def _preset(name: str, doc: str) -> type[Neuron]:
    def __init__(self: Neuron, feature_shape: tuple[int | None, ...] | None = None, **overrides: Any) -> None:
        Neuron.__init__(self, name, feature_shape, **overrides)

    return type(doc.split(":")[0], (Neuron,), {"__init__": __init__, "__doc__": doc})


LIF = _preset("lif", "LIF: h = 0.25 v + x, fire h >= 0.5, hard reset to 0 (the group's LIF, docs/methods/neurons.md).")
IF = _preset("if", "IF: h = v + x (decay 1), fire h >= 0.5, hard reset.")
PLIF = _preset("plif", "PLIF: learnable decay k = sigmoid(w), h = k v + (1 - k) x (arXiv:2007.05785).")
TernaryLIF = _preset("ternary", "TernaryLIF: spikes a*{-1,0,1}, learnable layer-wise a (Ternary Spike, "
                     "arXiv:2312.06372).")
RealSpikeLIF = _preset("real-spike", "RealSpikeLIF: binary spikes times a learnable amplitude (Real Spike, "
                       "arXiv:2210.06686).")
MPBNLIF = _preset("mpbn", "MPBNLIF: BN on the membrane before firing, folds into the threshold (MPBN, "
                  "arXiv:2308.08359).")
SoftResetMPRNeuron = _preset("inflor", "SoftResetMPRNeuron: IF with soft reset and the MPR rectifier (InfLoR-SNN, "
                             "arXiv:2307.04356).")
