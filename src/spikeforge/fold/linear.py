"""Fold arithmetic on linear layers: absorb an input amplitude, merge a BN, rescale outputs.

* input amplitude (Ternary/Real Spike): ``W ∗ (a ⊙ s) = W' ∗ s`` with ``W'[:, c] = a_c·W[:, c]`` (channel),
  ``W' = a·W`` (layer), an unshared conv ``W'_p[o, c, δ] = W[o, c, δ]·a[c, p + δ]`` (element, 2-D convs);
* BN merge: ``BN(W x + b) = W' x + b'`` with ``W' = W·γ/σ``, ``b' = (b − μ)·γ/σ + β``, ``σ = sqrt(σ²_run + ε)``
  (tdBN uses ``γ·α·V_th``);
* per-step BNs (BNTT, TEBN) become :class:`StepAffine`, ``y_t = w_t ⊙ x_t + b_t``;
* a sum of ``k`` spike tensors with different amplitudes (SEW block output, carried concatenated along channels):
  ``W ∗ Σ_j a_j ⊙ s_j = [W·a_1, …, W·a_k] ∗ cat(s_1, …, s_k)`` — the consumer's weights tiled ``k`` times along its
  input, each slice scaled by its term's amplitude;
* an average pool ``P`` of an element-wise-scaled tensor (:func:`pending_pool`): ``W ∗ P(a ⊙ s)`` is one unshared
  conv on ``s`` (:func:`compose_pool_conv`: kernel ``(k_c − 1)·s_p + k_p``, stride ``s_c·s_p``, padding
  ``p_c·s_p + p_p``); a global pool before a linear layer gives a linear layer over the flattened ``C·H·W`` map with
  ``W'[o, (c, p)] = W[o, c]·a[c, p]/(H·W)``; any other consumer gets ``P(a ⊙ ·)`` itself, a depthwise unshared conv
  (:func:`materialize_pool`).
"""

from __future__ import annotations

import copy
from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers.norm import BNTT2d, TDBatchNorm2d, TEBN2d
from ..layers.time import SeqModule
from ..layers.unshared import UnsharedConv2d, conv_out_size
from .registry import FoldError, PendingPool, Scale

__all__ = [
    "StepAffine", "CONV_LIKE", "NORM_LIKE", "norm_affine", "norm_to_affine", "scale_input", "merge_affine",
    "scale_output", "expand_terms", "pending_pool", "compose_pool_conv", "compose_pool_linear", "materialize_pool",
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


def expand_terms(layer: nn.Module, k: int, name: str) -> nn.Module:
    """A copy of ``layer`` reading ``k`` concatenated copies of its input (term-major): weights tiled ``k`` times
    along the input dim, so that ``layer'(cat(x_1, …, x_k)) = layer(Σ_j x_j)``."""
    if isinstance(layer, nn.Linear):
        lin = copy.deepcopy(layer)
        lin.weight = nn.Parameter(layer.weight.detach().repeat(1, k))
        lin.in_features = layer.in_features * k
        return lin
    if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        if layer.groups != 1:
            raise FoldError(f"{name} is a grouped conv (groups={layer.groups}); a sum of spike tensors with different "
                            "amplitudes folds into ungrouped convs only")
        conv = copy.deepcopy(layer)
        w = layer.weight.detach()
        conv.weight = nn.Parameter(w.repeat((1, k) + (1,) * (w.ndim - 2)))
        conv.in_channels = layer.in_channels * k
        return conv
    raise FoldError(f"{name} ({type(layer).__name__}) cannot read a sum of spike tensors with different amplitudes")


def scale_input(layer: nn.Module, scale: Scale, name: str) -> nn.Module:
    """``layer(a ⊙ x) = layer'(x)``; returns ``layer'`` (the same object, or a new layer: an
    :class:`UnsharedConv2d`, a layer reading the concatenated terms of a SEW sum, or the composition with a pending
    average pool)."""
    if scale.pool is not None:
        if scale.terms > 1:
            raise FoldError(f"{name}: the {scale.describe()} cannot be folded (pooled sums of terms are not supported)")
        if isinstance(layer, nn.Linear):
            return compose_pool_linear(layer, scale.pool, name)
        if isinstance(layer, nn.Conv2d) and isinstance(layer, SeqModule):
            return compose_pool_conv(layer, scale.pool, name)
        raise FoldError(f"the {scale.describe()} reaches {name} ({type(layer).__name__}); a pooled element-wise "
                        "amplitude folds into a following time-first 2-D conv or (after global pooling) a linear layer")
    if scale.terms > 1:
        if isinstance(layer, UnsharedConv2d):
            raise FoldError(f"{name} (UnsharedConv2d) cannot read a sum of spike tensors with different amplitudes")
        layer = expand_terms(layer, scale.terms, name)
        scale = Scale(scale.value, scale.granularity, scale.source, scale.flat)
    w = cast(Tensor, layer.weight)
    with torch.no_grad():
        if isinstance(layer, UnsharedConv2d):
            if layer.groups != 1:
                raise FoldError(f"{name} is a grouped unshared conv; it cannot absorb an input amplitude")
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
                return UnsharedConv2d.from_conv(layer, (int(v.shape[1]), int(v.shape[2])), v.to(w.dtype))
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
        def per_output(t: Tensor) -> Tensor:
            if t.ndim <= 1:  # a scalar or one value per output channel
                return _f64(t).reshape(-1).expand(O).reshape(O, 1, 1).expand(O, Ho, Wo)
            return _f64(t).expand(O, Ho, Wo)

        k3, b3 = per_output(k), per_output(b)
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


# --- average pooling of element-wise amplitudes -------------------------------------------------------------


class _PoolGeometry(NamedTuple):
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    ceil_mode: bool
    count_include_pad: bool
    divisor_override: int | None

    def apply(self, x: Tensor, divisor_override: int | None = None) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            divisor_override if divisor_override is not None else self.divisor_override)


def _pair_of(v: object) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    t = tuple(int(u) for u in v)  # type: ignore[attr-defined]
    return t[0], t[1]


def _pool_geometry(pool: nn.Module, in_size: tuple[int, int], name: str) -> tuple[_PoolGeometry, tuple[int, int]]:
    """The ``F.avg_pool2d`` arguments equivalent to ``pool`` on inputs of ``in_size``, and the output size."""
    H, W = in_size
    if isinstance(pool, nn.AdaptiveAvgPool2d):
        out = pool.output_size if isinstance(pool.output_size, tuple) else (pool.output_size, pool.output_size)
        oh, ow = (H if out[0] is None else int(out[0])), (W if out[1] is None else int(out[1]))
        if H % oh or W % ow:
            raise FoldError(f"{name}: adaptive pooling of {in_size} to {(oh, ow)} has uneven windows; the element-wise "
                            "amplitude fold handles output sizes that divide the input")
        k = (H // oh, W // ow)
        return _PoolGeometry(k, k, (0, 0), False, True, None), (oh, ow)
    if isinstance(pool, nn.AvgPool2d):
        k = _pair_of(pool.kernel_size)
        geom = _PoolGeometry(k, _pair_of(pool.stride if pool.stride is not None else k), _pair_of(pool.padding),
                             bool(pool.ceil_mode), bool(pool.count_include_pad), pool.divisor_override)
        pooled = geom.apply(torch.zeros(1, 1, H, W))
        return geom, (int(pooled.shape[-2]), int(pooled.shape[-1]))
    raise FoldError(f"{name} ({type(pool).__name__}): an element-wise amplitude folds through 2-D average pooling only")


def pending_pool(pool: nn.Module, amplitude: Tensor, name: str) -> PendingPool:
    """The average pool ``pool`` applied to ``amplitude[C, H, W] ⊙ z`` as a :class:`PendingPool` (float64):
    ``weight[c, u, v, i, j] = a[c, x] / divisor(i, j)`` at the map position ``x`` that window tap ``(u, v)`` of output
    ``(i, j)`` reads, 0 where it reads padding (PyTorch's divisor, ``count_include_pad`` and ``ceil_mode``)."""
    a = _f64(amplitude)
    if a.ndim != 3:
        raise FoldError(f"{name}: expected an element-wise amplitude [C, H, W], got shape {tuple(a.shape)}")
    C, H, W = a.shape
    geom, (Ho, Wo) = _pool_geometry(pool, (H, W), name)
    (kh, kw_), (sh, sw), (ph, pw) = geom.kernel_size, geom.stride, geom.padding
    ones = torch.ones(1, 1, H, W, dtype=torch.float64)
    mean_of_ones = geom.apply(ones)[0, 0]                      # valid / divisor
    valid = geom.apply(ones, divisor_override=1)[0, 0]         # number of map positions read
    inv_div = torch.where(valid > 0, mean_of_ones / valid.clamp(min=1), torch.zeros_like(valid))
    # zero-pad the amplitude so that every window tap indexes inside the padded map (ceil_mode may read past it)
    need_h, need_w = sh * (Ho - 1) + kh, sw * (Wo - 1) + kw_
    a_pad = F.pad(a, (pw, max(0, need_w - W - pw), ph, max(0, need_h - H - ph)))
    weight = torch.zeros(C, kh, kw_, Ho, Wo, dtype=torch.float64)
    for u in range(kh):
        for v in range(kw_):
            weight[:, u, v] = a_pad[:, u:u + sh * (Ho - 1) + 1:sh, v:v + sw * (Wo - 1) + 1:sw] * inv_div
    return PendingPool(weight, (kh, kw_), (sh, sw), (ph, pw), (H, W), (Ho, Wo), name)


def _unfold_matches(in_size: tuple[int, int], k: tuple[int, int], s: tuple[int, int], p: tuple[int, int],
                    out: tuple[int, int]) -> bool:
    return all((n + 2 * pp - kk) // ss + 1 == o for n, kk, ss, pp, o in zip(in_size, k, s, p, out))


def materialize_pool(pool: PendingPool, dtype: torch.dtype, device: torch.device | None, name: str) -> UnsharedConv2d:
    """The pending pool as a layer: a depthwise :class:`UnsharedConv2d` (groups = C) computing ``P(a ⊙ z)``."""
    C = pool.weight.shape[0]
    if not _unfold_matches(pool.in_size, pool.kernel_size, pool.stride, pool.padding, pool.out_size):
        raise FoldError(f"{name}: the average pool {pool.name} (ceil_mode) reads past its input's padding; its "
                        f"element-wise fold is not supported for input size {pool.in_size}")
    layer = UnsharedConv2d(C, C, pool.kernel_size, pool.in_size, pool.stride, pool.padding, bias=False, groups=C)
    layer = layer.to(device=device, dtype=dtype)
    with torch.no_grad():
        layer.weight.copy_(pool.weight.unsqueeze(1))
    return layer


def compose_pool_conv(conv: nn.Conv2d, pool: PendingPool, name: str) -> UnsharedConv2d:
    """``conv(P(a ⊙ z))`` as one unshared conv on ``z``: kernel ``(k_c − 1)·s_p + k_p``, stride ``s_c·s_p``,
    padding ``p_c·s_p + p_p`` per axis; the kernel of output ``j`` sums, over conv taps ``δ`` whose pool output
    ``s_c·j + δ − p_c`` lies on the pooled map, ``W[:, :, δ]`` times that pool output's window weights."""
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str) or tuple(conv.dilation) != (1, 1):
        raise FoldError(f"{name}: a pooled element-wise amplitude folds into zero-padded, undilated convs with integer "
                        "padding only")
    C, O, g = conv.in_channels, conv.out_channels, conv.groups
    if pool.weight.shape[0] != C:
        raise FoldError(f"{name} reads {C} channels, the pooled amplitude of {pool.name} has {pool.weight.shape[0]}")
    w = _f64(conv.weight)
    dense = w.new_zeros(O, C, *conv.kernel_size)
    og, cg = O // g, C // g
    for i in range(g):
        dense[i * og:(i + 1) * og, i * cg:(i + 1) * cg] = w[i * og:(i + 1) * og]
    (kch, kcw), (sch, scw), (pch, pcw) = conv.kernel_size, conv.stride, conv.padding
    (kph, kpw), (sph, spw), (pph, ppw) = pool.kernel_size, pool.stride, pool.padding
    Hq, Wq = pool.out_size
    Ho, Wo = conv_out_size((Hq, Wq), (kch, kcw), (sch, scw), (pch, pcw), (1, 1))
    K = ((kch - 1) * sph + kph, (kcw - 1) * spw + kpw)
    S = (sch * sph, scw * spw)
    P = (pch * sph + pph, pcw * spw + ppw)
    if not _unfold_matches(pool.in_size, K, S, P, (Ho, Wo)):
        raise FoldError(f"{name}: composing the average pool {pool.name} with this conv reads past the input's "
                        f"padding for input size {pool.in_size} (ceil_mode); not supported")
    # pool weights at the pool output each (conv tap, output position) reads; zero off the pooled map
    wp = F.pad(pool.weight, (pcw, pcw + scw * Wo + kcw, pch, pch + sch * Ho + kch))  # pad the Hq, Wq dims
    out_w = w.new_zeros(O, C, K[0], K[1], Ho, Wo)
    for dh in range(kch):
        for dw in range(kcw):
            g_ = wp[..., dh:dh + sch * (Ho - 1) + 1:sch, dw:dw + scw * (Wo - 1) + 1:scw]  # [C, kph, kpw, Ho, Wo]
            out_w[:, :, sph * dh:sph * dh + kph, spw * dw:spw * dw + kpw] += (
                dense[:, :, dh, dw][:, :, None, None, None, None] * g_[None])
    layer = UnsharedConv2d(C, O, K, pool.in_size, S, P, bias=conv.bias is not None)
    layer = layer.to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(out_w)
        if conv.bias is not None and layer.bias is not None:
            layer.bias.copy_(conv.bias.detach()[:, None, None].expand(O, Ho, Wo))
    return layer


def compose_pool_linear(linear: nn.Linear, pool: PendingPool, name: str) -> nn.Linear:
    """``linear(flatten(P(a ⊙ z)))`` for a global pool (output 1×1) as one linear layer over the flattened
    ``C·H·W`` map: ``W'[o, c·H·W + x] = W[o, c]·(a[c, x]/divisor)``."""
    C = pool.weight.shape[0]
    H, W = pool.in_size
    if pool.out_size != (1, 1):
        raise FoldError(f"{name}: the element-wise amplitude of {pool.name} is average-pooled to {pool.out_size}, "
                        "not 1×1; only a global pool folds into a following linear layer")
    if linear.in_features != C:
        raise FoldError(f"{name} reads {linear.in_features} features, the globally pooled map has {C} channels")
    (ph, pw), (kh, kw) = pool.padding, pool.kernel_size
    taps = F.pad(pool.weight[..., 0, 0], (0, max(0, pw + W - kw), 0, max(0, ph + H - kh)))
    per_pos = taps[:, ph:ph + H, pw:pw + W].reshape(C, H * W)  # weight of map position x for channel c
    new = copy.deepcopy(linear)
    new.weight = nn.Parameter((_f64(linear.weight)[:, :, None] * per_pos[None]).reshape(linear.out_features, C * H * W)
                              .to(linear.weight))
    new.in_features = C * H * W
    return new
