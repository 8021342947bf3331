"""Summary statistics of the study: mean ± sample standard deviation over seeds and the paired difference to the
baseline with its two-sided 95 % Student-t confidence interval (pairs share a seed: same initial weights where the
architectures match, same data order)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["T_975", "t_quantile_975", "mean_std", "PairedDiff", "paired_difference", "verdict"]

#: two-sided 95 % quantiles t_{0.975, df} of Student's t distribution, df = 1..30 (standard table values)
T_975: tuple[float, ...] = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


def t_quantile_975(df: int) -> float:
    """t_{0.975, df}; the normal 1.960 above df = 30 (an over-estimate of the interval's width by < 2 %
    at df = 31)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return T_975[df - 1] if df <= len(T_975) else 1.960


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof = 1; None for a single value)."""
    if not values:
        raise ValueError("no values")
    n = len(values)
    m = sum(values) / n
    if n == 1:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))


@dataclass(frozen=True)
class PairedDiff:
    n: int
    mean: float
    low: float | None
    high: float | None


def paired_difference(method: dict[int, float], baseline: dict[int, float]) -> PairedDiff | None:
    """Mean of ``method[s] - baseline[s]`` over the seeds both have, with its 95 % t interval (None below 2
    pairs); None without a common seed."""
    seeds = sorted(set(method) & set(baseline))
    if not seeds:
        return None
    d = [method[s] - baseline[s] for s in seeds]
    m, sd = mean_std(d)
    if sd is None:
        return PairedDiff(1, m, None, None)
    half = t_quantile_975(len(d) - 1) * sd / math.sqrt(len(d))
    return PairedDiff(len(d), m, m - half, m + half)


def verdict(diff: PairedDiff | None, expect: int) -> str:
    """Agreement with a claimed direction (``expect`` +1: the method is claimed better than the baseline)."""
    if expect == 0:
        return "reference"
    if diff is None or diff.low is None or diff.high is None:
        return "not tested (fewer than 2 paired seeds)"
    if diff.low > 0:
        return "agrees" if expect > 0 else "disagrees"
    if diff.high < 0:
        return "disagrees" if expect > 0 else "agrees"
    return "null (interval contains 0)"
