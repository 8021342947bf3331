"""Fold rule of :class:`spikeforge.layers.BasicBlock` in its three residual styles.

Input amplitude ``a`` (the previous neuron's) and the identity shortcut, per style:

* ``standard`` — ``sn2(bn2(conv2(·)) + a ⊙ x̂)``. conv1 absorbs ``a``; the receiving neuron sn2 is rescaled:
  ``sn2(y + a ⊙ x̂)`` spikes exactly as ``sn2'(y/a + x̂)`` with threshold (and soft-reset amount) divided by ``a``
  (membrane linear in its input, zero initial membrane), so ``1/a`` folds into conv2/bn2's outputs. Needs
  ``a > 0``; a channel or layer ``a`` keeps conv2 shared, an element-wise ``a`` makes conv2 unshared.
* ``sew`` (SEW ADD, output ``a2 ⊙ ŝ2 + shortcut``, an integer spike count without amplitudes) — the shortcut is
  the identity (carrying ``a``) or conv-BN-neuron (absorbing ``a``, carrying its neuron's amplitude). Equal
  addend amplitudes (in particular none) keep the ADD and carry the common amplitude on. Different ones: the
  block joins its addends by concatenation along channels (``join = 'cat'``) and passes on a
  :class:`~spikeforge.fold.registry.Scale` of ``k`` terms; each consumer reads every addend's binary spikes
  with its own weight slice (``W ∗ Σ_j a_j ⊙ ŝ_j = [W·a_1, …, W·a_k] ∗ cat(ŝ_1, …, ŝ_k)``). An identity shortcut
  passes the input's terms on, so a stream of identity blocks accumulates terms until a downsampling block.
* ``ms`` (MS-ResNet, real-valued stream ``x + bn2(conv2(sn2(bn1(conv1(sn1(x))))))``) — sn1 reads ``a ⊙ x̂`` and is
  rescaled as above; identity: ``1/a`` folds into conv2/bn2's outputs and the block output ``a ⊙ (x̂ + y/a)``
  carries ``a`` on; conv shortcut: it absorbs ``a`` and the output carries no amplitude.

The downsampling shortcut ``Sequential(conv 1×1, BN)`` absorbs ``a`` like any conv. sn1's and sn2's own amplitudes
fold into conv2 / the next block's consumers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..layers.blocks import BasicBlock
from .linear import StepAffine, materialize_pool, scale_output
from .registry import FoldContext, FoldError, Scale, fold_rule
from .rules_core import fold_conv_norm

__all__ = ["scale_branch_output"]


def scale_branch_output(parent: nn.Module, conv_attr: str, norm_attr: str, factor: torch.Tensor,
                        in_size: tuple[int, int] | None, ctx: FoldContext) -> None:
    """Multiply the output of a folded conv→norm pair by ``factor`` (scalar, per channel or per element)."""
    norm = getattr(parent, norm_attr)
    if isinstance(norm, StepAffine):
        scale_output(norm, factor, ctx.qualified(norm_attr))
        return
    conv = getattr(parent, conv_attr)
    new = scale_output(conv, factor, ctx.qualified(conv_attr), in_size)
    if new is not conv:
        setattr(parent, conv_attr, new)


def _spatial(neuron: nn.Module) -> tuple[int, int] | None:
    fs = getattr(neuron, "feature_shape", None)
    if fs is None or len(fs) != 3 or fs[1] is None or fs[2] is None:
        return None
    return int(fs[1]), int(fs[2])


def _inverse(scale: Scale, what: str, ctx: FoldContext) -> torch.Tensor:
    if bool((scale.value == 0).any()):
        raise FoldError(f"{ctx.name}: the amplitude of {scale.source} has zeros, so {what} cannot be divided by it")
    return 1.0 / scale.value.detach().to(torch.float64)


def _term_values(scale: Scale | None, channels: int) -> Tensor:
    """The amplitude of each of a scale's concatenated channels as ``[k·C, 1, 1]`` or ``[k·C, H, W]`` (ones for
    none)."""
    if scale is None:
        return torch.ones(channels, 1, 1, dtype=torch.float64)
    v = scale.value.detach().to(torch.float64)
    if scale.granularity == "layer":
        return v.reshape(1, 1, 1).expand(channels * scale.terms, 1, 1).clone()
    return v


def _join(block: BasicBlock, parts: list[Scale | None], ctx: FoldContext) -> Scale | None:
    """The scale of a SEW sum of addends with scales ``parts``: one common scale (ADD kept), or the addends
    concatenated along channels (``block.join = 'cat'``) with a scale of all their terms."""
    first = parts[0]
    if all(p is None for p in parts):
        return None
    if first is not None and all(first.same_as(p) for p in parts[1:]) and first.terms == 1:
        return first
    for p in parts:
        if p is not None and (p.flat or p.pool is not None):
            raise FoldError(f"{ctx.name}: the {p.describe()} reaches a SEW sum, which reads spike maps")
    C = block.conv2.out_channels
    values = [_term_values(p, C) for p in parts]
    if any(v.shape[1:] != (1, 1) for v in values):
        hw = next(v.shape[1:] for v in values if v.shape[1:] != (1, 1))
        values = [v.expand(v.shape[0], *hw) for v in values]
    granularity = "element" if any(p is not None and p.granularity == "element" for p in parts) else "channel"
    terms = sum(1 if p is None else p.terms for p in parts)
    source = " + ".join(p.source if p is not None else "(no amplitude)" for p in parts)
    block.join = "cat"
    return Scale(torch.cat(values), granularity, f"{ctx.name} [{source}]", terms=terms)


@fold_rule(BasicBlock)
def _basic_block(block: BasicBlock, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    identity = isinstance(block.shortcut, nn.Identity)
    if identity and scale is not None and scale.pool is not None and block.style != "ms":
        # the input is an average pool of an element-wise amplitude: the shortcut gets that pool as a layer
        ref = block.conv1.weight
        block.shortcut = materialize_pool(scale.pool, ref.dtype, ref.device, ctx.qualified("shortcut"))
        s = fold_conv_norm(block, "conv1", "bn1", scale, ctx)
        s = ctx.child(block, "sn1", s)
        fold_conv_norm(block, "conv2", "bn2", s, ctx)
        a2 = ctx.child(block, "sn2", None)
        return block, (a2 if block.style == "standard" else _join(block, [a2, None], ctx))
    if scale is not None and scale.terms > 1 and block.style != "sew":
        raise FoldError(f"{ctx.name}: the {scale.describe()} reaches a '{block.style}' block, whose shortcut adds it "
                        "into a membrane or a real-valued stream; only conv/linear layers and SEW blocks read it")
    if block.style == "ms":
        s = ctx.child(block, "sn1", scale)
        s = fold_conv_norm(block, "conv1", "bn1", s, ctx)
        s = ctx.child(block, "sn2", s)
        fold_conv_norm(block, "conv2", "bn2", s, ctx)
        if not identity:
            if ctx.child(block, "shortcut", scale) is not None:
                raise FoldError(f"{ctx.name}: the shortcut output unexpectedly carries an amplitude")
            return block, None
        if scale is None:
            return block, None
        # sn1 already checked a > 0; the residual stream keeps carrying a
        scale_branch_output(block, "conv2", "bn2", _inverse(scale, "the branch output", ctx), _spatial(block.sn2), ctx)
        return block, scale

    s = fold_conv_norm(block, "conv1", "bn1", scale, ctx)
    s = ctx.child(block, "sn1", s)
    fold_conv_norm(block, "conv2", "bn2", s, ctx)
    shortcut_scale = scale if identity else ctx.child(block, "shortcut", scale)
    if block.style == "standard" and not identity and shortcut_scale is not None:
        raise FoldError(f"{ctx.name}: the shortcut output unexpectedly carries an amplitude")

    if block.style == "standard":
        if identity and scale is not None:
            if not scale.positive():
                raise FoldError(
                    f"{ctx.name}: the amplitude of {scale.source} reaches the identity shortcut of a standard block; "
                    "the fold divides sn2's input (and threshold) by it, which needs a > 0 (min "
                    f"{float(scale.value.min()):.4g}). Constrain the amplitude positive or use a conv shortcut")
            scale_branch_output(block, "conv2", "bn2", _inverse(scale, "the branch output", ctx),
                                _spatial(block.sn1), ctx)
            return block, ctx.child(block, "sn2", scale)
        return block, ctx.child(block, "sn2", None)

    # SEW ADD: output = a2 ⊙ ŝ2 + a_sc ⊙ ŝ_sc (a_sc = a for the identity, the shortcut neuron's otherwise)
    a2 = ctx.child(block, "sn2", None)
    return block, _join(block, [a2, shortcut_scale], ctx)
