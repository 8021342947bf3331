"""Fold rules of the spiking PointNet (:mod:`spikeforge.models.pointnet`, arXiv:2310.06232).

PointNet's forward is not a plain chain: a T-Net predicts a per-sample transform ``A`` from a spike tensor and the
same spike tensor is then multiplied by ``A``; T-Nets and the encoder max-pool over points. Exact rules:

* :class:`PointMaxPool` — ``max_n (a ⊙ ŝ) = a ⊙ max_n ŝ`` for a **positive** layer/channel amplitude ``a``;
  anything else (a non-positive entry turns the max into a min) raises :class:`FoldError`.
* Feature transform — the first block's spikes ``a ⊙ ŝ1`` feed both the feature T-Net (whose first conv absorbs
  ``a``) and the product ``x_n ← x_n A``. Since ``(a ⊙ ŝ)ᵀ A = ŝᵀ (diag(a) A)``, the amplitude moves into the
  predicted matrix: ``A' = diag(a) A`` is produced by scaling the rows ``c·k + j`` of the T-Net's last linear layer
  (weight and bias) by ``a_c`` and its offset (the identity) to ``diag(a)``. Exact for layer- and channel-wise
  amplitudes of either sign. (The folded model's feature transform is therefore ``diag(a) A``, so its
  orthogonality regulariser differs from the trained model's; the regulariser is a training-only quantity.)
* Head — ``FC → Dropout → BN`` (the official order): dropout is the identity at inference, so the BN merges into
  the FC across it.
* Element-wise amplitudes/MPBN are rejected when the model is built (they would depend on point order).
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.pointnet import PointMaxPool, SpikingPointNet, TNet, TransformHead
from .linear import CONV_LIKE, NORM_LIKE, merge_affine
from .registry import FoldContext, FoldError, Scale, fold_rule
from .rules_core import check_max_commutes, fold_sequence

__all__: list[str] = []


@fold_rule(PointMaxPool)
def _point_max_pool(m: PointMaxPool, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    """``max_n(a ⊙ ŝ) = a ⊙ max_n(ŝ)`` for ``a > 0`` (layer or channel); ``[T, B, C, N] -> [T, B, C]``."""
    if scale is None:
        return m, None
    check_max_commutes(scale, "max-pool over points", ctx)
    if scale.granularity == "channel":
        # (C, 1) over [C, N] -> (C,) over the pooled feature vector
        return m, Scale(scale.value.detach().reshape(-1), "channel", scale.source, flat=scale.flat)
    return m, scale


@fold_rule(TransformHead)
def _transform_head(m: TransformHead, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    if scale is not None:
        raise ctx.error_unconsumed(scale, "a T-Net's reshape to a matrix")
    return m, None


def _fold_chain_skipping_dropout(seq: nn.Sequential, scale: Scale | None, ctx: FoldContext) -> Scale | None:
    """Fold ``seq`` as a chain; a dropout between a conv/linear and a BN is skipped (identity at inference), so
    the BN merges into the conv/linear."""
    attrs = [k for k, v in seq._modules.items() if v is not None]
    chain: list[str] = []
    for i, a in enumerate(attrs):
        mod = seq._modules[a]
        if (isinstance(mod, nn.Dropout) and 0 < i < len(attrs) - 1
                and isinstance(seq._modules[attrs[i - 1]], CONV_LIKE)
                and isinstance(seq._modules[attrs[i + 1]], NORM_LIKE)):
            continue
        chain.append(a)
    return fold_sequence(seq, chain, scale, ctx)


def _absorb_into_transform(tnet: TNet, a: torch.Tensor, name: str) -> None:
    """Make ``tnet`` predict ``diag(a) A`` instead of ``A`` (rows of the matrix scaled by ``a``)."""
    k = tnet.k
    last = tnet.mlp[-1]
    if not isinstance(last, nn.Linear) or last.out_features != k * k:
        raise FoldError(f"{name}: the T-Net's last layer must be a Linear with {k * k} outputs to absorb the "
                        f"amplitude, got {type(last).__name__}")
    a64 = a.detach().to(torch.float64)
    merge_affine(last, a64.repeat_interleave(k), torch.zeros(1, dtype=torch.float64), f"{name}.mlp.{len(tnet.mlp) - 1}")
    off = tnet.out.offset
    off.copy_((a64[:, None] * off.to(torch.float64)).to(off.dtype))


@fold_rule(SpikingPointNet)
def _pointnet(model: SpikingPointNet, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    if scale is not None:
        raise ctx.error_unconsumed(scale, "PointNet's input")
    for attr in ("stn", "input_transform"):
        if ctx.child(model, attr, None) is not None:
            raise FoldError(f"{ctx.qualified(attr)} unexpectedly returns an amplitude")
    s1 = ctx.child(model, "mlp1", None)
    if ctx.child(model, "fstn", s1) is not None:
        raise FoldError(f"{ctx.qualified('fstn')} unexpectedly returns an amplitude")
    if s1 is not None:
        k = model.fstn.k
        _absorb_into_transform(model.fstn, s1.vector(k, ctx.qualified("feature_transform")), ctx.qualified("fstn"))
    for attr in ("feature_transform", "mlp2", "pool"):
        if ctx.child(model, attr, None) is not None:
            raise FoldError(f"{ctx.qualified(attr)} unexpectedly returns an amplitude")
    prev = ctx.name
    ctx.name = ctx.qualified("head")
    try:
        out = _fold_chain_skipping_dropout(model.head, None, ctx)
    finally:
        ctx.name = prev
    if out is not None:
        raise ctx.error_unconsumed(out, "the classifier output")
    return model, None
