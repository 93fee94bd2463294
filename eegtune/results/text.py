"""How numbers read in tables and pages: intervals, percentages, chance, per-subject accuracy.

Shared by the console tables and the HTML report, so both say the same thing the same way.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "HEADLINE_COLUMNS",
    "chance_text",
    "ci_text",
    "interval_text",
    "per_subject_text",
    "percent_pm",
]


HEADLINE_COLUMNS = (
    "network",
    "activation",
    "best val acc",
    "trial",
    "test acc (mean ± std)",
    "chance",
    "seeds",
)


def interval_text(interval: Any, signed: bool = False) -> str:
    """``81.9% ± 1.2`` (a 95% interval's half width), or just the mean for one seed."""
    sign = "+" if signed else ""
    mean = f"{100 * interval.mean:{sign}.1f}" + ("" if signed else "%")
    if interval.low is None:
        return mean
    return f"{mean} ± {100 * (interval.mean - interval.low):.1f}"


def ci_text(interval: Any) -> str:
    if interval.low is None:
        return "-"
    return f"[{100 * interval.low:.2f}, {100 * interval.high:.2f}]"


def per_subject_text(evaluation: Any) -> str:
    """``S4 84.1%, X11 79.3%``: mean test accuracy per subject over seeds, or ``-``."""
    if evaluation is None or not evaluation.per_subject:
        return "-"
    return ", ".join(
        f"{subject} {100 * sum(v) / len(v):.1f}%" for subject, v in evaluation.per_subject.items()
    )


def percent_pm(mean: float | None, std: float | None) -> str:
    """``mean% ± std`` of two fractions, or ``-``."""
    if mean is None:
        return "-"
    return f"{100 * mean:.2f}% ± {100 * (std or 0.0):.2f}"


def chance_text(chance: float | None) -> str:
    """Chance level in percent (the most frequent test class's share), or ``-``."""
    return "-" if chance is None else f"{100 * chance:.1f}%"
