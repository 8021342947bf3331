"""Spiking PointNet classifier (Ren et al., NeurIPS 2023, arXiv:2310.06232; PointNet: Qi et al., arXiv:1612.00593).

Input: a point cloud repeated over time, ``[T, B, D, N]`` (D = 3 for xyz, or 6 with normals; only xyz is
transformed). Every ReLU of PointNet is a spiking neuron, including those inside the two T-Nets::

    A3  = STN3d(x)                                     input transform, [T, B, 3, 3]
    x   = A3ᵀ·x[:3]  (⊕ x[3:])                         per point: x_n ← x_n A3
    s1  = SN(BN(Conv1d 3→64 (x)))
    A64 = STNkd(s1)                                    feature transform, [T, B, 64, 64]
    f   = BN(Conv1d 128→1024 (SN(BN(Conv1d 64→128 (A64ᵀ·s1)))))     no neuron on the last layer
    g   = max_n f                                      max-pool over points, [T, B, 1024]
    z   = FC 256→k (SN(BN(Dropout_0.4(FC 512→256 (SN(BN(FC 1024→512 (g))))))))

A T-Net (``TNet``): ``[Conv1d-BN-SN] × 3 (64, 128, 1024) -> max over points -> [FC-BN-SN] × 2 (512, 256) ->
FC 256→k·k``, reshaped to ``k×k`` plus an offset matrix (the identity; the fold may rescale it).
BN runs per time step on the folded batch (statistics over T·B·N). The dropout sits between FC 512→256 and its BN,
as in the official code (DayongRen/Spiking-PointNet, models/pointnet_cls.py).

Output: per-step **logits** ``[T, B, k]``. The official code returns per-step log-softmax averaged over T and
trains NLL on it: the objective option ``readout="log_softmax_mean"`` (:func:`spikeforge.encode.readout`); at
T = 1 this equals ``cross_entropy(logits)``. Weights start from PyTorch's default Conv1d/Linear init, as in the
official code (``weight_init="kaiming"``: kaiming-normal fan-out convs, zero conv bias).

Feature-transform regulariser (official code, ``feature_transform_reguliarzer``): the **mean over the batch of the
Frobenius norm** ``‖I − A Aᵀ‖_F`` (not squared), scaled by 0.001 in the loss; methods.md §2 writes ``‖I − A Aᵀ‖_F``
too. Here the mean also runs over the T time steps; the official code regularises the transform averaged over T
(equal at T = 1, where it trains). ``squared=True`` gives the
squared form ``‖I − A Aᵀ‖_F²`` of the PointNet paper (eq. 2). :meth:`SpikingPointNet.feature_transform_regularizer`
returns the value for the feature transform of the last forward call of that model instance.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..layers import BatchNorm1d, Conv1d, Dropout, Linear
from ..neurons import Neuron, NeuronConfig, neuron_config
from ._common import init_conv_linear, scale_width
from .registry import SpikingModel, register_model

WEIGHT_INITS = ("pytorch", "kaiming")

__all__ = ["WEIGHT_INITS", "PointMaxPool", "PointTransform", "TransformHead", "TNet", "SpikingPointNet", "pointnet",
           "feature_transform_regularizer"]


def feature_transform_regularizer(transform: Tensor, squared: bool = False) -> Tensor:
    """``mean over all leading dims of ‖I − A Aᵀ‖_F`` for ``A[..., k, k]`` (``squared=True``: of ``‖·‖_F²``).

    The default is the official Spiking PointNet / PointNet code (mean of the Frobenius norm over the batch).
    """
    if transform.ndim < 3 or transform.shape[-1] != transform.shape[-2]:
        raise ValueError(f"expected square transforms [..., k, k], got shape {tuple(transform.shape)}")
    k = transform.shape[-1]
    eye = torch.eye(k, dtype=transform.dtype, device=transform.device)
    diff = eye - transform @ transform.transpose(-1, -2)
    sq = diff.pow(2).sum(dim=(-2, -1))
    return (sq if squared else sq.sqrt()).mean()


class PointMaxPool(nn.Module):
    """Max over the point axis: ``[T, B, C, N] -> [T, B, C]`` (order-invariant)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"PointMaxPool expects [T, B, C, N], got shape {tuple(x.shape)}")
        return x.amax(dim=-1)


class PointTransform(nn.Module):
    """Apply a per-sample learned transform to point features: ``x_n ← x_n A`` for the first ``k`` channels.

    ``x[T, B, D, N]``, ``A[T, B, k, k]`` -> ``[T, B, D, N]`` with ``out[:k] = Aᵀ x[:k]``; channels ``k..D`` pass
    through unchanged (normals next to xyz).
    """

    def forward(self, x: Tensor, transform: Tensor) -> Tensor:
        k = transform.shape[-1]
        if x.ndim != 4 or transform.shape[:2] != x.shape[:2] or x.shape[2] < k:
            raise ValueError(f"PointTransform needs x[T, B, D>={k}, N] and A[T, B, {k}, {k}] with equal T, B; "
                             f"got {tuple(x.shape)} and {tuple(transform.shape)}")
        head = torch.matmul(transform.transpose(-1, -2), x[:, :, :k])
        return head if x.shape[2] == k else torch.cat([head, x[:, :, k:]], dim=2)

    @staticmethod
    def mac_count(inputs: tuple[Tensor, ...], output: Tensor) -> int:
        """Multiply-accumulates of the transform: ``T·B·N·k·k``."""
        x, a = inputs[0], inputs[1]
        k = a.shape[-1]
        return int(x.shape[0] * x.shape[1] * x.shape[3] * k * k)


class TransformHead(nn.Module):
    """``[T, B, k·k] -> [T, B, k, k]`` plus ``offset`` (a ``k×k`` buffer, the identity unless folded)."""

    offset: Tensor  # buffer, registered in __init__

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self.register_buffer("offset", torch.eye(k))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.k * self.k:
            raise ValueError(f"TransformHead expects {self.k * self.k} features, got shape {tuple(x.shape)}")
        return x.reshape(x.shape[:-1] + (self.k, self.k)) + self.offset


class TNet(nn.Sequential):
    """PointNet's T-Net (STN3d for ``k = 3``, STNkd for ``k = 64``) with spiking neurons: ``[T, B, cin, N]`` ->
    transform ``[T, B, k, k]``. Children: ``features`` (3 × Conv1d-BN-Neuron), ``pool`` (:class:`PointMaxPool`),
    ``mlp`` (2 × Linear-BN-Neuron, Linear → k·k), ``out`` (:class:`TransformHead`)."""

    def __init__(self, cin: int, k: int, cfg: NeuronConfig, width: float = 1.0):
        c1, c2, c3, f1, f2 = (scale_width(c, width) for c in (64, 128, 1024, 512, 256))
        features = nn.Sequential(
            Conv1d(cin, c1, 1), BatchNorm1d(c1), _neuron(cfg, (c1, None)),
            Conv1d(c1, c2, 1), BatchNorm1d(c2), _neuron(cfg, (c2, None)),
            Conv1d(c2, c3, 1), BatchNorm1d(c3), _neuron(cfg, (c3, None)),
        )
        mlp = nn.Sequential(
            Linear(c3, f1), BatchNorm1d(f1), _neuron(cfg, (f1,)),
            Linear(f1, f2), BatchNorm1d(f2), _neuron(cfg, (f2,)),
            Linear(f2, k * k),
        )
        super().__init__()
        self.features, self.pool, self.mlp, self.out = features, PointMaxPool(), mlp, TransformHead(k)
        self.k = k


class _LastTransform:
    """Holds the feature transform of the last forward call (with its autograd graph, for the regulariser).

    Copies and pickles of the model start empty: a non-leaf tensor cannot be deep-copied, and the value belongs
    to one call, not to the model's state.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: Tensor | None = None

    def __deepcopy__(self, memo: dict) -> _LastTransform:
        return _LastTransform()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.value = None


def _neuron(cfg: NeuronConfig, feature_shape: tuple[int | None, ...]) -> Neuron:
    return Neuron(cfg, feature_shape)


class SpikingPointNet(SpikingModel):
    """Spiking PointNet classifier; see the module docstring for the computation. ``width`` scales every layer
    (the feature T-Net's ``k`` follows the first layer's width)."""

    input_kind = "points"

    def __init__(self, *, num_classes: int = 40, in_channels: int = 3, num_points: int = 1024,
                 width: float = 1.0, dropout: float = 0.4, neuron: Any = None, weight_init: str = "pytorch"):
        super().__init__()
        if in_channels < 3:
            raise ValueError(f"PointNet needs xyz coordinates (in_channels >= 3), got {in_channels}")
        if num_classes < 1 or num_points < 1:
            raise ValueError(f"num_classes and num_points must be positive, got {num_classes}, {num_points}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f"weight_init must be one of {WEIGHT_INITS}, got {weight_init!r}")
        cfg = neuron_config(neuron)
        if cfg.amplitude == "element" or (cfg.pre_fire == "mpbn" and cfg.mpbn == "element"):
            raise ValueError("element-wise amplitudes/MPBN would tie parameters to point order and break "
                             "PointNet's permutation invariance; use layer- or channel-wise options")
        c1, c2, c3, f1, f2 = (scale_width(c, width) for c in (64, 128, 1024, 512, 256))
        self.num_classes, self.in_channels, self.num_points = num_classes, in_channels, num_points
        self.input_shape = (in_channels, num_points)
        self.stn = TNet(in_channels, 3, cfg, width)
        self.input_transform = PointTransform()
        self.mlp1 = nn.Sequential(Conv1d(in_channels, c1, 1), BatchNorm1d(c1), _neuron(cfg, (c1, None)))
        self.fstn = TNet(c1, c1, cfg, width)
        self.feature_transform = PointTransform()
        self.mlp2 = nn.Sequential(Conv1d(c1, c2, 1), BatchNorm1d(c2), _neuron(cfg, (c2, None)),
                                  Conv1d(c2, c3, 1), BatchNorm1d(c3))
        self.pool = PointMaxPool()
        self.head = nn.Sequential(
            Linear(c3, f1), BatchNorm1d(f1), _neuron(cfg, (f1,)),
            Linear(f1, f2), Dropout(dropout), BatchNorm1d(f2), _neuron(cfg, (f2,)),
            Linear(f2, num_classes),
        )
        if weight_init == "kaiming":
            init_conv_linear(self)
        self.weight_init = weight_init
        self._last = _LastTransform()

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[2] != self.in_channels:
            raise ValueError(f"PointNet expects points [T, B, {self.in_channels}, N], got shape {tuple(x.shape)}")
        x = self.input_transform(x, self.stn(x))
        s1 = self.mlp1(x)
        a64 = self.fstn(s1)
        self._last.value = a64
        g = self.pool(self.mlp2(self.feature_transform(s1, a64)))
        return self.head(g)

    def feature_transform_regularizer(self, squared: bool = False) -> Tensor:
        """``mean ‖I − A Aᵀ‖_F`` (or its square) of the feature transform ``A`` of this model's last forward call,
        in the autograd graph of that call. Raises if the model has not run yet."""
        if self._last.value is None:
            raise RuntimeError("feature_transform_regularizer() needs a forward call first")
        return feature_transform_regularizer(self._last.value, squared)

    @property
    def last_feature_transform(self) -> Tensor | None:
        """The feature transform ``A[T, B, k, k]`` of the last forward call (None before the first)."""
        return self._last.value


@register_model
def pointnet(num_classes: int = 40, in_channels: int = 3, num_points: int = 1024, width: float = 1.0,
             dropout: float = 0.4, neuron: Any = None, weight_init: str = "pytorch") -> SpikingPointNet:
    """Spiking PointNet (arXiv:2310.06232) with input and feature T-Nets; ``neuron='pointnet'`` is the paper's
    neuron (tanh surrogate b = 5, random initial membrane). ``num_points`` only sets the default input size.
    ``weight_init``: ``pytorch`` (PyTorch's default Conv1d/Linear init, as the official code) or ``kaiming``
    (kaiming-normal fan-out convs with zero bias)."""
    return SpikingPointNet(num_classes=num_classes, in_channels=in_channels, num_points=num_points, width=width,
                           dropout=dropout, neuron=neuron, weight_init=weight_init)
