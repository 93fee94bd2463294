"""Terminal rendering for the CLI: result tables and one-line summaries (live views of
running work are in :mod:`eegtune.cli.live`).

rich is imported inside each function so that importing this module stays cheap.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from eegtune.names import PARAMS, network_title, objective_title
from eegtune.results.text import (
    CLIPPED_NOTE,
    chance_text,
    ci_text,
    headline_columns,
    headline_objective,
    interval_text,
    is_clipped,
    per_subject_text,
    percent_pm,
    reference_facts,
)

__all__ = [
    "data_info_table",
    "duration",
    "evaluation_table",
    "fmt",
    "headline_table",
    "interval_text",
    "chance_text",
    "compare_table",
    "config_title",
    "confusion_table",
    "lab_table",
    "make_console",
    "references_table",
    "retraining_table",
    "summary_line",
    "trials_table",
]


def make_console(stderr: bool = False) -> Any:
    """A rich console; piped output gets 160 columns instead of rich's 80.

    Markup is off: study names, class labels, subjects and parameter values are text, so a
    name such as ``[/]`` or ``[red]`` is printed as it is (styles are given as rich Text).
    """
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or "COLUMNS" in os.environ else 160
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width, markup=False)


def fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


TRIAL_COLUMNS = (
    ("trial", "trial"),
    ("score", "value"),  # headed by the study's objective (eegtune.names.objective_title)
    ("activation", "activation"),
    ("dropout", "dropout"),
    ("lr", "lr"),
    ("batch", "batch_size"),
    ("weight decay", "weight_decay"),
    ("best epoch", "best_epoch"),
    ("time", "duration_s"),
    ("from", "source"),  # sampler, portfolio N, lab's settings, warm start
)


def trials_table(title: str, rows: list[dict[str, Any]], objective: str) -> Any:
    """A table of trial rows as :func:`eegtune.search.study.trial_row` makes them; the score
    column is headed by the study's ``objective``."""
    from rich.table import Table

    table = Table(title=title)
    for header, key in TRIAL_COLUMNS:
        heading = objective_title(objective) if key == "value" else header
        table.add_column(heading, justify="right", no_wrap=True)
    for row in rows:
        cells = []
        for _, key in TRIAL_COLUMNS:
            value = row.get(key)
            if value is None:
                cells.append("-")
            elif key == "value":
                cells.append(f"{100 * value:.2f}%")
            elif key == "duration_s":
                cells.append(duration(value))
            else:
                cells.append(fmt(value))
        table.add_row(*cells)
    return table


def compare_table(cells: list[Any], references: Sequence[Any] = ()) -> Any:
    """``eegtune compare``'s table: per cell tuned and baseline test accuracy and the gain,
    then a row per classical reference (:class:`eegtune.results.references.ReferenceResult`,
    trained once: its interval is over the test trials)."""
    from rich.table import Table

    table = Table(title="test accuracy per network and activation: tuned vs the lab's settings")
    subjects = any(c.tuned is not None and c.tuned.per_subject for c in cells)
    columns = ["network", "activation", "tuned [95% CI]", "lab's settings [95% CI]"]
    columns += ["tuned - lab's [95% CI]", "chance", "seeds"]
    columns += ["tuned per subject"] if subjects else []
    notes = any(c.reason for c in cells)  # no empty column
    for column in [*columns, *(["note"] if notes else [])]:
        table.add_column(column, justify="right" if column != "note" else "left")
    for c in cells:
        row = [
            c.model,
            c.activation,
            "-" if c.tuned is None else interval_text(c.tuned.interval),
            "-" if c.baseline is None else interval_text(c.baseline.interval),
            "-" if c.difference is None else interval_text(c.difference, signed=True) + " pts",
            chance_text(None if c.tuned is None else c.tuned.chance),
            "-" if c.tuned is None else str(len(c.tuned.seeds)),
        ]
        if subjects:
            row.append(per_subject_text(c.tuned))
        table.add_row(*row, *([c.reason] if notes else []))
    for r in references:
        row = [
            "reference",
            r.title,
            "-" if r.interval is None else interval_text(r.interval),
            "-",
            "-",
            chance_text(r.chance),
            "1 fit",
        ]
        if subjects:
            row.append(per_subject_text(r))
        table.add_row(*row, *([r.reason] if notes else []), style="dim")
    if any(is_clipped(e.interval) for c in cells for e in (c.tuned, c.baseline) if e):
        table.caption = CLIPPED_NOTE
    if references:
        note = ("references: classical pipelines trained once on the same training set; "
                "their interval is over the test trials, not seeds")  # fmt: skip
        table.caption = f"{table.caption}\n{note}" if table.caption else note
    return table


def references_table(references: Sequence[Any]) -> Any:
    """The classical references' test accuracy (one fit each; Wilson 95% interval over the
    test trials), per subject, and how each was filtered, windowed and timed."""
    from rich.table import Table

    table = Table(title="classical references (same training and test sets, trained once)")
    subjects = any(r.per_subject for r in references)
    columns = ["reference", "test acc [95% CI]", "chance", "test trials"]
    columns += ["per subject"] if subjects else []
    for column in [*columns, "band, window, time"]:
        table.add_column(column, justify="right" if column != "band, window, time" else "left")
    for r in references:
        table.add_row(
            r.title,
            "-" if r.interval is None else interval_text(r.interval),
            chance_text(r.chance),
            str(r.n_test),
            *([per_subject_text(r)] if subjects else []),
            reference_facts(r),
        )
    return table


def lab_table(network: Any) -> Any:
    """The lab's "highest testing accuracy" table of one network
    (:class:`eegtune.results.lab.LabNetwork`): a row per setting, a column per activation."""
    from rich.table import Table

    from eegtune.results.lab import SETTING_TITLES

    table = Table(title=f"{network_title(network.model)}: test accuracy, mean [95% CI] over seeds")
    table.add_column("settings", justify="left")
    for activation in network.activations:
        table.add_column(activation, justify="right")
    clipped = False
    for setting in network.results:
        cells = []
        for activation in network.activations:
            e = network.get(setting, activation)
            cells.append("-" if e is None else interval_text(e.interval))
            clipped = clipped or (e is not None and is_clipped(e.interval))
        table.add_row(SETTING_TITLES[setting], *cells)
    if clipped:
        table.caption = CLIPPED_NOTE
    return table


def headline_table(rows: list[dict[str, Any]]) -> Any:
    """The lab's table: best validation score and test accuracy per network and activation."""
    from rich.table import Table

    table = Table(title="best accuracy per network and activation")
    for column in headline_columns(headline_objective(rows)):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            f"{row['model']} ({row['study']})",
            row["activation"],
            "-" if row["val_acc"] is None else f"{100 * row['val_acc']:.2f}%",
            "-" if row["trial"] is None else str(row["trial"]),
            percent_pm(row["test_mean"], row["test_std"]),
            chance_text(row.get("chance")),
            str(row["test_seeds"]),
        )
    return table


def evaluation_table(title: str, results: list[Any]) -> Any:
    """Per-configuration test accuracy over seeds (:class:`eegtune.results.evaluate.Evaluation`)."""
    from rich.table import Table

    table = Table(title=title)
    subjects = any(r.per_subject for r in results)
    columns = ["config", "trial", "epochs", "mean (sd)", "95% CI", "min", "max", "chance"]
    for column in [*columns, "seeds"] + (["per subject"] if subjects else []):
        table.add_column(column, justify="right")
    for r in results:
        activation = r.params["activation"]
        table.add_row(
            r.label if r.label == activation else f"{r.label} ({activation})",
            str(r.trial),
            str(r.epochs),
            percent_pm(r.mean, r.std),
            ci_text(r.interval),
            f"{100 * min(r.test_acc):.2f}%",
            f"{100 * max(r.test_acc):.2f}%",
            chance_text(r.chance),
            str(len(r.seeds)),
            *([per_subject_text(r)] if subjects else []),
        )
    if any(is_clipped(r.interval) for r in results):
        table.caption = CLIPPED_NOTE
    return table


def config_title(label: str, trial: int) -> str:
    """How a retrained configuration is named on screen: its trial first, then its role."""
    return f"trial {trial} ({label})"


def retraining_table(plan: Any) -> Any:
    """What ``evaluate`` is about to retrain (:class:`eegtune.results.evaluate.EvaluationPlan`):
    each configuration's trial, settings and epochs, before the first seed trains."""
    from rich.table import Table

    seeds = plan.seeds
    table = Table(
        title=f"retraining study {plan.name!r} ({plan.spec.model}, {plan.spec.source.describe()})"
        f" on the full training set: seeds 0..{seeds - 1}, each tested once"
    )
    settings = [(header, key) for header, key in TRIAL_COLUMNS if key in PARAMS]
    for header in ["config", "trial", "epochs", *(h for h, _ in settings)]:
        table.add_column(header, justify="right", no_wrap=True)
    for (label, epochs), trial in zip(plan.runs, plan.configs.values(), strict=True):
        cells = (fmt(trial.params.get(key, "-")) for _, key in settings)
        table.add_row(label, str(trial.number), str(epochs), *cells)
    return table


def confusion_table(evaluation: Any) -> Any:
    """Confusion matrix (test trials of every seed) with each class's accuracy."""
    from rich.table import Table

    seeds = len(evaluation.seeds)
    table = Table(
        title=f"confusion matrix of {evaluation.label}: true class (rows) x predicted class "
        f"(columns), test trials of {seeds} seed{'s' if seeds != 1 else ''}"
    )
    table.add_column("true class")
    for name in evaluation.classes:
        table.add_column(name, justify="right")
    table.add_column("class accuracy", justify="right")
    per_class = evaluation.per_class
    for name, row in zip(evaluation.classes, evaluation.confusion, strict=True):
        accuracy = per_class.get(name)
        shown = "-" if accuracy is None else f"{100 * accuracy:.1f}%"
        table.add_row(name, *(str(n) for n in row), shown)
    return table


def data_info_table(title: str, found: dict[str, Any]) -> Any:
    """One row per dataset file: its :class:`eegtune.data.FileInfo`, or the error it gave."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for column in ("file", "shape", "NaN", "left / right", "published copy"):
        table.add_column(column)
    for name, info in found.items():
        if isinstance(info, Exception):
            missing = "not found" in str(info)
            table.add_row(
                name, "-", "-", "-", Text("missing" if missing else "invalid", style="red")
            )
            continue
        balance = f"{info.class_counts.get(1, 0)} / {info.class_counts.get(2, 0)}"
        match = "yes" if info.matches_published else Text("no (loads anyway)", style="yellow")
        table.add_row(name, "x".join(map(str, info.shape)), str(info.n_nan), balance, match)
    return table


def summary_line(status: Any, interrupted: bool = False) -> str:
    """The last line of a search: how it ended, the trial counts, and what to do next."""
    verb = "interrupted" if interrupted else "timeout" if status.timed_out else "done"
    resume = interrupted or status.timed_out
    warnings = "".join(f"warning: {w}\n" for w in status.warnings)
    stopped = f"{status.stopped}\n" if getattr(status, "stopped", "") else ""
    left = max(0, status.target - status.finished)
    again = f"; {left} trial(s) remain: run the same command again to finish them"
    counts = f"{status.complete} complete, {status.pruned} pruned), {status.failed} failed"
    tail = again if resume else ""
    return f"{warnings}{stopped}{verb}: {status.finished}/{status.target} finished ({counts}{tail}"
