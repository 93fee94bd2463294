"""Terminal rendering for the CLI: progress bars, the live search view, result tables.

rich is imported inside each function so that importing this module stays cheap.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "data_info_table",
    "download_progress",
    "duration",
    "epoch_progress",
    "evaluation_progress",
    "evaluation_table",
    "progress_interval",
    "status_display",
    "fmt",
    "headline_table",
    "make_console",
    "plain_status",
    "render_status",
    "running_line",
    "short_params",
    "status_rows",
    "summary_line",
    "trials_table",
]


def make_console(stderr: bool = False) -> Any:
    """A rich console; piped output gets 160 columns instead of rich's 80."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or "COLUMNS" in os.environ else 160
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


@contextmanager
def download_progress() -> Iterator[Callable[[str, int, int | None], None]]:
    """A rich progress bar fed by the data module's download hook."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=make_console(stderr=True),
        transient=True,
    ) as progress:
        tasks: dict[str, Any] = {}

        def hook(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(f"fetching {name}", total=total)
            progress.update(tasks[name], completed=done, total=total)

        yield hook


@contextmanager
def epoch_progress(epochs: int, label: str) -> Iterator[Callable[[Any], None]]:
    """A rich progress bar over epochs showing live train/val accuracy."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[metrics]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=make_console(stderr=True),
    ) as progress:
        task = progress.add_task(label, total=epochs, metrics="")

        def on_epoch(record: Any) -> None:
            best = getattr(on_epoch, "best", 0.0)
            if record.val_acc is not None:
                best = max(best, record.val_acc)
                on_epoch.best = best  # type: ignore[attr-defined]
            metrics = f"train {100 * record.train_acc:5.1f}%"
            if record.val_acc is not None:
                metrics += f"  val {100 * record.val_acc:5.1f}%  best {100 * best:5.1f}%"
            progress.update(task, advance=1, metrics=metrics)

        yield on_epoch


_SHORT = {"activation": "", "dropout": "drop ", "lr": "lr ", "batch_size": "batch ",
          "weight_decay": "wd "}  # fmt: skip


def short_params(params: dict[str, Any]) -> str:
    """A trial's parameters in a few characters each: ``elu drop 0.56 lr 0.0024 batch 32``."""
    return " ".join(f"{_SHORT.get(k, k + ' ')}{fmt(v)}" for k, v in params.items())


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def running_line(trial: Any) -> str:
    """One running trial: number, parameters, epoch e/E, last and best validation accuracy,
    and when the pruner can strike next."""
    of = f"/{trial.epochs}" if trial.epochs else ""
    line = (
        f"trial {trial.number}: epoch {trial.epoch}{of}, val {_percent(trial.val_acc)} "
        f"(best {_percent(trial.best_val_acc)}), {short_params(trial.params)}"
    )
    if trial.next_check is not None:
        line += f"; next pruning check at epoch {trial.next_check}"
    return line


def status_rows(status: Any) -> list[tuple[str, str]]:
    """The live view's rows as (label, text): counts, running trials, best, time."""
    rows = [
        (
            "trials",
            f"{status.finished}/{status.target} finished ({status.complete} complete, "
            f"{status.pruned} pruned), {status.running} running, {status.failed} failed",
        )
    ]
    rows += [("running", running_line(t)) for t in status.running_trials]
    if status.best_value is not None:
        params = ", ".join(f"{k}={fmt(v)}" for k, v in status.best_params.items())
        rows.append(
            ("best", f"{100 * status.best_value:.2f}% (trial {status.best_number}) {params}")
        )
    eta = "-" if status.eta is None else duration(status.eta)
    rows.append(("time", f"{duration(status.elapsed)} elapsed, about {eta} left"))
    return rows


def render_status(status: Any) -> Any:
    """The live view: trial counts, the running trials, best value and parameters, time."""
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, text in status_rows(status):
        table.add_row(label, text)
    return table


def plain_status(status: Any) -> str:
    """The live view as plain text lines, for logs and terminals-less runs."""
    return "\n".join(f"{label:<8}{text}" for label, text in status_rows(status))


def fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


TRIAL_COLUMNS = (
    ("trial", "trial"),
    ("val acc", "value"),
    ("activation", "activation"),
    ("dropout", "dropout"),
    ("lr", "lr"),
    ("batch", "batch_size"),
    ("weight decay", "weight_decay"),
    ("best epoch", "best_epoch"),
    ("time", "duration_s"),
)


def trials_table(title: str, rows: list[dict[str, Any]]) -> Any:
    """A table of trial rows as :func:`eegtune.study.trial_row` makes them."""
    from rich.table import Table

    table = Table(title=title)
    for header, _ in TRIAL_COLUMNS:
        table.add_column(header, justify="right", no_wrap=True)
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


def percent_pm(mean: float | None, std: float | None) -> str:
    """``mean% ± std`` of two fractions, or ``-``."""
    if mean is None:
        return "-"
    return f"{100 * mean:.2f}% ± {100 * (std or 0.0):.2f}"


def headline_table(rows: list[dict[str, Any]]) -> Any:
    """The lab's table: best validation and test accuracy per network and activation."""
    from rich.table import Table

    table = Table(title="best accuracy per network and activation")
    for column in (
        "network",
        "activation",
        "best val acc",
        "trial",
        "test acc (mean ± std)",
        "seeds",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            f"{row['model']} ({row['study']})",
            row["activation"],
            "-" if row["val_acc"] is None else f"{100 * row['val_acc']:.2f}%",
            "-" if row["trial"] is None else str(row["trial"]),
            percent_pm(row["test_mean"], row["test_std"]),
            str(row["test_seeds"]),
        )
    return table


def evaluation_table(title: str, results: list[Any]) -> Any:
    """Per-configuration test accuracy over seeds (:class:`eegtune.evaluate.Evaluation`)."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("config", "trial", "epochs", "mean ± std", "min", "max", "seeds"):
        table.add_column(column, justify="right")
    for r in results:
        activation = r.params["activation"]
        table.add_row(
            r.label if r.label == activation else f"{r.label} ({activation})",
            str(r.trial),
            str(r.epochs),
            percent_pm(r.mean, r.std),
            f"{100 * min(r.test_acc):.2f}%",
            f"{100 * max(r.test_acc):.2f}%",
            str(len(r.seeds)),
        )
    return table


def data_info_table(title: str, found: dict[str, Any]) -> Any:
    """One row per dataset file: its :class:`eegtune.data.FileInfo`, or the error it gave."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("file", "shape", "NaN", "left / right", "published copy"):
        table.add_column(column)
    for name, info in found.items():
        if isinstance(info, Exception):
            missing = "not found" in str(info)
            table.add_row(
                name, "-", "-", "-", "[red]missing[/red]" if missing else "[red]invalid[/red]"
            )
            continue
        balance = f"{info.class_counts.get(1, 0)} / {info.class_counts.get(2, 0)}"
        match = "yes" if info.matches_published else "[yellow]no (loads anyway)[/yellow]"
        table.add_row(name, "x".join(map(str, info.shape)), str(info.n_nan), balance, match)
    return table


def summary_line(status: Any, interrupted: bool = False) -> str:
    """The last line of a search: how it ended, the trial counts, and what to do next."""
    verb = "interrupted" if interrupted else "timeout" if status.timed_out else "done"
    resume = interrupted or status.timed_out
    warnings = "".join(f"warning: {w}\n" for w in status.warnings)
    return warnings + (
        f"{verb}: {status.finished}/{status.target} finished ({status.complete} complete, "
        f"{status.pruned} pruned), {status.failed} failed"
        + ("; run the same command again to finish the remaining trials" if resume else "")
    )


def progress_interval() -> float:
    """Seconds between plain progress lines when there is no terminal
    (``$EEGTUNE_PROGRESS_INTERVAL``, default 30)."""
    try:
        return max(0.1, float(os.environ.get("EEGTUNE_PROGRESS_INTERVAL", "30")))
    except ValueError:
        return 30.0


class _Every:
    """True at most once per ``interval`` seconds (the first call included)."""

    def __init__(self, interval: float) -> None:
        self.interval, self.last = interval, -float("inf")

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.interval:
            return False
        self.last = now
        return True


@contextmanager
def status_display() -> Iterator[Callable[[Any], None]]:
    """Show a search's status: a live view on a terminal, else a block of plain lines every
    :func:`progress_interval` seconds (CI, a log file), never silence."""
    console = make_console(stderr=True)
    if console.is_terminal:
        from rich.live import Live

        with Live(console=console, refresh_per_second=4, transient=False) as live:
            yield lambda status: live.update(render_status(status))
        return
    due = _Every(progress_interval())

    def show(status: Any) -> None:
        if due():
            print(plain_status(status), file=sys.stderr, flush=True)

    yield show


@contextmanager
def evaluation_progress(
    runs: list[tuple[str, int]], seeds: int
) -> Iterator[tuple[Callable[[str, int, Any], None], Callable[[str, int, float], None]]]:
    """Progress of ``evaluate``: one bar per seed (epoch e/E, elapsed) and one overall bar.

    ``runs`` lists (label, epochs) of each configuration. Yields ``(on_epoch, on_seed)``
    hooks for :func:`eegtune.evaluate.evaluate_study`. Without a terminal it prints plain
    lines: each seed's result, and the running seed's epoch every :func:`progress_interval`.
    """
    console = make_console(stderr=True)
    total = sum(epochs for _, epochs in runs) * seeds

    def result_line(label: str, seed: int, acc: float) -> str:
        return f"{label}: seed {seed} test accuracy {100 * acc:.2f}%"

    if not console.is_terminal:
        due = _Every(progress_interval())
        started = time.monotonic()
        done = [0]

        def plain_epoch(label: str, seed: int, record: Any) -> None:
            done[0] += 1
            if due():
                epochs = dict(runs)[label]
                print(
                    f"{label}: seed {seed} epoch {record.epoch}/{epochs}; overall "
                    f"{done[0]}/{total} epochs, {duration(time.monotonic() - started)} elapsed",
                    file=sys.stderr,
                    flush=True,
                )

        def plain_seed(label: str, seed: int, acc: float) -> None:
            print(result_line(label, seed, acc), file=sys.stderr, flush=True)

        yield plain_epoch, plain_seed
        return

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        overall = progress.add_task("all seeds (epochs)", total=total)
        bars: dict[tuple[str, int], Any] = {}

        def on_epoch(label: str, seed: int, record: Any) -> None:
            key = (label, seed)
            if key not in bars:
                bars[key] = progress.add_task(f"{label} seed {seed}", total=dict(runs)[label])
            progress.update(bars[key], completed=record.epoch)
            progress.advance(overall)

        def on_seed(label: str, seed: int, acc: float) -> None:
            key = (label, seed)
            if key in bars:
                progress.update(bars[key], description=result_line(label, seed, acc))

        yield on_epoch, on_seed
