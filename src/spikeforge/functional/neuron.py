"""Multi-step spiking neuron dynamics over time-first sequences ``x[T, B, ...]``.

One definition of the math, two executions that must agree:

* :func:`reference_multistep` — a plain PyTorch loop whose gradients come from autograd (the
  specification; also the only path that accepts an arbitrary per-step pre-fire transform such as MPBN).
* :func:`fused_multistep` — one :class:`torch.autograd.Function` for the whole time loop. It saves only
  the pre-spike membrane sequence ``h[T, ...]`` (spikes are recomputed in the backward) and runs the
  backward as a single reverse loop, instead of keeping per-step autograd graphs.

Dynamics (``v_{-1}`` is the initial membrane ``v0``)::

    charge   h_t = decay * v_{t-1} + gain * x_t             gain = 1, or (1 - decay) with decay_input
    rectify  r_t = phi(h_t)                                  phi = identity or MPR (arXiv:2307.04356)
    fire     s_t = H(r_t - V_th)                             binary {0, 1}
             s_t = H(h_t - V_th) - H(-h_t - V_th)            ternary {-1, 0, 1} (arXiv:2312.06372)
             s_t = H(h_t - V_th) - H(V_low - h_t)            ternary, separate negative threshold (folded MPBN)
    reset    v_t = h_t (1 - |s_t|) + v_reset |s_t|           hard (d|s|/dh = sign(s) ds/dh)
             v_t = h_t - c s_t,  c = V_th or a constant      soft (reset by subtraction)
             v_t = h_t                                       none

The group's LIF (the shared set-up of arXiv:2312.06372, 2308.08359, 2305.02099; ``docs/methods/neurons.md``) is
``decay = 0.25, V_th = 0.5``, hard reset to 0. ``tau`` users convert with
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

from . import _cpu_kernel
from .mpr import mpr, mpr_grad
from .surrogate import Surrogate, surrogate

__all__ = [
    "NeuronSpec",
    "NeuronState",
    "multistep",
    "reference_multistep",
    "fused_multistep",
    "single_step",
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
    # only to confirm (a finite sum cannot hide one, an overflowing sum of huge finite values is re-checked)
    if not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf values (shape {tuple(x.shape)})")


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
) -> tuple[Tensor, NeuronState, Tensor | None]:
    """Autograd loop over T. ``pre_fire(h_t, t)`` overrides ``spec.pre_fire`` (used by MPBN).

    ``threshold_low`` gives ternary spikes a separate negative threshold (fire -1 when ``h <= threshold_low``;
    default ``-threshold``), as a folded MPBN needs; it broadcasts (and may vary in time) like ``threshold``.

    ``threshold`` broadcasts against ``x[t]``; a tensor with a leading dim equal to T and ``ndim == x.ndim``
    is time-varying (e.g. per-step folded MPBN). Returns ``(spikes[T, ...], final_state, fire_inputs|None)``.
    """
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


# --- fused -----------------------------------------------------------------------------------------------


class _FusedNeuron(torch.autograd.Function):
    """The whole time loop as one autograd node; saves h[T, ...] only."""

    @staticmethod
    def forward(ctx, x: Tensor, v0: Tensor, decay: Tensor, thr: Tensor, spec: NeuronSpec, time_varying: bool):
        T = x.shape[0]
        h_seq = torch.empty_like(x)
        s_seq = torch.empty_like(x)
        v = v0
        gain = (1.0 - decay) if spec.decay_input else None
        plain_binary = spec.spike == "binary" and spec.pre_fire == "none"
        hard_zero = spec.reset == "hard" and spec.v_reset == 0.0
        for t in range(T):
            thr_t = thr[t] if time_varying else thr
            h = h_seq[t]
            if gain is None:
                torch.addcmul(x[t], decay, v, out=h)
            else:
                torch.addcmul(gain * x[t], decay, v, out=h)
            if plain_binary and (hard_zero or spec.reset == "none"):
                fired = h >= thr_t
                s_seq[t].copy_(fired)
                v = h.masked_fill(fired, 0.0) if hard_zero else h
                continue
            r = mpr(h) if spec.pre_fire == "mpr" else h
            s = _fire(r, h, thr_t, spec)
            s_seq[t] = s
            v = _reset(h, s, thr_t, spec)
        ctx.save_for_backward(h_seq, v0, decay, thr, x if spec.decay_input else None)
        ctx.spec = spec
        ctx.time_varying = time_varying
        return s_seq, v, h_seq

    @staticmethod
    def backward(ctx, g_s: Tensor, g_vT: Tensor | None, g_hseq: Tensor | None):
        h_seq, v0, decay, thr, x = ctx.saved_tensors
        spec: NeuronSpec = ctx.spec
        tv: bool = ctx.time_varying
        T = h_seq.shape[0]
        need_x, need_v0, need_decay, need_thr = ctx.needs_input_grad[:4]
        ternary = spec.spike == "ternary"
        hard, soft = spec.reset == "hard", spec.reset == "soft"
        soft_by_thr = soft and spec.soft_reset_amount is None
        g_x = torch.empty_like(h_seq) if need_x else None
        g_decay = torch.zeros_like(h_seq[0]) if need_decay else None
        g_thr_acc = torch.zeros_like(h_seq) if (need_thr and tv) else (torch.zeros_like(h_seq[0]) if need_thr else None)
        g_v = torch.zeros_like(h_seq[0]) if g_vT is None else g_vT
        if g_s is None:
            g_s = torch.zeros_like(h_seq)
        gain = (1.0 - decay) if spec.decay_input else None

        def thr_at(t: int) -> Tensor:
            return thr[t] if tv else thr

        fast = (not ternary and spec.pre_fire == "none" and hard and spec.v_reset == 0.0 and not need_thr
                and not need_decay and gain is None and need_x)
        if fast:
            assert g_x is not None  # fast implies need_x
            g_v = g_v.clone()
            # binary spikes, hard reset to 0: g_h = g_v (1 - s) + (g_s - g_v h) g'(h - thr)   [- g_v h term detached]
            for t in range(T - 1, -1, -1):
                h = h_seq[t]
                thr_t = thr_at(t)
                sg = spec.surrogate.grad(h - thr_t)
                g_h = g_x[t]
                if spec.detach_reset:
                    torch.mul(g_s[t], sg, out=g_h)
                else:
                    torch.mul(torch.addcmul(g_s[t], g_v, h, value=-1.0), sg, out=g_h)
                g_h.add_(g_v.masked_fill_(h >= thr_t, 0.0))
                if g_hseq is not None:
                    g_h.add_(g_hseq[t])
                g_v = g_h * decay
            return g_x, (g_v if need_v0 else None), None, None, None, None

        for t in range(T - 1, -1, -1):
            h = h_seq[t]
            thr_t = thr_at(t)
            if ternary:
                sg = spec.surrogate.grad(h.abs() - thr_t)
                sign = torch.sign(h)
                s = (h >= thr_t).to(h.dtype) - (h <= -thr_t).to(h.dtype)
                mag = s.abs()
                # |s| is differentiated as sign(s) * ds, as autograd does for s.abs()
                ds_dh, dmag_dh = sg, sg * s
                ds_dthr, dmag_dthr = -sg * sign, -sg * mag
            else:
                if spec.pre_fire == "mpr":
                    r = mpr(h)
                    sg = spec.surrogate.grad(r - thr_t)
                    ds_dh = sg * mpr_grad(h)
                else:
                    r = h
                    sg = spec.surrogate.grad(h - thr_t)
                    ds_dh = sg
                s = (r >= thr_t).to(h.dtype)
                mag = s
                dmag_dh = ds_dh
                ds_dthr = dmag_dthr = -sg
            # gradient reaching s and |s| (through the output and, unless detached, through the reset)
            g_spike = g_s[t]
            g_mag = None
            if hard:
                g_h = g_v * (1.0 - mag)
                if not spec.detach_reset:
                    g_mag = g_v * (spec.v_reset - h)
            elif soft:
                g_h = g_v
                if not spec.detach_reset:
                    amount = thr_t if spec.soft_reset_amount is None else spec.soft_reset_amount  # soft_by_thr
                    g_spike = g_spike - amount * g_v
            else:
                g_h = g_v
            g_h = g_h + g_spike * ds_dh
            if g_hseq is not None:
                g_h = g_h + g_hseq[t]
            if g_mag is not None:
                g_h = g_h + g_mag * dmag_dh
            if g_thr_acc is not None:
                g_thr_t = g_spike * ds_dthr
                if g_mag is not None:
                    g_thr_t = g_thr_t + g_mag * dmag_dthr
                if soft_by_thr:
                    g_thr_t = g_thr_t - g_v * s
                if tv:
                    g_thr_acc[t] = g_thr_t
                else:
                    g_thr_acc += g_thr_t
            if g_x is not None:
                g_x[t] = g_h if gain is None else g_h * gain
            if g_decay is not None:
                if t > 0:
                    h_prev = h_seq[t - 1]
                    thr_p = thr_at(t - 1)
                    r_prev = mpr(h_prev) if spec.pre_fire == "mpr" else h_prev
                    v_prev = _reset(h_prev, _fire(r_prev, h_prev, thr_p, spec), thr_p, spec)
                else:
                    v_prev = v0
                g_decay += g_h * (v_prev if gain is None else v_prev - x[t])
            g_v = g_h * decay
        g_v0 = g_v if need_v0 else None
        g_decay_out = _sum_to(g_decay, decay) if g_decay is not None else None  # allocated iff need_decay
        g_thr_out = _sum_to(g_thr_acc, thr) if g_thr_acc is not None else None  # allocated iff need_thr
        return g_x, g_v0, g_decay_out, g_thr_out, None, None


_RESET_IDS = {"hard": 0, "soft": 1, "none": 2}


class _FusedNeuronKernel(torch.autograd.Function):
    """:class:`_FusedNeuron` for the cases the C++ CPU kernel covers (see ``_cpu_kernel``); saves h[T, ...] only."""

    @staticmethod
    def forward(ctx, x: Tensor, v0: Tensor, spec: NeuronSpec, decay: float, thr: float, k):
        amount = thr if spec.soft_reset_amount is None else spec.soft_reset_amount
        args = (decay, spec.decay_input, thr, _RESET_IDS[spec.reset], spec.v_reset, amount)
        s, h, v_last = k.lif_forward(x.contiguous(), v0.contiguous().reshape(-1), *args, spec.spike == "ternary")
        ctx.save_for_backward(h)
        ctx.args, ctx.spec, ctx.k = args, spec, k
        return s, v_last.view(x.shape[1:]), h

    @staticmethod
    def backward(ctx, g_s: Tensor | None, g_vT: Tensor | None, g_hseq: Tensor | None):
        (h,) = ctx.saved_tensors
        spec: NeuronSpec = ctx.spec
        g_s = torch.zeros_like(h) if g_s is None else g_s.contiguous()
        g_hseq = None if g_hseq is None else g_hseq.contiguous()
        g_vT = None if g_vT is None else g_vT.contiguous().reshape(-1)
        g_x, g_v0 = ctx.k.lif_backward(g_s, g_hseq, g_vT, h, *ctx.args, spec.detach_reset,
                                       _cpu_kernel.SURROGATE_IDS[spec.surrogate.name], spec.surrogate.param,
                                       spec.spike == "ternary")
        return g_x, (g_v0.view(h.shape[1:]) if ctx.needs_input_grad[1] else None), None, None, None, None


def _cpu_kernel_for(x: Tensor, v0: Tensor, decay: Tensor, thr: Tensor, spec: NeuronSpec, time_varying: bool):
    """The compiled kernel when it covers this call exactly (else ``None``: the Python fused path runs)."""
    covered = (
        x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and v0.shape == x.shape[1:]
        and spec.pre_fire == "none" and not time_varying
        and decay.numel() == 1 and thr.numel() == 1 and thr.ndim < x.ndim
        and not (decay.requires_grad or thr.requires_grad)
        and spec.surrogate.name in _cpu_kernel.SURROGATE_IDS
    )
    return _cpu_kernel.kernel() if covered else None


def fused_multistep(
    x: Tensor,
    spec: NeuronSpec,
    *,
    decay: Tensor | float,
    threshold: Tensor | float,
    v0: Tensor | None = None,
) -> tuple[Tensor, NeuronState, Tensor]:
    """The fused time loop (same math as :func:`reference_multistep`, ``pre_fire`` limited to ``spec``).

    Returns ``(spikes, final_state, h)`` where ``h[T, ...]`` is the pre-spike membrane (before any MPR),
    differentiable, and free: the backward keeps it anyway.
    """
    decay_t = _as_tensor(decay, x)
    thr = _as_tensor(threshold, x)
    time_varying = _is_time_varying(thr, x)
    v = torch.zeros_like(x[0]) if v0 is None else v0.to(x.dtype)
    k = _cpu_kernel_for(x, v, decay_t, thr, spec, time_varying)
    if k is not None:
        s, v_last, h = _FusedNeuronKernel.apply(x, v, spec, float(decay_t), float(thr), k)
    else:
        s, v_last, h = _FusedNeuron.apply(x, v, decay_t, thr, spec, time_varying)
    return s, NeuronState(v_last), h


def multistep(
    x: Tensor,
    spec: NeuronSpec,
    *,
    decay: Tensor | float,
    threshold: Tensor | float,
    v0: Tensor | None = None,
    pre_fire: Callable[[Tensor, int], Tensor] | None = None,
    return_fire_input: bool = False,
    backend: Literal["auto", "fused", "reference"] = "auto",
    threshold_low: Tensor | float | None = None,
) -> tuple[Tensor, NeuronState, Tensor | None]:
    """Run a neuron over ``x[T, B, ...]``; picks the fused path unless the reference loop is required.

    The reference loop is required for a callable ``pre_fire`` (MPBN); asking for ``backend="fused"`` then is
    an error rather than a silent fallback. ``return_fire_input`` returns the value compared with the
    threshold (``phi(h)`` under MPR), at no extra memory on the fused path.
    """
    needs_reference = pre_fire is not None or threshold_low is not None
    if backend == "fused" and needs_reference:
        raise ValueError("backend='fused' cannot run a callable pre_fire (e.g. MPBN) or a separate threshold_low; "
                         "use 'auto' or 'reference'")
    if backend not in ("auto", "fused", "reference"):
        raise ValueError(f"backend must be 'auto', 'fused' or 'reference', got {backend!r}")
    if backend == "reference" or needs_reference:
        return reference_multistep(x, spec, decay=decay, threshold=threshold, v0=v0, pre_fire=pre_fire,
                                   return_fire_input=return_fire_input, threshold_low=threshold_low)
    s, state, h = fused_multistep(x, spec, decay=decay, threshold=threshold, v0=v0)
    if not return_fire_input:
        return s, state, None
    return s, state, (mpr(h) if spec.pre_fire == "mpr" else h)


def single_step(
    x_t: Tensor,
    state: NeuronState | None,
    spec: NeuronSpec,
    *,
    decay: Tensor | float,
    threshold: Tensor | float,
    pre_fire: Callable[[Tensor, int], Tensor] | None = None,
    t: int = 0,
    threshold_low: Tensor | float | None = None,
) -> tuple[Tensor, NeuronState]:
    """One step for streaming/online use: ``(s_t, new_state)``; ``state=None`` starts from rest."""
    s, new_state, _ = reference_multistep(
        x_t.unsqueeze(0), spec, decay=decay, threshold=threshold,
        v0=None if state is None else state.v,
        pre_fire=None if pre_fire is None else (lambda h, _t: pre_fire(h, t)), threshold_low=threshold_low,
    )
    return s[0], new_state
