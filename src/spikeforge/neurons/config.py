"""Neuron configuration: one dataclass selects any neuron of the library for every spiking layer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NeuronConfig", "PRESETS", "neuron_config"]


@dataclass
class NeuronConfig:
    """What a spiking layer computes. Defaults are the group's LIF (methods.md §0).

    Charge ``h = decay*v + x`` (``tau`` sets ``decay = 1 - 1/tau``; ``decay_input`` scales x by 1 - decay),
    pre-fire transform ``pre_fire`` (None, ``"mpr"``, ``"mpbn"``), binary or ternary firing against
    ``threshold``, reset ``hard`` / ``soft`` / ``none``, optional learnable ``amplitude`` of granularity
    ``layer`` / ``channel`` / ``element`` (Real Spike, Ternary Spike), initial membrane ``zero`` or
    ``uniform`` in [0, init_range) applied in training only or ``always`` (Spiking PointNet's MPP).
    """

    decay: float = 0.25
    tau: float | None = None
    decay_input: bool = False
    learn_decay: bool = False
    threshold: float = 0.5
    learn_threshold: bool = False
    reset: str = "hard"
    v_reset: float = 0.0
    soft_reset_amount: float | None = None
    detach_reset: bool = False
    spike: str = "binary"
    amplitude: str | None = None
    amplitude_init: float = 1.0
    pre_fire: str | None = None
    mpbn: str = "channel"
    mpbn_running: str = "shared"
    mpbn_min_scale: float | None = 1e-4
    mpbn_momentum: float = 0.1
    mpbn_eps: float = 1e-5
    max_steps: int = 64
    surrogate: str = "rectangular"
    surrogate_param: float | None = None
    init: str = "zero"
    init_range: float = 0.5
    init_when: str = "train"
    backend: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tau is not None:
            if self.tau < 1.0:
                raise ValueError(f"tau must be >= 1 (decay = 1 - 1/tau in [0, 1)), got {self.tau}")
            self.decay = 1.0 - 1.0 / self.tau
        checks = {
            "reset": ("hard", "soft", "none"),
            "spike": ("binary", "ternary"),
            "amplitude": (None, "layer", "channel", "element"),
            "pre_fire": (None, "mpr", "mpbn"),
            "mpbn": ("channel", "element"),
            "mpbn_running": ("shared", "per_step"),
            "init": ("zero", "uniform"),
            "init_when": ("train", "always"),
            "backend": ("auto", "reference", "fused", "cpp", "triton"),
        }
        for key, allowed in checks.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"neuron {key}={getattr(self, key)!r} is not one of {list(allowed)}")
        if not 0.0 <= self.decay <= 1.0 and not self.learn_decay:
            raise ValueError(f"decay must lie in [0, 1], got {self.decay}")
        if self.threshold <= 0:
            raise ValueError(f"threshold must be positive, got {self.threshold}")
        if self.spike == "ternary" and self.pre_fire == "mpr":
            raise ValueError("pre_fire='mpr' is defined for binary spikes only")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | NeuronConfig | None) -> NeuronConfig:
        if d is None:
            return cls()
        if isinstance(d, NeuronConfig):
            return dataclasses.replace(d)
        d = dict(d)
        base: dict[str, Any] = {}
        preset = d.pop("preset", None)
        if preset is not None:
            if preset not in PRESETS:
                raise ValueError(f"unknown neuron preset {preset!r}; choose one of {sorted(PRESETS)}")
            base = dict(PRESETS[preset])
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - valid)
        if unknown:
            raise ValueError(f"unknown neuron option(s) {unknown}; valid options: {sorted(valid | {'preset'})}")
        return cls(**{**base, **d})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # the group's LIF: decay 0.25, threshold 0.5, hard reset (methods.md §0)
    "lif": {},
    "if": {"decay": 1.0},
    # PLIF: learnable decay per layer (Fang et al., arXiv:2007.05785)
    "plif": {"learn_decay": True, "decay": 0.5, "decay_input": True, "surrogate": "atan"},
    # Ternary Spike, arXiv:2312.06372: {-a, 0, a} with a learnable layer-wise amplitude
    "ternary": {"spike": "ternary", "amplitude": "layer", "surrogate": "ste"},
    "ternary-vanilla": {"spike": "ternary", "surrogate": "ste"},
    # Real Spike, arXiv:2210.06686: binary spikes times a learnable amplitude
    "real-spike": {"amplitude": "channel"},
    "real-spike-element": {"amplitude": "element"},
    # MPBN, arXiv:2308.08359: BN on the membrane before firing, tanh surrogate b=3
    "mpbn": {"pre_fire": "mpbn", "surrogate": "dspike", "surrogate_param": 3.0},
    # InfLoR-SNN, arXiv:2307.04356 (official code): IF, soft reset by 1.0, MPR, STE-clamp
    "inflor": {"decay": 1.0, "reset": "soft", "soft_reset_amount": 1.0, "pre_fire": "mpr", "surrogate": "ste"},
    # InfLoR paper form: LIF u = tau (u - o) + x (the soft reset subtracts the spike value 1 while firing at 0.5,
    # as the code does) and MPR
    "soft-mpr": {"reset": "soft", "soft_reset_amount": 1.0, "pre_fire": "mpr", "surrogate": "ste"},
    # Real Spike's released SEW-ResNet (yfguo91/Real-Spike): SpikingJelly IF (no leak, V_th 1, hard reset to 0,
    # reset detached, ATan alpha 2) with channel-wise amplitudes initialised to 1
    "real-spike-sew": {"decay": 1.0, "threshold": 1.0, "detach_reset": True, "surrogate": "atan",
                       "surrogate_param": 2.0, "amplitude": "channel"},
    # Spiking PointNet, arXiv:2310.06232: tanh surrogate b=5, random initial membrane U[0, 0.5) always
    "pointnet": {"surrogate": "dspike", "surrogate_param": 5.0, "init": "uniform", "init_range": 0.5,
                 "init_when": "always"},
}


def neuron_config(spec: str | dict[str, Any] | NeuronConfig | None = None, **overrides: Any) -> NeuronConfig:
    """``neuron_config("ternary", threshold=0.4)`` or ``neuron_config({"preset": "mpbn", "mpbn": "element"})``."""
    if isinstance(spec, str):
        spec = {"preset": spec}
    if isinstance(spec, NeuronConfig):
        spec = spec.to_dict()
    return NeuronConfig.from_dict({**(spec or {}), **overrides})
