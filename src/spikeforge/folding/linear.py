"""Fold arithmetic on linear layers: absorb an input amplitude, merge a BN, rescale outputs.

* input amplitude (Ternary/Real Spike): ``W ∗ (a ⊙ s) = W' ∗ s`` with ``W'[:, c] = a_c·W[:, c]`` (channel),
  ``W' = a·W`` (layer), an unshared conv ``W'_p[o, c, δ] = W[o, c, δ]·a[c, p + δ]`` (element, 2-D convs);
* BN merge: ``BN(W x + b) = W' x + b'`` with ``W' = W·γ/σ``, ``b' = (b − μ)·γ/σ + β``, ``σ = sqrt(σ²_run + ε)``
  (tdBN uses ``γ·α·V_th``);
* per-step BNs (BNTT, TEBN) become :class:`StepAffine`, ``y_t = w_t ⊙ x_t + b_t``.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers.norm import BNTT2d, TDBatchNorm2d, TEBN2d
from ..layers.time import SeqModule
from ..layers.unshared import UnsharedConv2d
from .registry import FoldError

__all__ = [
    "StepAffine", "CONV_LIKE", "NORM_LIKE", "norm_affine", "norm_to_affine", "scale_input", "merge_affine",
    "scale_output",
]

CONV_LIKE = (nn.Conv1d, nn.Conv2d, nn.Linear, UnsharedConv2d)
NORM_LIKE = (_BatchNorm, BNTT2d)


class StepAffine(nn.Module):
    """Per-channel affine on ``x[T, B, C, …]``: ``y_t = w_t ⊙ x_t + b_t`` with ``w, b`` of shape ``[S, C]``.

    ``S = 1`` shares the affine over time (the inference form of a BN that has no conv to merge into); ``S > 1``
    holds one affine per time step (the inference form of BNTT, arXiv:2010.01729, and TEBN), for up to ``S`` steps.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None = None):
        super().__init__()
        if weight.ndim != 2 or (bias is not None and bias.shape != weight.shape):
            raise ValueError(f"StepAffine needs weight [S, C] and bias of the same shape, got {tuple(weight.shape)} "
                             f"and {None if bias is None else tuple(bias.shape)}")
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None

    @property
    def per_step(self) -> bool:
        return self.weight.shape[0] > 1

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 3:
            raise ValueError(f"StepAffine expects [T, B, C, ...], got {tuple(x.shape)}")
        T, C = x.shape[0], self.weight.shape[1]
        if x.shape[2] != C:
            raise ValueError(f"StepAffine holds {C} channels, got input {tuple(x.shape)}")
        if self.per_step and T > self.weight.shape[0]:
            raise ValueError(f"StepAffine holds affines for {self.weight.shape[0]} steps, got T = {T}")
        rows = T if self.per_step else 1
        shape = (rows, 1, C) + (1,) * (x.ndim - 3)
        y = x * self.weight[:rows].reshape(shape)
        return y if self.bias is None else y + self.bias[:rows].reshape(shape)

    def extra_repr(self) -> str:
        S, C = self.weight.shape
        return f"{C} channels, {'per-step for ' + str(S) + ' steps' if S > 1 else 'time-shared'}"


def _f64(t: Tensor) -> Tensor:
    return t.detach().to(torch.float64)


def norm_affine(bn: _BatchNorm, name: str) -> tuple[Tensor, Tensor]:
    """Inference affine ``(γ/σ, β − μ·γ/σ)`` of a time-shared BN (tdBN: ``γ·α·V_th``), in float64."""
    if isinstance(bn, TEBN2d) or not isinstance(bn, _BatchNorm):
        raise FoldError(f"{name} ({type(bn).__name__}) is not a time-shared BN")
    if bn.running_mean is None or bn.running_var is None:
        raise FoldError(f"{name} ({type(bn).__name__}) keeps no running statistics (track_running_stats=False), "
                        "so it normalises with batch statistics at inference and cannot be folded")
    if isinstance(bn, TDBatchNorm2d):
        gamma = _f64(bn.effective_weight())
    else:
        gamma = _f64(bn.weight) if bn.weight is not None else torch.ones_like(_f64(bn.running_mean))
    beta = _f64(bn.bias) if bn.bias is not None else torch.zeros_like(gamma)
    k = gamma / torch.sqrt(_f64(bn.running_var) + bn.eps)
    return k, beta - _f64(bn.running_mean) * k


def norm_to_affine(norm: nn.Module, name: str) -> tuple[Tensor, Tensor, bool]:
    """``(w, b, per_step)``: ``[C]`` vectors for a time-shared BN, ``[S, C]`` for BNTT/TEBN (float64)."""
    if isinstance(norm, BNTT2d):
        k = _f64(norm.weight) / torch.sqrt(_f64(norm.running_var) + norm.eps)
        return k, _f64(norm.bias) - _f64(norm.running_mean) * k, True
    if isinstance(norm, TEBN2d):
        # y_t = p_t (γ (x − μ)/σ + β)
        k, b = norm_affine(_as_plain_bn(norm), name)
        p = _f64(norm.step_scale)
        return p * k, p * b, True
    if isinstance(norm, _BatchNorm):
        k, b = norm_affine(norm, name)
        return k, b, False
    raise FoldError(f"{name} ({type(norm).__name__}) is not a known normalisation layer")


def _as_plain_bn(tebn: TEBN2d) -> _BatchNorm:
    """TEBN's time-shared part viewed as a plain BN (same parameters and buffers)."""
    bn = nn.BatchNorm2d(tebn.num_features, tebn.eps, affine=tebn.affine, track_running_stats=tebn.track_running_stats)
    bn.weight, bn.bias = tebn.weight, tebn.bias
    bn.running_mean, bn.running_var = tebn.running_mean, tebn.running_var
    return bn


def _input_factor_for_groups(a: Tensor, conv: nn.Conv1d | nn.Conv2d) -> Tensor:
    """``factor[o, j] = a[group(o)·C_g + j]`` for ``weight[O, C_g, …]`` of a grouped conv."""
    O, g = conv.out_channels, conv.groups
    og, cg = O // g, conv.in_channels // g
    idx = (torch.arange(O, device=a.device) // og * cg)[:, None] + torch.arange(cg, device=a.device)[None, :]
    return a[idx]


def scale_input(layer: nn.Module, scale, name: str) -> nn.Module:  # scale: registry.Scale
    """``layer(a ⊙ x) = layer'(x)``; returns ``layer'`` (the same object, or a new :class:`UnsharedConv2d`)."""
    w = cast(Tensor, layer.weight)
    with torch.no_grad():
        if isinstance(layer, UnsharedConv2d):
            C = layer.in_channels
            a = (scale.value.detach().reshape(()).expand(C) if scale.granularity == "layer" else
                 scale.value.detach() if scale.granularity == "element" else scale.vector(C, name))
            a = _f64(a).reshape(C, 1, 1) if a.ndim == 1 else _f64(a)
            a = a.expand(C, *layer.in_size)
            cols = F.unfold(a.unsqueeze(0), layer.kernel_size, dilation=layer.dilation, padding=layer.padding,
                            stride=layer.stride).reshape(C, *layer.kernel_size, *layer.out_size)
            w.copy_(_f64(w) * cols.unsqueeze(0))
            return layer
        if isinstance(layer, nn.Linear):
            a = _f64(scale.vector(layer.in_features, name))
            w.copy_(_f64(w) * a[None, :])
            return layer
        if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
            if scale.granularity == "element" and not scale.flat and scale.value.ndim > 1:
                if not isinstance(layer, nn.Conv2d) or not isinstance(layer, SeqModule):
                    raise FoldError(f"the element-wise amplitude of {scale.source} reaches {name} "
                                    f"({type(layer).__name__}); only a time-first 2-D conv (spikeforge.layers.Conv2d) "
                                    "folds it, into an unshared conv")
                v = scale.value.detach()
                if v.ndim != 3 or v.shape[0] != layer.in_channels:
                    raise FoldError(f"the element-wise amplitude of {scale.source} has shape {tuple(v.shape)}, "
                                    f"{name} reads {layer.in_channels} channels")
                return UnsharedConv2d.from_conv(layer, tuple(v.shape[1:]), v.to(w.dtype))
            a = _f64(scale.vector(layer.in_channels, name))
            factor = _input_factor_for_groups(a, layer)
            w.copy_(_f64(w) * factor.reshape(factor.shape + (1,) * (w.ndim - 2)))
            return layer
    raise FoldError(f"{name} ({type(layer).__name__}) cannot absorb an input amplitude")


def _set_bias(layer: nn.Module, bias: Tensor) -> None:
    ref = cast(Tensor, layer.weight)
    current = cast("Tensor | None", layer.bias)
    if current is None:
        layer.bias = nn.Parameter(bias.to(dtype=ref.dtype, device=ref.device))
    else:
        with torch.no_grad():
            current.copy_(bias)


def merge_affine(layer: nn.Module, k: Tensor, b: Tensor, name: str) -> None:
    """``k ⊙ layer(x) + b`` merged into ``layer`` (``k, b`` per output channel/feature, or per output element of an
    unshared conv ``[O, Ho, Wo]``)."""
    if not isinstance(layer, CONV_LIKE):
        raise FoldError(f"{name} ({type(layer).__name__}) cannot absorb an output affine")
    O = layer.weight.shape[0]
    w = layer.weight
    k, b = k.to(w.device), b.to(w.device)  # constants may be built on the CPU; the layer may live on CUDA
    element = any(t.ndim > 1 and any(d > 1 for d in t.shape[1:]) for t in (k, b))
    if element and not isinstance(layer, UnsharedConv2d):
        raise FoldError(f"an element-wise output scale needs an unshared conv, {name} is {type(layer).__name__}")
    if isinstance(layer, UnsharedConv2d):
        Ho, Wo = layer.out_size
        k3 = _f64(k).reshape(O, 1, 1).expand(O, Ho, Wo) if k.ndim <= 1 else _f64(k).expand(O, Ho, Wo)
        b3 = _f64(b).reshape(O, 1, 1).expand(O, Ho, Wo) if b.ndim <= 1 else _f64(b).expand(O, Ho, Wo)
        old_b = _f64(layer.bias) if layer.bias is not None else torch.zeros_like(k3)
        with torch.no_grad():
            w.copy_(_f64(w) * k3[:, None, None, None])
        _set_bias(layer, old_b * k3 + b3)
        return
    kv = _f64(k).reshape(-1).expand(O)
    bv = _f64(b).reshape(-1).expand(O)
    with torch.no_grad():
        w.copy_(_f64(w) * kv.reshape((O,) + (1,) * (w.ndim - 1)))
    old_b = _f64(layer.bias) if layer.bias is not None else torch.zeros_like(kv)
    _set_bias(layer, old_b * kv + bv)


def scale_output(layer: nn.Module, factor: Tensor, name: str, in_size: tuple[int, int] | None = None) -> nn.Module:
    """``factor ⊙ layer(x)`` as one layer. ``factor`` is a scalar, ``[C]`` or ``[C, 1, 1]`` (per channel), or
    ``[C, H, W]`` (per element: a 2-D conv then becomes unshared, which needs its ``in_size``)."""
    f = _f64(factor)
    element = f.ndim > 1 and any(d > 1 for d in f.shape[1:])
    if isinstance(layer, StepAffine):
        if element:
            raise FoldError(f"{name} is a per-channel affine and cannot take an element-wise output scale")
        fv = f.reshape(-1).expand(layer.weight.shape[1])
        with torch.no_grad():
            layer.weight.copy_(_f64(layer.weight) * fv)
            if layer.bias is not None:
                layer.bias.copy_(_f64(layer.bias) * fv)
        return layer
    if element:
        if isinstance(layer, nn.Conv2d) and isinstance(layer, SeqModule):
            if in_size is None:
                raise FoldError(f"an element-wise output scale turns {name} into an unshared conv, which needs its "
                                "input size; it is not known here")
            layer = UnsharedConv2d.from_conv(layer, in_size)
        merge_affine(layer, f, torch.zeros_like(f), name)
        return layer
    merge_affine(layer, f.reshape(-1), torch.zeros(1, dtype=torch.float64), name)
    return layer
