"""Small statistics for test accuracies over seeds: 95% confidence intervals, paired
differences and a plain-words verdict. Pure Python: no scipy needed."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "MIN_SEEDS_FOR_VERDICT",
    "Interval",
    "binomial_ci",
    "mean_ci",
    "paired_difference",
    "verdict",
]

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% confidence interval (``low``/``high`` None for one value)."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        return None if self.low is None else self.mean - self.low


def _t95(df: int) -> float:
    return _T95[df - 1] if df <= len(_T95) else 1.96


def mean_ci(values: Sequence[float]) -> Interval:
    """Mean and 95% t-interval of ``values`` (seeds are the samples)."""
    if not values:
        raise ValueError("no values")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(mean, None, None, len(values))
    half = _t95(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half, len(values))


def binomial_ci(correct: int, total: int) -> Interval:
    """Accuracy ``correct / total`` with its 95% Wilson score interval: the test trials are
    the samples (one model tested once), always within 0-100%, sensible at 0 or ``total``."""
    if total < 1:
        raise ValueError("no trials")
    p, z = correct / total, 1.96
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), total)


def paired_difference(a: dict[int, float], b: dict[int, float]) -> Interval | None:
    """Mean of ``a[seed] - b[seed]`` over the seeds both have, with its 95% interval."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return mean_ci([a[s] - b[s] for s in seeds])


MIN_SEEDS_FOR_VERDICT = 3
"""A paired t-interval from 2 seeds has one degree of freedom: two differences that happen to
agree look settled. A verdict needs at least this many seeds."""


def verdict(name_a: str, name_b: str, diff: Interval | None) -> str:
    """``"elu vs relu: +2.1 points, 95% CI [0.4, 3.8]"``, or that the data cannot tell."""
    if diff is None:
        return f"{name_a} vs {name_b}: no common seeds to compare"
    points = f"{100 * diff.mean:+.1f} points"
    if diff.n < MIN_SEEDS_FOR_VERDICT or diff.low is None or diff.high is None:
        return (
            f"{name_a} vs {name_b}: {points}, too few seeds for a verdict ({diff.n} given, "
            f"{MIN_SEEDS_FOR_VERDICT} needed)"
        )
    interval = f"95% CI [{100 * diff.low:.1f}, {100 * diff.high:.1f}]"
    if diff.low > 0 or diff.high < 0:
        return f"{name_a} vs {name_b}: {points}, {interval}"
    return f"{name_a} vs {name_b}: no clear difference ({points}, {interval})"
