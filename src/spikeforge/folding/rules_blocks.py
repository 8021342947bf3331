"""Fold rule of :class:`spikeforge.layers.BasicBlock` in its three residual styles.

Input amplitude ``a`` (the previous neuron's) and the identity shortcut, per style:

* ``standard`` — ``sn2(bn2(conv2(·)) + a ⊙ x̂)``. conv1 absorbs ``a``; the receiving neuron sn2 is rescaled:
  ``sn2(y + a ⊙ x̂)`` spikes exactly as ``sn2'(y/a + x̂)`` with threshold (and soft-reset amount) divided by ``a``
  (membrane linear in its input, zero initial membrane), so ``1/a`` folds into conv2/bn2's outputs. Needs
  ``a > 0``; a channel or layer ``a`` keeps conv2 shared, an element-wise ``a`` makes conv2 unshared.
* ``sew`` (SEW ADD, output ``a2 ⊙ ŝ2 + shortcut``, an integer spike count without amplitudes) — the shortcut is
  the identity (carrying ``a``) or conv-BN-neuron (absorbing ``a``, carrying its neuron's amplitude). The spike sum
  carries one amplitude on to the next layer only if both addends' amplitudes are equal (in particular both
  absent); otherwise :class:`FoldError`.
* ``ms`` (MS-ResNet, real-valued stream ``x + bn2(conv2(sn2(bn1(conv1(sn1(x))))))``) — sn1 reads ``a ⊙ x̂`` and is
  rescaled as above; identity: ``1/a`` folds into conv2/bn2's outputs and the block output ``a ⊙ (x̂ + y/a)``
  carries ``a`` on; conv shortcut: it absorbs ``a`` and the output carries no amplitude.

The downsampling shortcut ``Sequential(conv 1×1, BN)`` absorbs ``a`` like any conv. sn1's and sn2's own amplitudes
fold into conv2 / the next block's consumers.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers.blocks import BasicBlock
from .linear import StepAffine, scale_output
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


@fold_rule(BasicBlock)
def _basic_block(block: BasicBlock, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    identity = isinstance(block.shortcut, nn.Identity)
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
    if a2 is None and shortcut_scale is None:
        return block, None
    if a2 is not None and a2.same_as(shortcut_scale):
        return block, a2
    src_sc = shortcut_scale.source if shortcut_scale else "none"
    raise FoldError(
        f"{ctx.name}: a SEW block adds sn2's spikes (amplitude of {a2.source if a2 else 'none'}) and its shortcut's "
        f"(amplitude of {src_sc}); the spike sum can carry one amplitude into the next layer only if both are "
        "equal. Use equal (or no) amplitudes, or the 'standard' style")
