"""Membrane Potential Rectifier (InfLoR-SNN, arXiv:2307.04356).

    phi(u) = -(1 - u)^(1/3) + 1                          for u < 0
    phi(u) = tanh(3 (u - 1/2)) / (2 tanh(3/2)) + 1/2     for 0 <= u <= 1
    phi(u) = u^(1/3)                                     for u > 1

phi is continuous and strictly increasing with phi(0) = 0, phi(1/2) = 1/2, phi(1) = 1. Firing on
``phi(u) >= V_th`` therefore equals firing on ``u >= phi^{-1}(V_th)`` (``= V_th`` for V_th = 1/2): the
rectifier changes the backward pass only, and folds away into the threshold ``phi^{-1}(V_th)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_K = 2.0 * math.tanh(1.5)


def mpr(u: Tensor) -> Tensor:
    """phi(u)."""
    mid = torch.tanh(3.0 * (u - 0.5)) / _K + 0.5
    low = 1.0 - torch.pow((1.0 - u).clamp(min=1.0), 1.0 / 3.0)
    high = torch.pow(u.clamp(min=1.0), 1.0 / 3.0)
    return torch.where(u < 0, low, torch.where(u > 1, high, mid))


def mpr_grad(u: Tensor) -> Tensor:
    """phi'(u): (1/3)(1-u)^(-2/3) below 0, 3 sech^2(3(u - 1/2)) / (2 tanh 1.5) on [0, 1], (1/3)u^(-2/3) above 1."""
    mid = 3.0 * (1.0 - torch.tanh(3.0 * (u - 0.5)) ** 2) / _K
    low = torch.pow((1.0 - u).clamp(min=1.0), -2.0 / 3.0) / 3.0
    high = torch.pow(u.clamp(min=1.0), -2.0 / 3.0) / 3.0
    return torch.where(u < 0, low, torch.where(u > 1, high, mid))


def mpr_inverse(y: Tensor | float) -> Tensor:
    """phi^{-1}(y): the raw-membrane threshold equivalent to firing on phi(u) >= y."""
    y = torch.as_tensor(y, dtype=torch.float64) if not isinstance(y, Tensor) else y
    mid = torch.atanh(((y - 0.5) * _K).clamp(-1 + 1e-15, 1 - 1e-15)) / 3.0 + 0.5
    low = 1.0 - (1.0 - y) ** 3
    high = y**3
    return torch.where(y < 0, low, torch.where(y > 1, high, mid))
