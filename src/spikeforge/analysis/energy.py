"""Energy estimate of a spiking network from measured operation counts.

    E_SNN = E_MAC · MACs(synaptic layers with real-valued input) + E_AC · SOPs(synaptic layers with spike input)
    E_ANN = E_MAC · MACs(every synaptic layer, one evaluation)

with E_MAC = 4.6 pJ (32-bit float multiply-add) and E_AC = 0.9 pJ (32-bit float add) in 45 nm CMOS (M. Horowitz,
"Computing's energy problem (and what we can do about it)", ISSCC 2014) — the constants used by Ternary Spike
(arXiv:2312.06372), Real Spike (arXiv:2210.06686), MPBN (arXiv:2308.08359) and the survey (arXiv:2305.19725).

Conventions (all numbers are **per sample**, i.e. per inference of one input over all its T time steps):

* the SNN is charged for what it executes at every time step: SOPs summed over the T steps, and the dense MACs of
  real-valued-input layers at each step (a direct-encoded image is fed to the first conv T times, as the
  model runs; Ternary Spike arXiv:2312.06372: "the first (encoding) layer counts as MAC";
  ``docs/analysis.md``);
* the ANN-equivalent is the same architecture evaluated once (no time dimension) with dense MACs everywhere:
  ``ann_macs`` = dense MACs of one time step, ``ann_energy_pj = E_MAC · ann_macs``;
* SOPs and MACs are defined in :mod:`spikeforge.analysis.ops`; the spike-input decision in
  :mod:`spikeforge.analysis.monitor`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..encode import direct, encoding_for, input_kind, time_first
from .macs import MacCount, count_macs
from .monitor import Monitor, MonitorResult

__all__ = ["E_MAC_PJ", "E_AC_PJ", "LayerEnergy", "EnergyReport", "energy_report", "measure", "MacCount",
           "count_macs"]

E_MAC_PJ = 4.6  # 45 nm, 32-bit float MAC (Horowitz, ISSCC 2014)
E_AC_PJ = 0.9  # 45 nm, 32-bit float add (Horowitz, ISSCC 2014)


@dataclass
class LayerEnergy:
    """One synaptic layer, per sample. ``mode``: 'sop' (spike input), 'mac' (real input), 'mixed', 'unused'."""

    name: str
    layer_type: str
    mode: str
    sops: float
    macs: float  # charged at E_MAC (real-valued input)
    dense_macs: float  # what a dense evaluation of the T steps executes
    ann_macs: float  # one dense evaluation (ANN-equivalent)
    input_rate: float  # mean events per input element over spike-input calls
    energy_pj: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class EnergyReport:
    """Per-layer operation counts and totals, per sample (see the module docstring for the conventions)."""

    layers: list[LayerEnergy]
    sops: float
    macs: float
    dense_macs: float
    ann_macs: float
    energy_pj: float
    ann_energy_pj: float
    firing_rates: dict[str, float]
    mean_firing_rate: float
    negative_fractions: dict[str, float]
    samples: int
    time_steps: float
    e_mac_pj: float
    e_ac_pj: float
    monitor: MonitorResult | None = field(default=None, repr=False)

    @property
    def energy_ratio(self) -> float:
        """ANN-equivalent energy / SNN energy (> 1: the SNN is cheaper)."""
        return self.ann_energy_pj / self.energy_pj if self.energy_pj else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: totals, per-layer rows and firing rates (no membrane samples)."""
        return {
            "sops": self.sops, "macs": self.macs, "dense_macs": self.dense_macs, "ann_macs": self.ann_macs,
            "energy_pj": self.energy_pj, "ann_energy_pj": self.ann_energy_pj,
            "energy_ratio": self.energy_ratio if self.energy_pj else None,
            "firing_rates": dict(self.firing_rates), "mean_firing_rate": self.mean_firing_rate,
            "negative_fractions": dict(self.negative_fractions), "samples": self.samples,
            "time_steps": self.time_steps, "e_mac_pj": self.e_mac_pj, "e_ac_pj": self.e_ac_pj,
            "layers": [layer.to_dict() for layer in self.layers],
        }


def energy_report(result: MonitorResult, e_mac: float = E_MAC_PJ, e_ac: float = E_AC_PJ) -> EnergyReport:
    """Turn a :class:`MonitorResult` into an :class:`EnergyReport` (E_SNN = E_MAC·MACs + E_AC·SOPs, per sample)."""
    if e_mac < 0 or e_ac < 0:
        raise ValueError(f"energies per operation must be >= 0, got e_mac={e_mac}, e_ac={e_ac}")
    if result.samples <= 0:
        raise ValueError("the monitor saw no samples: run the model on [T, B, ...] inputs while it is attached")
    n, steps = result.samples, result.sample_steps
    layers = []
    for name, rec in result.synapses.items():
        s, m = rec.sops / n, rec.charged_macs / n
        layers.append(LayerEnergy(name, rec.layer_type, rec.mode, s, m, rec.dense_macs / n, rec.dense_macs / steps,
                                  rec.input_rate, e_mac * m + e_ac * s))
    total_s = sum(layer.sops for layer in layers)
    total_m = sum(layer.macs for layer in layers)
    ann = sum(layer.ann_macs for layer in layers)
    neurons = result.neurons.values()
    elems = sum(sum(r.elements_per_step) for r in neurons)
    return EnergyReport(
        layers=layers, sops=total_s, macs=total_m, dense_macs=sum(layer.dense_macs for layer in layers),
        ann_macs=ann, energy_pj=e_mac * total_m + e_ac * total_s, ann_energy_pj=e_mac * ann,
        firing_rates=result.firing_rates,
        mean_firing_rate=sum(r.events for r in neurons) / elems if elems else 0.0,
        negative_fractions={k: r.negative_fraction for k, r in result.neurons.items()},
        samples=n, time_steps=result.time_steps, e_mac_pj=float(e_mac), e_ac_pj=float(e_ac), monitor=result,
    )


def _first_param_device(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def _encode(x: Tensor, encoding: str, T: int | None) -> Tensor:
    if encoding == "direct":
        if T is None:
            raise ValueError("direct encoding of static inputs needs T (time steps)")
        return direct(x, T)
    if encoding == "time_first":
        return time_first(x)
    if encoding == "none":
        return x
    raise ValueError(f"encoding must be 'auto', 'direct', 'time_first' or 'none', got {encoding!r}")


def measure(model: nn.Module, batches: Iterable[Any], T: int | None = None, *, encoding: str = "auto",
            e_mac: float = E_MAC_PJ, e_ac: float = E_AC_PJ, max_batches: int | None = None,
            device: torch.device | str | None = None, reservoir_size: int = 4096, seed: int = 0,
            sop_mode: str = "nonzero") -> EnergyReport:
    """Run ``model`` (eval mode, no grad) over ``batches`` with a :class:`Monitor` and return the energy report.

    ``batches`` yields input tensors or ``(x, y, ...)`` tuples of batch-first data. ``encoding='auto'`` uses the
    model's ``input_kind``: ``static``/``points`` → :func:`spikeforge.encode.direct` (needs ``T``), ``events`` →
    :func:`spikeforge.encode.time_first`; ``'none'`` feeds ``x`` unchanged (already ``[T, B, ...]``). The
    model's train/eval mode is restored afterwards; the report's ``monitor`` holds the per-layer records.
    ``sop_mode`` is passed to :class:`Monitor`.
    """
    if encoding == "auto":
        encoding = encoding_for(input_kind(model))
    dev = torch.device(device) if device is not None else _first_param_device(model)
    was_training = model.training
    model.eval()
    seen = 0
    try:
        with Monitor(model, reservoir_size=reservoir_size, seed=seed, sop_mode=sop_mode) as mon, torch.no_grad():
            for i, batch in enumerate(batches):
                if max_batches is not None and i >= max_batches:
                    break
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                if not isinstance(x, Tensor):
                    raise TypeError(f"batch {i}: expected a tensor or (x, y) tuple, got {type(x).__name__}")
                model(_encode(x.to(dev), encoding, T))
                seen += 1
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError("measure() got no batches")
    return energy_report(mon.result(), e_mac, e_ac)
