"""Time-folding layers equal the per-step application of the torch layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeforge import layers


@pytest.mark.parametrize("make,plain,shape", [
    (lambda: layers.Conv2d(3, 4, 3, padding=1), lambda: nn.Conv2d(3, 4, 3, padding=1), (5, 2, 3, 6, 6)),
    (lambda: layers.Conv1d(3, 4, 1), lambda: nn.Conv1d(3, 4, 1), (5, 2, 3, 7)),
    (lambda: layers.AvgPool2d(2), lambda: nn.AvgPool2d(2), (5, 2, 3, 6, 6)),
    (lambda: layers.MaxPool2d(2), lambda: nn.MaxPool2d(2), (5, 2, 3, 6, 6)),
    (lambda: layers.AdaptiveAvgPool2d(1), lambda: nn.AdaptiveAvgPool2d(1), (5, 2, 3, 6, 6)),
    (lambda: layers.Linear(6, 4), lambda: nn.Linear(6, 4), (5, 2, 6)),
])
def test_equals_per_step(make, plain, shape):
    m, p = make(), plain()
    p.load_state_dict(m.state_dict())
    x = torch.randn(shape)
    per_step = torch.stack([p(x[t]) for t in range(shape[0])])
    torch.testing.assert_close(m(x), per_step)


def test_flatten_keeps_time_and_batch():
    assert layers.Flatten()(torch.zeros(3, 2, 4, 5, 6)).shape == (3, 2, 120)


def test_rank_errors():
    with pytest.raises(ValueError, match="time-first"):
        layers.Conv2d(3, 4, 3)(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="time-first"):
        layers.Linear(3, 4)(torch.zeros(2, 3))


def test_state_dict_keys_are_torch_keys():
    assert set(layers.Conv2d(3, 4, 3).state_dict()) == set(nn.Conv2d(3, 4, 3).state_dict())
