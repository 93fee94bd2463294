"""How numbers read in tables and pages: intervals, percentages, chance, per-subject accuracy.

Shared by the console tables and the HTML report, so both say the same thing the same way.
"""

from __future__ import annotations

from typing import Any

from eegtune.names import objective_title

__all__ = [
    "CLIPPED_NOTE",
    "chance_text",
    "ci_text",
    "clip_interval",
    "headline_columns",
    "headline_objective",
    "interval_text",
    "is_clipped",
    "per_subject_text",
    "percent_pm",
    "reference_facts",
]


CLIPPED_NOTE = "* the 95% interval ran past 0-100% and was clipped there"
"""The footnote of every table or page that shows a clipped interval."""


def headline_columns(objective: str) -> tuple[str, ...]:
    """The lab table's columns; the validation score is named after the studies' objective."""
    return (
        "network",
        "activation",
        f"best {objective}",
        "trial",
        "test acc (mean, sd)",
        "chance",
        "seeds",
    )


def headline_objective(rows: list[dict[str, Any]]) -> str:
    """The name of the score in headline rows: the studies' objective when they share one."""
    objectives = {str(r.get("objective", "best")) for r in rows}
    if len(objectives) == 1:
        return objective_title(objectives.pop())
    return "validation score (each study's objective)"


def clip_interval(interval: Any) -> tuple[float, float, bool]:
    """An accuracy interval's ends clipped to [0, 1], and whether either was clipped."""
    low, high = float(interval.low), float(interval.high)
    return max(0.0, low), min(1.0, high), low < 0.0 or high > 1.0


def interval_text(interval: Any, signed: bool = False) -> str:
    """``81.9% [80.7, 83.1]``: a mean with its 95% confidence interval, or the mean alone
    for one seed. Accuracies are clipped to 0-100% (marked ``*``, see :data:`CLIPPED_NOTE`);
    ``signed`` differences, in points, are not."""
    sign = "+" if signed else ""
    mean = f"{100 * interval.mean:{sign}.1f}" + ("" if signed else "%")
    if interval.low is None:
        return mean
    if signed:
        return f"{mean} [{100 * interval.low:+.1f}, {100 * interval.high:+.1f}]"
    low, high, clipped = clip_interval(interval)
    return f"{mean} [{100 * low:.1f}, {100 * high:.1f}]" + ("*" if clipped else "")


def is_clipped(interval: Any) -> bool:
    return interval is not None and interval.low is not None and clip_interval(interval)[2]


def ci_text(interval: Any) -> str:
    """``[80.71, 83.12]``: a 95% confidence interval in percent, clipped and marked ``*``."""
    if interval.low is None:
        return "-"
    low, high, clipped = clip_interval(interval)
    return f"[{100 * low:.2f}, {100 * high:.2f}]" + ("*" if clipped else "")


def per_subject_text(evaluation: Any) -> str:
    """``S4 84.1%, X11 79.3%``: test accuracy per subject (the mean over seeds of an
    evaluation, the one value of a reference), or ``-``."""
    if evaluation is None or not evaluation.per_subject:
        return "-"
    return ", ".join(
        f"{subject} {100 * (sum(v) / len(v) if isinstance(v, list) else v):.1f}%"
        for subject, v in evaluation.per_subject.items()
    )


def reference_facts(reference: Any) -> str:
    """``8-30 Hz, 2.4-6.0 s, 4 s``: how a reference was filtered and windowed, its time."""
    if reference.accuracy is None:
        return reference.reason
    band, window = reference.band, reference.window
    return (
        f"{band[0]:g}-{band[1]:g} Hz, {window[0]:.1f}-{window[1]:.1f} s, "
        f"{reference.seconds:.0f} s"
    )


def percent_pm(mean: float | None, std: float | None) -> str:
    """``79.72% (sd 3.27)``: a mean and a standard deviation of two fractions, or ``-``.

    A standard deviation is always labelled ``sd``; brackets are 95% intervals."""
    if mean is None:
        return "-"
    return f"{100 * mean:.2f}% (sd {100 * (std or 0.0):.2f})"


def chance_text(chance: float | None) -> str:
    """Chance level in percent (the most frequent test class's share), or ``-``."""
    return "-" if chance is None else f"{100 * chance:.1f}%"
