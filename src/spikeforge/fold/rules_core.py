"""Fold rules of the core layers: containers, conv/linear (+BN), pass-through ops and the spiking neuron.

Each rule is ``rule(module, scale, ctx) -> (folded_module, out_scale)`` (see :mod:`spikeforge.fold`).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from ..functional import mpr_inverse
from ..neurons import MembraneBN, Neuron
from .linear import CONV_LIKE, NORM_LIKE, StepAffine, merge_affine, norm_to_affine, pending_pool, scale_input
from .registry import FoldContext, FoldError, Scale, fold_rule

__all__ = ["fold_conv_norm", "fold_sequence", "mpbn_threshold"]


# --- containers ----------------------------------------------------------------------------------------------


def fold_conv_norm(parent: nn.Module, conv_attr: str, norm_attr: str, scale: Scale | None,
                   ctx: FoldContext) -> Scale | None:
    """Fold ``parent.<conv_attr>`` (absorbing ``scale``) and merge ``parent.<norm_attr>`` into it.

    A time-shared BN (BatchNorm1d/2d, tdBN) merges into the conv's weights and bias and is replaced by an
    ``nn.Identity`` (so qualified names and ``Sequential`` indices stay); BNTT/TEBN become a :class:`StepAffine`.
    Returns the outgoing scale (always None: the conv output carries no amplitude).
    """
    out = ctx.child(parent, conv_attr, scale)
    if out is not None:
        raise ctx.error_unconsumed(out, f"output of {ctx.qualified(conv_attr)}")
    conv, norm = getattr(parent, conv_attr), getattr(parent, norm_attr)
    if not isinstance(norm, NORM_LIKE):  # already folded (Identity / StepAffine) or no norm at all
        return ctx.child(parent, norm_attr, None)
    norm_name = ctx.qualified(norm_attr)
    C = conv.weight.shape[0]
    n_feat = norm.num_features
    if n_feat != C:
        raise FoldError(f"{norm_name} normalises {n_feat} channels but {ctx.qualified(conv_attr)} outputs {C}")
    k, b, per_step = norm_to_affine(norm, norm_name)
    ref = conv.weight
    if per_step:
        setattr(parent, norm_attr, StepAffine(k.to(ref), b.to(ref)))
    else:
        merge_affine(conv, k, b, ctx.qualified(conv_attr))
        setattr(parent, norm_attr, nn.Identity())
    return None


def fold_sequence(parent: nn.Module, attrs: list[str], scale: Scale | None, ctx: FoldContext) -> Scale | None:
    """Fold ``parent``'s children ``attrs`` as a chain (each feeds the next), merging conv→BN pairs.

    Rules for custom modules whose forward is a plain chain of some of their children can call this.
    """
    i = 0
    while i < len(attrs):
        module = getattr(parent, attrs[i])
        nxt = getattr(parent, attrs[i + 1]) if i + 1 < len(attrs) else None
        if isinstance(module, CONV_LIKE) and isinstance(nxt, NORM_LIKE):
            scale = fold_conv_norm(parent, attrs[i], attrs[i + 1], scale, ctx)
            i += 2
        else:
            scale = ctx.child(parent, attrs[i], scale)
            i += 1
    return scale


@fold_rule(nn.Sequential)
def _sequential(seq: nn.Sequential, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    return seq, fold_sequence(seq, [k for k, m in seq._modules.items() if m is not None], scale, ctx)


# --- linear layers -------------------------------------------------------------------------------------------


@fold_rule(*CONV_LIKE)
def _conv(layer: nn.Module, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    """``W ∗ (a ⊙ s) = W' ∗ s``: input-channel slice (channel), whole tensor (layer), unshared conv (element)."""
    if scale is None:
        return layer, None
    return scale_input(layer, scale, ctx.name), None


@fold_rule(*NORM_LIKE)
def _standalone_norm(norm: nn.Module, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    """A BN with no conv before it becomes a :class:`StepAffine` ``y = k ⊙ x + b`` (time-shared or per step);
    an input amplitude multiplies ``k`` (``k ⊙ (a ⊙ x) = (k ⊙ a) ⊙ x``, layer/channel only)."""
    k, b, per_step = norm_to_affine(norm, ctx.name)
    if not per_step:
        k, b = k[None], b[None]
    if scale is not None:
        scale.check_plain(ctx.name, type(norm).__name__)
        k = k * scale.vector(k.shape[1], ctx.name).to(k)[None]
    ref = next(norm.parameters(), None)
    dtype = ref.dtype if ref is not None else torch.get_default_dtype()
    return StepAffine(k.to(dtype), b.to(dtype)), None


@fold_rule(StepAffine)
def _step_affine(aff: StepAffine, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    """An already folded affine: ``w_t ⊙ (a ⊙ x) + b_t = (w_t ⊙ a) ⊙ x + b_t`` (layer/channel amplitude)."""
    if scale is not None:
        scale.check_plain(ctx.name, "StepAffine")
        a = scale.vector(aff.weight.shape[1], ctx.name).to(aff.weight)
        with torch.no_grad():
            aff.weight.mul_(a)
    return aff, None


# --- pass-through ops ----------------------------------------------------------------------------------------


@fold_rule(nn.Identity, nn.Dropout)
def _identity(m: nn.Module, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    """Identity and (inference-time) dropout pass any amplitude through."""
    return m, scale


@fold_rule(nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
def _avg_pool(m: nn.Module, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    """``avg(a ⊙ s) = a ⊙ avg(s)`` for a layer/channel amplitude (the pool mixes positions, not channels; a sum of
    terms concatenated along channels pools term by term).

    An element-wise amplitude ``a[C, H, W]`` of a 2-D map: the pool is linear, so it moves into its consumers
    (:class:`~spikeforge.fold.registry.PendingPool`): the pool becomes an ``nn.Identity`` and the next conv absorbs
    pool and amplitude as one unshared conv, a linear layer after a global pool and a flatten reads the flattened
    ``C·H·W`` map, any other consumer (an identity shortcut) gets the pool as a depthwise unshared conv.
    """
    if scale is None or scale.granularity != "element":
        return m, scale
    if scale.terms > 1 or scale.pool is not None or scale.flat or scale.value.ndim != 3 or \
            not isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
        raise FoldError(f"the {scale.describe()} reaches the pooling layer {ctx.name} ({type(m).__name__}); only a "
                        "2-D average pool of a plain element-wise amplitude [C, H, W] folds")
    pool = pending_pool(m, scale.value, ctx.name)
    return nn.Identity(), dataclasses.replace(scale, pool=pool)


def check_max_commutes(scale: Scale, what: str, ctx: FoldContext) -> None:
    """``max(a ⊙ s) = a ⊙ max(s)`` holds for a positive layer/channel amplitude only; raise otherwise."""
    scale.check_plain(ctx.name, what)
    if scale.granularity == "element" or not scale.positive():
        raise FoldError(f"the amplitude of {scale.source} reaches the {what} {ctx.name}; max commutes "
                        "with a positive layer/channel amplitude only (got "
                        f"{scale.granularity}-wise, min {float(scale.value.min()):.4g})")


@fold_rule(nn.MaxPool1d, nn.MaxPool2d)
def _max_pool(m: nn.Module, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    """``max(a ⊙ s) = a ⊙ max(s)`` for a positive layer/channel amplitude."""
    if scale is None:
        return m, None
    check_max_commutes(scale, "max-pooling layer", ctx)
    return m, scale


@fold_rule(nn.Flatten)
def _flatten(m: nn.Flatten, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    """Flattening the per-sample dims ``[T, B, C, H, W] -> [T, B, C·H·W]``: a channel amplitude repeats over its
    channel's H·W features, an element amplitude is flattened the same way."""
    if scale is None:
        return m, None
    if scale.pool is not None and scale.pool.out_size != (1, 1):
        raise FoldError(f"the element-wise amplitude of {scale.source} reaches the pooling layer {scale.pool.name}, "
                        f"whose {scale.pool.out_size} output is flattened by {ctx.name}; a locally pooled element-wise "
                        "amplitude folds into a following conv, a globally pooled one into a following linear layer")
    if m.start_dim != 2 or m.end_dim != -1:
        raise FoldError(f"{ctx.name} flattens dims {m.start_dim}..{m.end_dim}; an amplitude ({scale.source}) can only "
                        "pass a per-sample flatten of time-first tensors (start_dim=2, end_dim=-1)")
    return m, scale.flattened()


# --- the spiking neuron --------------------------------------------------------------------------------------


def mpbn_threshold(mpbn: MembraneBN, v_th: Tensor, name: str) -> tuple[Tensor, bool]:
    """MPBN folded into the threshold (arXiv:2308.08359): ``Ṽ = (V_th − β)·sqrt(σ² + ε)/λ + μ`` (float64).

    Returns ``(threshold, per_step)``; per-step running statistics give ``[S, 1, *feature]`` (leading step dim,
    batch dim 1). ``λ`` is the effective (floored) scale; ``λ ≤ 0`` (possible only with ``mpbn_min_scale=None``)
    flips or removes the comparison and raises :class:`FoldError` (methods.md §10.2).
    """
    lam = mpbn.scale().detach()
    bad = (lam <= 0).nonzero().flatten().tolist()
    if bad:
        unit = "channel" if mpbn.mode == "channel" else "element (flat index)"
        shown = ", ".join(str(i) for i in bad[:12]) + (", …" if len(bad) > 12 else "")
        raise FoldError(f"{name}: MPBN scale λ ≤ 0 at {len(bad)} {unit}(s) [{shown}] (values "
                        f"{[round(float(lam[i]), 6) for i in bad[:5]]}); a non-positive λ turns 'fire above' into "
                        "'fire below' (or nothing), which plain spiking inference cannot express. Train with "
                        "mpbn_min_scale > 0 (the default 1e-4) to keep λ positive")
    lam_s, beta = (t.detach().to(torch.float64) for t in mpbn.affine())
    v = v_th.detach().to(torch.float64)

    def at(t: int) -> Tensor:
        mean, var = (s.detach().to(torch.float64) for s in mpbn.stats(t))
        return (v - beta) * torch.sqrt(var + mpbn.eps) / lam_s + mean

    if mpbn.running == "shared":
        return at(0), False
    return torch.stack([at(t) for t in range(mpbn.max_steps)]).unsqueeze(1), True


@fold_rule(Neuron)
def _neuron(neuron: Neuron, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    """Fold a neuron's training-only parts into its threshold and pass its amplitude on.

    * MPR (InfLoR, arXiv:2307.04356): fire on ``φ(h) ≥ V_th`` ⇔ ``h ≥ φ⁻¹(V_th)``; the threshold becomes
      ``mpr_inverse(V_th)`` and ``pre_fire`` ``'none'`` (a soft reset by the threshold keeps subtracting V_th).
    * MPBN: the threshold becomes ``(V_th − β)·sqrt(σ² + ε)/λ + μ`` (per channel/element; per step with per-step
      running statistics); the reset already acted on the raw membrane, so a soft reset keeps subtracting V_th.
      Ternary spikes also get the negative threshold ``threshold_low = (−V_th − β)·sqrt(σ² + ε)/λ + μ``.
    * Input amplitude ``a > 0`` (the neuron reads ``a ⊙ x̂``): with a zero initial membrane the membrane is
      ``u = a ⊙ û`` at every step (charge, hard reset to 0 and soft reset are linear), so firing on ``u ≥ θ`` is
      firing on ``û ≥ θ/a``; the threshold (and a soft-reset amount) are divided by ``a``.
    * A uniform initial membrane used in training only (``init_when='train'``) is dropped (``init='zero'``).
    * The amplitude leaves the neuron: the output is the plain spike tensor, the amplitude is the outgoing scale.
    """
    cfg, spec = neuron.config, neuron.spec
    name = ctx.name
    raw_thr = neuron.threshold.detach()
    thr = raw_thr.to(torch.float64)
    per_step = neuron.threshold_per_step
    soft_amount = spec.soft_reset_amount
    v_reset = spec.v_reset
    moved = False
    if spec.pre_fire == "mpr":
        thr = mpr_inverse(thr)
        moved = True
    low = None
    if neuron.mpbn is not None:
        if per_step or raw_thr.ndim != 0:
            raise FoldError(f"{name}: MPBN with a non-scalar threshold cannot be folded")
        if spec.spike == "ternary":
            # fire -1 when ũ <= -V_th: the negative threshold maps to (−V_th − β)σ/λ + μ, not to −Ṽ
            low, _ = mpbn_threshold(neuron.mpbn, -thr, name)
        thr, per_step = mpbn_threshold(neuron.mpbn, thr, name)
        moved = True
    if moved and spec.reset == "soft" and soft_amount is None:
        if raw_thr.ndim != 0:
            raise FoldError(f"{name}: a soft reset by a non-scalar threshold cannot be kept while folding MPR/MPBN")
        soft_amount = float(raw_thr)  # the reset acted on the raw membrane by the raw threshold
    if scale is not None:
        if not scale.positive():
            raise FoldError(f"the amplitude of {scale.source} reaches the neuron {name} directly; dividing its "
                            f"threshold by the amplitude needs a > 0 (min {float(scale.value.min()):.4g})")
        if cfg.init == "uniform" and cfg.init_when == "always":
            raise FoldError(f"the amplitude of {scale.source} reaches {name}, whose random initial membrane "
                            "(init_when='always') would have to be divided by the amplitude")
        a = scale.sample_tensor(neuron.feature_shape, name).to(torch.float64)
        thr = thr / a
        if low is not None:
            low = low / a
        layer_a = float(a) if a.ndim == 0 or a.numel() == 1 else None
        if spec.reset == "soft" and soft_amount is not None:
            if layer_a is None:
                raise FoldError(f"{name}: its soft reset subtracts a constant ({soft_amount}); the {scale.granularity}"
                                f"-wise amplitude of {scale.source} would need a different amount per "
                                f"{scale.granularity}")
            soft_amount = soft_amount / layer_a
        if spec.reset == "hard" and v_reset != 0.0:
            if layer_a is None:
                raise FoldError(f"{name}: hard reset to v_reset={v_reset} ≠ 0 with the {scale.granularity}-wise "
                                f"amplitude of {scale.source} would need a different reset value per "
                                f"{scale.granularity}")
            v_reset = v_reset / layer_a
    out = None
    if neuron.amplitude is not None:
        amp = neuron.amplitude
        out = Scale(amp.weight.detach().clone(), amp.granularity, name)
    # rebuild the neuron as plain spiking inference
    neuron.mpbn = None
    neuron.amplitude = None
    if "threshold" in neuron._parameters:
        del neuron._parameters["threshold"]
    else:
        del neuron._buffers["threshold"]
    neuron.register_buffer("threshold", thr.to(dtype=raw_thr.dtype, device=raw_thr.device))
    if low is not None:
        neuron.register_buffer("threshold_low", low.to(dtype=raw_thr.dtype, device=raw_thr.device))
    neuron.threshold_per_step = per_step
    neuron.spec = dataclasses.replace(spec, pre_fire="none", soft_reset_amount=soft_amount, v_reset=v_reset)
    neuron.config = dataclasses.replace(
        cfg, pre_fire=None, amplitude=None, learn_threshold=False, soft_reset_amount=soft_amount, v_reset=v_reset,
        init="zero" if cfg.init_when == "train" else cfg.init)
    return neuron, out
