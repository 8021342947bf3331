"""Tiny recipes shared by the trainer tests (digits, a narrow CNN, a few dozen samples)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

TINY: dict[str, Any] = {
    "model": {"name": "convnet", "widths": [4, 8], "neuron": "ternary"},
    "data": {"name": "digits", "limit": 48},
    "T": 2,
    "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    "schedule": {"name": "cosine", "warmup_epochs": 1},
    "epochs": 3,
    "batch_size": 16,
    "device": "cpu",
    "deterministic": True,
    "log": {"tensorboard": False, "progress": "never"},
    "analysis": {"enabled": False},
    "fold": {"verify_samples": 8},
}


@pytest.fixture
def tiny() -> dict[str, Any]:
    return copy.deepcopy(TINY)
