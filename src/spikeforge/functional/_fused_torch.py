"""The PyTorch fused time loop: forward and an explicit reverse-time backward, no per-step autograd graph.

Same math as :func:`spikeforge.functional.neuron.reference_multistep` (the specification), for every option it
has except an arbitrary callable ``pre_fire``: binary/ternary spikes (ternary with a symmetric or a separate
negative threshold), hard/soft/none reset, ``detach_reset``, ``decay_input``, MPR, scalar / per-channel /
per-element / per-step thresholds, learnable decay and thresholds, and MPBN (:class:`MembraneNorm`) with the
BatchNorm run inside the loop by ``torch.native_batch_norm`` — the kernel ``F.batch_norm`` runs, so spikes are
bit-identical — and its exact backward ``native_batch_norm_backward`` in the reverse loop.

Saved for the backward: the pre-spike membrane ``h[T, ...]``, plus with MPBN the fire input ``r[T, ...]`` and the
per-step batch statistics ``[T, n]``. Spikes are recomputed from ``r`` (exact: the same comparison).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .mpr import mpr, mpr_grad
from .neuron import NeuronSpec, _reset, _sum_to
from .norm import MembraneNorm

__all__ = ["FusedNormNode", "Saved", "backward", "forward"]


@dataclass
class Saved:
    """What the backward needs besides the inputs."""

    h: Tensor
    r: Tensor | None = None  # fire inputs (MPBN only)
    mean: list[Tensor] | None = None  # per-step batch statistics (MPBN in training)
    invstd: list[Tensor] | None = None


def _at(v: Tensor | None, t: int, varying: bool) -> Tensor | None:
    if v is None:
        return None
    return v[t] if varying else v


def _fire_input(h: Tensor, spec: NeuronSpec) -> Tensor:
    return mpr(h) if spec.pre_fire == "mpr" else h


def _spikes(r: Tensor, thr: Tensor, low: Tensor | None, spec: NeuronSpec) -> Tensor:
    if spec.spike == "binary":
        return (r >= thr).to(r.dtype)
    lower = -thr if low is None else low
    return (r >= thr).to(r.dtype) - (r <= lower).to(r.dtype)


def forward(x: Tensor, v0: Tensor, decay: Tensor, thr: Tensor, low: Tensor | None, spec: NeuronSpec, tv: bool,
            low_tv: bool, norm: MembraneNorm | None = None, weight: Tensor | None = None,
            bias: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Saved]:
    """``(s[T, ...], v_T, third[T, ...], saved)``; ``third`` is the fire input with MPBN, else ``h``."""
    T = x.shape[0]
    h_seq = torch.empty_like(x)
    s_seq = torch.empty_like(x)
    r_seq = torch.empty_like(x) if norm is not None else None
    means: list[Tensor] = []
    invstds: list[Tensor] = []
    v = v0
    gain = (1.0 - decay) if spec.decay_input else None
    plain_binary = spec.spike == "binary" and spec.pre_fire == "none" and norm is None
    hard_zero = spec.reset == "hard" and spec.v_reset == 0.0
    for t in range(T):
        thr_t = thr[t] if tv else thr
        h = h_seq[t]
        # decay * v + gain * x rounded twice like the reference (addcmul would fuse into one FMA rounding)
        torch.mul(v, decay, out=h)
        h.add_(x[t] if gain is None else gain * x[t])
        if plain_binary and (hard_zero or spec.reset == "none"):
            fired = h >= thr_t
            s_seq[t].copy_(fired)
            v = h.masked_fill(fired, 0.0) if hard_zero else h
            continue
        if norm is not None:
            assert r_seq is not None and weight is not None and bias is not None
            row = norm.row(t)
            out, mean, invstd = torch.native_batch_norm(norm.flat(h), weight, bias, norm.running_mean[row],
                                                        norm.running_var[row], norm.training, norm.momentum,
                                                        norm.eps)
            r = r_seq[t]
            r.copy_(out.view(h.shape))
            means.append(mean)
            invstds.append(invstd)
        else:
            r = _fire_input(h, spec)
        if spec.spike == "binary" and hard_zero:  # one compare and one select instead of the general reset
            fired = r >= thr_t
            s_seq[t].copy_(fired)
            v = h.masked_fill(fired, 0.0)
            continue
        s = _spikes(r, thr_t, _at(low, t, low_tv), spec)
        s_seq[t] = s
        v = _reset(h, s, thr_t, spec)
    if v is v0 or v._base is h_seq:
        v = v.clone()  # outputs must not alias inputs or each other
    saved = Saved(h_seq, r_seq, means or None, invstds or None)
    return s_seq, v, (r_seq if r_seq is not None else h_seq), saved


def backward(saved: Saved, g_s: Tensor | None, g_vT: Tensor | None, g_third: Tensor | None, *, x: Tensor | None,
             v0: Tensor, decay: Tensor, thr: Tensor, low: Tensor | None, spec: NeuronSpec, tv: bool, low_tv: bool,
             needs: tuple[bool, ...], norm: MembraneNorm | None = None, weight: Tensor | None = None,
             bias: Tensor | None = None) -> tuple[Tensor | None, ...]:
    """Gradients ``(x, v0, decay, threshold, threshold_low, weight, bias)`` (``None`` where not needed).

    ``needs`` flags the same seven; ``g_third`` is the gradient of the third forward output.
    """
    h_seq, r_seq = saved.h, saved.r
    T = h_seq.shape[0]
    need_x, need_v0, need_decay, need_thr, need_low = needs[:5]
    need_w = len(needs) > 5 and needs[5]
    need_b = len(needs) > 6 and needs[6]
    ternary = spec.spike == "ternary"
    hard, soft = spec.reset == "hard", spec.reset == "soft"
    soft_by_thr = soft and spec.soft_reset_amount is None
    g_x = torch.empty_like(h_seq) if need_x else None
    g_decay = torch.zeros_like(h_seq[0]) if need_decay else None
    g_thr_acc = (torch.zeros_like(h_seq) if tv else torch.zeros_like(h_seq[0])) if need_thr else None
    g_low_acc = (torch.zeros_like(h_seq) if low_tv else torch.zeros_like(h_seq[0])) if need_low else None
    g_w = torch.zeros_like(weight) if (need_w and weight is not None) else None
    g_b = torch.zeros_like(bias) if (need_b and bias is not None) else None
    g_v = torch.zeros_like(h_seq[0]) if g_vT is None else g_vT
    if g_s is None:
        g_s = torch.zeros_like(h_seq)
    gain = (1.0 - decay) if spec.decay_input else None

    fast = (not ternary and spec.pre_fire == "none" and norm is None and hard and spec.v_reset == 0.0
            and not (need_thr or need_decay) and gain is None and need_x)
    if fast:
        assert g_x is not None
        g_v = g_v.clone()
        # binary spikes, hard reset to 0: g_h = g_v (1 - s) + (g_s - g_v h) g'(h - thr)   [- g_v h term detached]
        for t in range(T - 1, -1, -1):
            h = h_seq[t]
            thr_t = thr[t] if tv else thr
            sg = spec.surrogate.grad(h - thr_t)
            g_h = g_x[t]
            if spec.detach_reset:
                torch.mul(g_s[t], sg, out=g_h)
            else:
                torch.mul(torch.addcmul(g_s[t], g_v, h, value=-1.0), sg, out=g_h)
            g_h.add_(g_v.masked_fill_(h >= thr_t, 0.0))
            if g_third is not None:
                g_h.add_(g_third[t])
            g_v = g_h * decay
        return g_x, (g_v if need_v0 else None), None, None, None, None, None

    for t in range(T - 1, -1, -1):
        h = h_seq[t]
        thr_t = thr[t] if tv else thr
        low_t = _at(low, t, low_tv)
        r = r_seq[t] if r_seq is not None else _fire_input(h, spec)
        ds_dlow = None
        stored = False
        fired = None
        if not ternary:
            sg = spec.surrogate.grad(r - thr_t)
            fired = r >= thr_t
            s = fired.to(h.dtype)
            mag, ds_dr, ds_dthr = s, sg, -sg
        elif low_t is None:
            sg = spec.surrogate.grad(r.abs() - thr_t)
            s = (r >= thr_t).to(h.dtype) - (r <= -thr_t).to(h.dtype)
            mag, ds_dr, ds_dthr = s.abs(), sg, -sg * torch.sign(r)
        else:
            upper = r >= 0.5 * (thr_t + low_t)
            sg_hi = spec.surrogate.grad(r - thr_t) * upper
            sg_lo = spec.surrogate.grad(low_t - r) * ~upper
            s = (r >= thr_t).to(h.dtype) - (r <= low_t).to(h.dtype)
            mag, ds_dr, ds_dthr, ds_dlow = s.abs(), sg_hi + sg_lo, -sg_hi, -sg_lo
        # gradient reaching s: from the output and, unless detached, through the reset (|s| as sign(s) ds)
        g_spike = g_s[t]
        g_thr_t = None
        if hard:
            g_h = g_v * (1.0 - mag) if fired is None else g_v.masked_fill(fired, 0.0)
            if not spec.detach_reset:
                if not ternary and spec.v_reset == 0.0:
                    g_spike = torch.addcmul(g_spike, g_v, h, value=-1.0)
                else:
                    g_mag = g_v * (spec.v_reset - h)
                    g_spike = g_spike + (g_mag * s if ternary else g_mag)
        else:
            g_h = g_v
            if soft:
                if not spec.detach_reset:
                    amount = thr_t if spec.soft_reset_amount is None else spec.soft_reset_amount
                    g_spike = g_spike - amount * g_v
                if soft_by_thr and g_thr_acc is not None:
                    g_thr_t = -g_v * s
        g_r = g_spike * ds_dr
        if g_thr_acc is not None:
            g_thr_t = g_spike * ds_dthr if g_thr_t is None else g_thr_t + g_spike * ds_dthr
            if tv:
                g_thr_acc[t] = g_thr_t
            else:
                g_thr_acc += g_thr_t
        if g_low_acc is not None and ds_dlow is not None:
            if low_tv:
                g_low_acc[t] = g_spike * ds_dlow
            else:
                g_low_acc += g_spike * ds_dlow
        if norm is not None:
            assert weight is not None
            if g_third is not None:
                g_r = g_r + g_third[t]
            row = norm.row(t)
            mean = saved.mean[t] if saved.mean is not None else torch.empty(0)
            invstd = saved.invstd[t] if saved.invstd is not None else torch.empty(0)
            gi, gw, gb = torch.ops.aten.native_batch_norm_backward(
                norm.flat(g_r.contiguous()), norm.flat(h), weight, norm.running_mean[row], norm.running_var[row],
                mean, invstd, norm.training, norm.eps, [True, g_w is not None, g_b is not None])
            if g_x is not None and gain is None:
                g_h = torch.add(g_h, gi.view(h.shape), out=g_x[t])  # written in place: no copy below
                stored = True
            else:
                g_h = g_h + gi.view(h.shape)
            if g_w is not None:
                g_w += gw
            if g_b is not None:
                g_b += gb
        else:
            g_h = g_h + (g_r * mpr_grad(h) if spec.pre_fire == "mpr" else g_r)
            if g_third is not None:
                g_h = g_h + g_third[t]
        if g_x is not None and not stored:
            g_x[t] = g_h if gain is None else g_h * gain
        if g_decay is not None:
            if t > 0:
                h_prev = h_seq[t - 1]
                thr_p = thr[t - 1] if tv else thr
                r_prev = r_seq[t - 1] if r_seq is not None else _fire_input(h_prev, spec)
                v_prev = _reset(h_prev, _spikes(r_prev, thr_p, _at(low, t - 1, low_tv), spec), thr_p, spec)
            else:
                v_prev = v0
            g_decay += g_h * (v_prev if gain is None or x is None else v_prev - x[t])
        g_v = g_h * decay
    return (g_x, g_v if need_v0 else None,
            _sum_to(g_decay, decay) if g_decay is not None else None,
            _sum_to(g_thr_acc, thr) if g_thr_acc is not None else None,
            _sum_to(g_low_acc, low) if (g_low_acc is not None and low is not None) else None,
            g_w, g_b)


class FusedNormNode(torch.autograd.Function):
    """The fused loop with MPBN (or any option) as one autograd node; inputs
    ``(x, v0, decay, thr, low, weight, bias, spec, tv, low_tv, norm)``, outputs ``(s, v_T, third)``."""

    @staticmethod
    def forward(ctx, x, v0, decay, thr, low, weight, bias, spec, tv, low_tv, norm):
        s, v, third, saved = forward(x, v0, decay, thr, low, spec, tv, low_tv, norm, weight, bias)
        ctx.set_materialize_grads(False)  # unused outputs get None, not a zero tensor to add T times
        # h and r go through save_for_backward (one of them is an output: no reference cycle through ctx)
        ctx.save_for_backward(x if spec.decay_input else None, v0, decay, thr, low, weight, bias, saved.h, saved.r)
        ctx.stats = (saved.mean, saved.invstd)
        ctx.spec, ctx.tv, ctx.low_tv, ctx.norm = spec, tv, low_tv, norm
        return s, v, third

    @staticmethod
    def backward(ctx, g_s, g_v, g_third):
        x, v0, decay, thr, low, weight, bias, h, r = ctx.saved_tensors
        grads = backward(Saved(h, r, *ctx.stats), g_s, g_v, g_third, x=x, v0=v0, decay=decay, thr=thr, low=low,
                         spec=ctx.spec, tv=ctx.tv, low_tv=ctx.low_tv, needs=tuple(ctx.needs_input_grad[:7]),
                         norm=ctx.norm, weight=weight, bias=bias)
        ctx.stats = None
        return (*grads, None, None, None, None)
