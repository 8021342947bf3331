"""Multi-step spiking neuron dynamics over time-first sequences ``x[T, B, ...]``.

One definition of the math: :func:`reference_multistep`, a plain PyTorch loop whose gradients come from
autograd, is the specification. The faster executions (a PyTorch fused loop, a C++ CPU kernel, a Triton
kernel) live behind one kernel boundary in :mod:`spikeforge.functional.kernels` and are tested against it;
:func:`spikeforge.functional.multistep` picks one.

Dynamics (``v_{-1}`` is the initial membrane ``v0``)::

    charge   h_t = decay * v_{t-1} + gain * x_t             gain = 1, or (1 - decay) with decay_input
    rectify  r_t = phi(h_t)                                  phi = identity, MPR (arXiv:2307.04356) or
                                                             MPBN's per-step BatchNorm (arXiv:2308.08359)
    fire     s_t = H(r_t - V_th)                             binary {0, 1}
             s_t = H(h_t - V_th) - H(-h_t - V_th)            ternary {-1, 0, 1} (arXiv:2312.06372)
             s_t = H(h_t - V_th) - H(V_low - h_t)            ternary, separate negative threshold (folded MPBN)
    reset    v_t = h_t (1 - |s_t|) + v_reset |s_t|           hard (d|s|/dh = sign(s) ds/dh)
             v_t = h_t - c s_t,  c = V_th or a constant      soft (reset by subtraction)
             v_t = h_t                                       none

The group's LIF (methods.md §0) is ``decay = 0.25, V_th = 0.5``, hard reset to 0. ``tau`` users convert with
``decay = 1 - 1/tau`` (SpikingJelly's ``decay_input=True`` form is ``gain = 1/tau = 1 - decay``).
The backward of H is the surrogate ``g'(r_t - V_th) * phi'(h_t)``; for ternary spikes the surrogate is
applied symmetrically, ``ds/dh = g'(|h| - V_th)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from .mpr import mpr
from .norm import MembraneNorm, membrane_norm
from .surrogate import Surrogate, surrogate

__all__ = [
    "NeuronSpec",
    "NeuronState",
    "reference_multistep",
    "step_slice",
    "uniform_membrane",
    "check_sequence",
]

ResetMode = Literal["hard", "soft", "none"]
SpikeMode = Literal["binary", "ternary"]
PreFire = Literal["none", "mpr"]


@dataclass(frozen=True)
class NeuronSpec:
    """The static (non-tensor) part of a neuron's definition.

    ``soft_reset_amount=None`` subtracts the threshold on a soft reset; a number subtracts that fixed amount
    (the InfLoR code subtracts 1.0 while firing at 0.5).
    """

    reset: ResetMode = "hard"
    v_reset: float = 0.0
    soft_reset_amount: float | None = None
    spike: SpikeMode = "binary"
    surrogate: Surrogate = surrogate("rectangular")
    pre_fire: PreFire = "none"
    detach_reset: bool = False
    decay_input: bool = False

    def __post_init__(self) -> None:
        if self.reset not in ("hard", "soft", "none"):
            raise ValueError(f"reset must be 'hard', 'soft' or 'none', got {self.reset!r}")
        if self.spike not in ("binary", "ternary"):
            raise ValueError(f"spike must be 'binary' or 'ternary', got {self.spike!r}")
        if self.pre_fire not in ("none", "mpr"):
            raise ValueError(f"pre_fire must be 'none' or 'mpr', got {self.pre_fire!r}")
        if self.spike == "ternary" and self.pre_fire == "mpr":
            raise ValueError("the MPR rectifier is defined for binary spikes only (arXiv:2307.04356)")
        if self.spike == "ternary" and self.reset == "hard" and self.v_reset != 0.0:
            raise ValueError("ternary spikes reset to 0; a non-zero v_reset is not defined for them")


class NeuronState(NamedTuple):
    """The membrane after the last processed step (post-reset), shape ``[B, ...]``."""

    v: Tensor


class NonFiniteError(ValueError):
    """NaN or Inf values where finite numbers are required (an input sequence, a parameter, a gradient)."""


def check_sequence(x: Tensor, name: str = "input") -> None:
    """Raise a clear error for inputs that are not a float ``[T, B, ...]`` sequence."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}; cast with .float()")
    if x.ndim < 2:
        raise ValueError(f"{name} must be time-first [T, B, ...] with at least 2 dims, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} has T = 0 time steps (shape {tuple(x.shape)}); a sequence needs T >= 1")
    # a sum is one cheap read-only reduction and turns any NaN/Inf into a non-finite value; the exact test runs
    # only to confirm (a finite sum cannot hide one, an overflowing sum of huge finite values is re-checked).
    # Skipped while torch.compile traces: a data-dependent branch would break the graph.
    if torch.compiler.is_compiling():
        return
    if not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
        raise NonFiniteError(f"{name} contains NaN or Inf values (shape {tuple(x.shape)})")


def uniform_membrane(like: Tensor, high: float, generator: torch.Generator | None = None) -> Tensor:
    """A random initial membrane ``U[0, high)`` (Spiking PointNet's perturbation, arXiv:2310.06232)."""
    return torch.rand(like.shape, dtype=like.dtype, device=like.device, generator=generator) * high


def _as_tensor(v: Tensor | float, like: Tensor) -> Tensor:
    if isinstance(v, Tensor):
        return v.to(dtype=like.dtype)
    return torch.tensor(float(v), dtype=like.dtype, device=like.device)


def _is_time_varying(thr: Tensor, x: Tensor) -> bool:
    """A threshold with a leading T dim (``ndim == x.ndim``, ``shape[0] == T > 1``) varies over time."""
    return thr.ndim == x.ndim and thr.shape[0] == x.shape[0] and x.shape[0] > 1


def _fire(r: Tensor, h: Tensor, thr: Tensor, spec: NeuronSpec) -> Tensor:
    if spec.spike == "binary":
        return (r >= thr).to(h.dtype)
    return (h >= thr).to(h.dtype) - (h <= -thr).to(h.dtype)


def _reset(h: Tensor, s: Tensor, thr: Tensor, spec: NeuronSpec) -> Tensor:
    if spec.reset == "none":
        return h
    if spec.reset == "hard":
        mag = s.abs() if spec.spike == "ternary" else s
        return h * (1.0 - mag) + spec.v_reset * mag
    amount = thr if spec.soft_reset_amount is None else spec.soft_reset_amount
    return h - amount * s


# --- reference -------------------------------------------------------------------------------------------


class _Heaviside(torch.autograd.Function):
    """H(r - thr) with the surrogate backward; ternary applies it symmetrically. Reference path only."""

    @staticmethod
    def forward(ctx, r: Tensor, thr: Tensor, spec: NeuronSpec) -> Tensor:
        ctx.save_for_backward(r, thr)
        ctx.spec = spec
        return _fire(r, r, thr, spec)

    @staticmethod
    def backward(ctx, g: Tensor):
        r, thr = ctx.saved_tensors
        spec: NeuronSpec = ctx.spec
        if spec.spike == "binary":
            sg = spec.surrogate.grad(r - thr)
            g_thr = -g * sg
        else:
            sg = spec.surrogate.grad(r.abs() - thr)
            g_thr = -g * sg * torch.sign(r)
        g_r = g * sg
        g_thr_out = _sum_to(g_thr, thr) if ctx.needs_input_grad[1] else None
        return g_r, g_thr_out, None


class _TernaryAsymmetric(torch.autograd.Function):
    """Ternary spikes with separate thresholds ``s = H(r - thr) - H(low - r)`` (``low < thr``; folded MPBN).

    The surrogate acts on the nearer threshold: ``ds/dr = g'(r - thr)`` above ``(thr + low)/2`` and
    ``g'(low - r)`` below; with ``low = -thr`` this is the symmetric ``g'(|r| - thr)``. Reference path only.
    """

    @staticmethod
    def forward(ctx, r: Tensor, thr: Tensor, low: Tensor, spec: NeuronSpec) -> Tensor:
        ctx.save_for_backward(r, thr, low)
        ctx.spec = spec
        return (r >= thr).to(r.dtype) - (r <= low).to(r.dtype)

    @staticmethod
    def backward(ctx, g: Tensor):
        r, thr, low = ctx.saved_tensors
        spec: NeuronSpec = ctx.spec
        upper = r >= 0.5 * (thr + low)
        sg_hi = spec.surrogate.grad(r - thr) * upper
        sg_lo = spec.surrogate.grad(low - r) * ~upper
        g_thr = _sum_to(-g * sg_hi, thr) if ctx.needs_input_grad[1] else None
        g_low = _sum_to(-g * sg_lo, low) if ctx.needs_input_grad[2] else None
        return g * (sg_hi + sg_lo), g_thr, g_low, None


def _sum_to(g: Tensor, like: Tensor) -> Tensor:
    if g.shape == like.shape:
        return g
    return g.sum_to_size(like.shape) if like.ndim else g.sum()


def reference_multistep(
    x: Tensor,
    spec: NeuronSpec,
    *,
    decay: Tensor | float,
    threshold: Tensor | float,
    v0: Tensor | None = None,
    pre_fire: Callable[[Tensor, int], Tensor] | None = None,
    return_fire_input: bool = False,
    threshold_low: Tensor | float | None = None,
    norm: MembraneNorm | None = None,
) -> tuple[Tensor, NeuronState, Tensor | None]:
    """Autograd loop over T. ``pre_fire(h_t, t)`` overrides ``spec.pre_fire``; ``norm`` is MPBN's per-step
    BatchNorm (:func:`~spikeforge.functional.norm.membrane_norm`) as that ``pre_fire``.

    ``threshold_low`` gives ternary spikes a separate negative threshold (fire -1 when ``h <= threshold_low``;
    default ``-threshold``), as a folded MPBN needs; it broadcasts (and may vary in time) like ``threshold``.

    ``threshold`` broadcasts against ``x[t]``; a tensor with a leading dim equal to T and ``ndim == x.ndim``
    is time-varying (e.g. per-step folded MPBN). Returns ``(spikes[T, ...], final_state, fire_inputs|None)``.
    """
    if norm is not None:
        if pre_fire is not None:
            raise ValueError("give either pre_fire or norm, not both")
        pre_fire = lambda h, t: membrane_norm(h, t, norm)  # noqa: E731
    decay_t = _as_tensor(decay, x)
    thr = _as_tensor(threshold, x)
    time_varying = _is_time_varying(thr, x)
    low = None if threshold_low is None else _as_tensor(threshold_low, x)
    if low is not None and spec.spike != "ternary":
        raise ValueError("threshold_low is defined for ternary spikes only")
    low_varying = low is not None and _is_time_varying(low, x)
    v = torch.zeros_like(x[0]) if v0 is None else v0.to(x.dtype)
    spikes, fire_inputs = [], []
    for t in range(x.shape[0]):
        thr_t = thr[t] if time_varying else thr
        gain = 1.0 - decay_t if spec.decay_input else 1.0
        h = decay_t * v + gain * x[t]
        if pre_fire is not None:
            r = pre_fire(h, t)
        elif spec.pre_fire == "mpr":
            r = mpr(h)
        else:
            r = h
        if low is None:
            s = _Heaviside.apply(r, thr_t, spec)
        else:
            s = _TernaryAsymmetric.apply(r, thr_t, low[t] if low_varying else low, spec)
        s_reset = s.detach() if spec.detach_reset else s
        v = _reset(h, s_reset, thr_t, spec)
        spikes.append(s)
        if return_fire_input:
            fire_inputs.append(r)
    out = torch.stack(spikes)
    return out, NeuronState(v), (torch.stack(fire_inputs) if return_fire_input else None)


def step_slice(v: Tensor, T: int, per_step: bool, t: int | None = None, name: str = "threshold") -> Tensor:
    """The one place that slices a per-step parameter (leading dim = steps) for a call.

    ``per_step=False`` returns ``v`` unchanged. Otherwise ``t`` selects the row of one step (streaming), or the
    first ``T`` rows are kept for a sequence of ``T`` steps (``v[0]`` when ``T == 1``: a single step is not
    time-varying). A call beyond the stored steps raises a clear error.
    """
    if not per_step:
        return v
    steps = v.shape[0]
    if t is not None:
        if not 0 <= t < steps:
            raise ValueError(f"per-step {name} holds {steps} steps, got step t = {t}")
        return v[t]
    if T > steps:
        raise ValueError(f"this neuron has per-step {name}s for {steps} steps, got T = {T}")
    return v[:T] if T > 1 else v[0]
