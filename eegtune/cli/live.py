"""Live terminal views of long work: downloads, epochs, a running search, ``evaluate``.

On a terminal these are rich live displays; without one (CI, a log file) they fall back to
plain lines every :func:`progress_interval` seconds, never to silence. rich is imported
inside each function so that importing this module stays cheap.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eegtune.cli.console import duration, fmt, make_console
from eegtune.errors import ConfigError
from eegtune.names import objective_title

if TYPE_CHECKING:
    from eegtune.data.dataset import Dataset
    from eegtune.data.sources import DataSource

__all__ = [
    "download_progress",
    "epoch_progress",
    "evaluation_progress",
    "load_data",
    "offline_or_env",
    "plain_status",
    "progress_interval",
    "render_status",
    "running_line",
    "short_params",
    "status_display",
    "status_rows",
]


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

    progress = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=make_console(stderr=True),
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def hook(name: str, done: int, total: int | None) -> None:
        if not tasks:
            progress.start()  # only once something downloads: nothing to show otherwise
        if name not in tasks:
            tasks[name] = progress.add_task(f"fetching {name}", total=total)
        progress.update(tasks[name], completed=done, total=total)

    try:
        yield hook
    finally:
        if tasks:
            progress.stop()


def _bars(console: Any, *extra: Any) -> Any:
    """A rich Progress: description, bar, done/total, ``extra`` columns, elapsed, remaining."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


@contextmanager
def epoch_progress(epochs: int, label: str) -> Iterator[Callable[[Any], None]]:
    """A rich progress bar over epochs showing live train/val accuracy."""
    from rich.progress import TextColumn

    metrics = TextColumn("{task.fields[metrics]}", markup=False)
    with _bars(make_console(stderr=True), metrics) as progress:
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
        f"(best single epoch {_percent(trial.best_val_acc)}), {short_params(trial.params)}"
    )
    if trial.baseline:
        line += "; the lab's settings, never pruned"
    elif trial.next_check is not None:
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
        score = objective_title(status.objective)
        rows.append(
            (
                "best",
                f"{score} {100 * status.best_value:.2f}% (trial {status.best_number}) {params}",
            )
        )
    eta = "-" if status.eta is None else duration(status.eta)
    rows.append(("time", f"{duration(status.elapsed)} elapsed, about {eta} left"))
    if status.overall:
        rows.append(("overall", status.overall))
    return rows


def clock_line(clock: Any, phase: str) -> str:
    """A ``compare`` run's progress as a whole (:class:`eegtune.results.compare.CompareClock`)."""
    done, left = clock.totals()
    eta = clock.eta()  # None before the first epoch
    elapsed = time.time() - clock.started
    about = "-" if eta is None else duration(eta)
    return (
        f"{phase}; {100 * clock.fraction():.0f}% of about {done + left:,.0f} epochs done, "
        f"{duration(elapsed)} elapsed, about {about} left for the whole run"
    )


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


def progress_interval() -> float:
    """Seconds between plain progress lines when there is no terminal
    (``$EEGTUNE_PROGRESS_INTERVAL``, default 30)."""
    raw = os.environ.get("EEGTUNE_PROGRESS_INTERVAL", "30")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0.1 <= seconds <= 86400:
        raise ConfigError(
            f"EEGTUNE_PROGRESS_INTERVAL must be a number of seconds from 0.1 to 86400, got {raw!r}"
        )
    return seconds


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
    last: list[Any] = [None, None]  # the latest status, and the latest one printed

    def show(status: Any) -> None:
        last[0] = status
        if due():
            last[1] = status
            print(plain_status(status), file=sys.stderr, flush=True)

    yield show
    if last[0] is not None and last[0] is not last[1]:  # the final state, always
        print(plain_status(last[0]), file=sys.stderr, flush=True)


@contextmanager
def evaluation_progress(
    runs: list[tuple[str, int]],
    seeds: int,
    titles: dict[str, str] | None = None,
    clock: Any = None,
) -> Iterator[tuple[Callable[[str, int, Any], None], Callable[[str, int, float], None]]]:
    """Progress of ``evaluate``: one bar per seed (epoch e/E, elapsed) and one overall bar.

    ``runs`` lists (label, epochs) of each configuration; ``titles`` names a label on screen
    (``trial 12 (best)``: the configuration, not the best seed); a ``clock`` (compare's) counts
    every epoch and gives the plain lines its whole-run estimate. Yields ``(on_epoch, on_seed)``
    hooks for :func:`eegtune.results.evaluate.evaluate_study`. Without a terminal it prints plain
    lines: each seed's result, and the running seed's epoch every :func:`progress_interval`.
    """
    console = make_console(stderr=True)
    total = sum(epochs for _, epochs in runs) * seeds
    titles = titles or {}

    def title(label: str) -> str:
        return titles.get(label, label)

    def result_line(label: str, seed: int, acc: float) -> str:
        return f"{title(label)}: seed {seed} test accuracy {100 * acc:.2f}%"

    if not console.is_terminal:
        due = _Every(progress_interval())
        started = time.monotonic()
        done = [0]

        def plain_epoch(label: str, seed: int, record: Any) -> None:
            done[0] += 1
            if clock is not None:
                clock.evaluated_epoch(label)
            if due():
                epochs = dict(runs)[label]
                elapsed = time.monotonic() - started
                per_epoch = elapsed / done[0]
                left = duration(max(per_epoch, (total - done[0]) * per_epoch))
                line = (
                    f"{title(label)}: seed {seed} epoch {record.epoch}/{epochs}; overall "
                    f"{done[0]}/{total} epochs, {duration(elapsed)} elapsed, about {left} left"
                )
                if clock is not None:
                    line += "\n" + clock_line(clock, "compare: evaluating")
                print(line, file=sys.stderr, flush=True)

        def plain_seed(label: str, seed: int, acc: float) -> None:
            print(result_line(label, seed, acc), file=sys.stderr, flush=True)

        yield plain_epoch, plain_seed
        return

    with _bars(console) as progress:
        overall = progress.add_task("all seeds (epochs)", total=total)
        bars: dict[tuple[str, int], Any] = {}

        def on_epoch(label: str, seed: int, record: Any) -> None:
            if clock is not None:
                clock.evaluated_epoch(label)
            key = (label, seed)
            if key not in bars:
                bars[key] = progress.add_task(
                    f"{title(label)} seed {seed}", total=dict(runs)[label]
                )
            progress.update(bars[key], completed=record.epoch)
            progress.advance(overall)

        def on_seed(label: str, seed: int, acc: float) -> None:
            key = (label, seed)
            if key in bars:
                progress.update(bars[key], description=result_line(label, seed, acc))

        yield on_epoch, on_seed


def offline_or_env(flag: bool) -> bool:
    """``--offline``, or ``$EEGTUNE_OFFLINE`` when the flag is not given."""
    from eegtune.data.loading import offline_from_env

    return flag or offline_from_env()


def load_data(dataset: DataSource | str, data_dir: Path, offline: bool) -> Dataset:
    """Load a dataset for a command, fetching BCI IIIb with a progress bar when needed.

    The synthetic dataset is always generated with seed 0, so that every command and every
    worker sees the same trials.
    """
    from eegtune.data.loading import load_dataset

    with download_progress() as hook:
        data = load_dataset(dataset, data_dir, offline=offline_or_env(offline), progress=hook)
    if data.nan_filled:
        print(
            f"filled {data.nan_filled} NaN values with the training set's channel means",
            file=sys.stderr,
        )
    return data
