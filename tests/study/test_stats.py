"""Study statistics against closed-form values."""

from __future__ import annotations

import math

import pytest

from spikeforge.study.stats import mean_std, paired_difference, t_quantile_975, verdict


def test_mean_std_is_the_sample_standard_deviation():
    m, sd = mean_std([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5
    assert sd == pytest.approx(math.sqrt(5.0 / 3.0))
    assert mean_std([0.7]) == (0.7, None)
    with pytest.raises(ValueError, match="no values"):
        mean_std([])


def test_t_quantiles_match_the_table_and_the_normal_limit():
    assert t_quantile_975(1) == 12.706
    assert t_quantile_975(2) == 4.303
    assert t_quantile_975(30) == 2.042
    assert t_quantile_975(1000) == 1.960
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_quantile_975(0)


def test_paired_difference_uses_only_common_seeds_and_the_t_interval():
    method = {0: 0.90, 1: 0.92, 2: 0.91, 7: 0.5}
    base = {0: 0.88, 1: 0.89, 2: 0.90}
    d = paired_difference(method, base)
    diffs = [0.02, 0.03, 0.01]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in diffs) / 2)
    half = 4.303 * sd / math.sqrt(3)
    assert d is not None and d.n == 3
    assert d.mean == pytest.approx(mean)
    assert d.low == pytest.approx(mean - half) and d.high == pytest.approx(mean + half)
    one = paired_difference({0: 0.5}, {0: 0.4})
    assert one is not None and one.n == 1 and one.low is None
    assert paired_difference({1: 0.5}, {0: 0.4}) is None


def test_verdicts_follow_the_interval_and_the_claimed_direction():
    gain = paired_difference({0: 0.9, 1: 0.91, 2: 0.92}, {0: 0.8, 1: 0.8, 2: 0.81})
    loss = paired_difference({0: 0.7, 1: 0.71, 2: 0.72}, {0: 0.8, 1: 0.8, 2: 0.81})
    null = paired_difference({0: 0.81, 1: 0.79, 2: 0.8}, {0: 0.8, 1: 0.8, 2: 0.8})
    assert verdict(gain, +1) == "agrees"
    assert verdict(loss, +1) == "disagrees"
    assert verdict(null, +1).startswith("null")
    assert verdict(gain, 0) == "reference"
    assert verdict(paired_difference({0: 0.9}, {0: 0.8}), +1).startswith("not tested")
