"""Progress of a search: a snapshot of a study's trial counts, running trials, best trials and
remaining time.

Read by the live view while a search runs and by the summary after it ends (also after an
interruption, from the storage alone).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eegtune.errors import EegtuneError
from eegtune.search.samplers import next_pruning_check
from eegtune.search.study import completed_trials, load_study, trial_row

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage

__all__ = [
    "EtaSmoother",
    "Poller",
    "RunningTrial",
    "SearchStatus",
    "StatusReader",
    "epochs_left",
    "read_status",
    "snapshot",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningTrial:
    """A trial in training: what the live view shows about it."""

    number: int
    params: dict[str, Any]
    epoch: int  # epochs reported so far
    epochs: int | None  # the most it will train
    val_acc: float | None  # of the last reported epoch
    best_val_acc: float | None
    next_check: int | None  # the next epoch at which the pruner compares it, if known
    baseline: bool = False  # the lab's settings (``compare``): never pruned


@dataclass
class SearchStatus:
    """A snapshot of a study for progress displays and summaries."""

    target: int
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_number: int | None = None
    elapsed: float = 0.0
    eta: float | None = None
    best_trials: list[dict[str, Any]] = field(default_factory=list)
    running_trials: list[RunningTrial] = field(default_factory=list)
    objective: str = "smoothed"  # what best_value is (see eegtune.names.objective_title)
    epochs_done: int = 0  # epochs trained by this run (all its workers)
    epochs_left: float = 0.0  # estimated epochs still to train to reach the target
    overall: str | None = None  # a longer job's own progress line (compare: the whole run)
    timed_out: bool = False  # the search's --timeout ended it before the target
    stopped: str = ""  # why --stop-when-flat ended it before the target
    warnings: list[str] = field(default_factory=list)  # shown, but the search succeeded

    @property
    def finished(self) -> int:
        return self.complete + self.pruned


def epochs_left(trials: list[optuna.trial.FrozenTrial], target: int, epochs: int | None) -> float:
    """Epochs still to train before ``target`` trials have finished.

    A trial is expected to train as many epochs as the finished trials did on average (the
    pruner's cut included); before any finished, as many as ``epochs`` allows (or as the
    running ones have so far). A running trial has at least one epoch left.
    """
    from optuna.trial import TrialState

    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if finished:
        per_trial = sum(len(t.intermediate_values) for t in finished) / len(finished)
    else:
        per_trial = float(epochs or max((len(t.intermediate_values) for t in running), default=1))
    per_trial = max(per_trial, 1.0)
    left = sum(max(1.0, per_trial - len(t.intermediate_values)) for t in running)
    waiting = max(0, target - len(finished) - len(running))
    return left + waiting * per_trial


def snapshot(
    study: optuna.Study,
    target: int,
    started: float,
    finished_at_start: int,
    top: int = 5,
    *,
    epochs: int | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    epochs_at_start: int | None = None,
) -> SearchStatus:
    """Count the study's trials and estimate the remaining time from this run's pace.

    The estimate is the epochs still to train (:func:`epochs_left`) at the rate this run has
    trained epochs so far (``epochs_at_start``: the study's epoch count when the run began);
    while work remains it is never below the time of one epoch. ``epochs`` (the most a trial
    trains) and ``pruner`` (the study's pruner) let the running trials show their progress
    and the next epoch at which they can be pruned.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    status = SearchStatus(
        target=target,
        complete=states[TrialState.COMPLETE],
        pruned=states[TrialState.PRUNED],
        failed=states[TrialState.FAIL],
        running=states[TrialState.RUNNING],
        elapsed=time.time() - started,
        objective=str(study.user_attrs.get("objective", "best")),
    )
    complete = completed_trials(study)
    if complete:
        status.best_value = complete[0].value
        status.best_params = dict(complete[0].params)
        status.best_number = complete[0].number
    model = str(study.user_attrs.get("model", ""))
    status.best_trials = [trial_row(study.study_name, model, t) for t in complete[:top]]
    for t in trials:
        if t.state != TrialState.RUNNING:
            continue
        values = [t.intermediate_values[step] for step in sorted(t.intermediate_values)]
        epoch = max(t.intermediate_values, default=0)
        status.running_trials.append(
            RunningTrial(
                number=t.number,
                params=dict(t.params),
                epoch=epoch,
                epochs=epochs,
                val_acc=values[-1] if values else None,
                best_val_acc=max(values) if values else None,
                next_check=next_pruning_check(pruner, study, t, epoch, epochs)
                if pruner is not None and not t.user_attrs.get("baseline")
                else None,
                baseline=bool(t.user_attrs.get("baseline")),
            )
        )
    trained = sum(len(t.intermediate_values) for t in trials)
    status.epochs_done = trained - (trained if epochs_at_start is None else epochs_at_start)
    if status.finished >= target:
        status.eta = 0.0
        return status
    status.epochs_left = epochs_left(trials, target, epochs)
    if status.epochs_done > 0 and status.elapsed > 0:
        per_epoch = status.elapsed / status.epochs_done
        status.eta = max(per_epoch, status.epochs_left * per_epoch)
    return status


class StatusReader:
    """Reads a running search's status from its study: each call is a fresh, smoothed snapshot."""

    def __init__(
        self,
        study: optuna.Study,
        target: int,
        started: float,
        *,
        epochs: int | None = None,
        pruner: optuna.pruners.BasePruner | None = None,
    ) -> None:
        self.study, self.target, self.started = study, target, started
        self.epochs, self.pruner = epochs, pruner
        first = snapshot(study, target, started, 0)
        self.finished_at_start = first.finished
        self.epochs_at_start = sum(len(t.intermediate_values) for t in study.get_trials())
        self.smooth = EtaSmoother()

    def __call__(self) -> SearchStatus:
        status = snapshot(
            self.study,
            self.target,
            self.started,
            self.finished_at_start,
            epochs=self.epochs,
            pruner=self.pruner,
            epochs_at_start=self.epochs_at_start,
        )
        return self.smooth(status)


class Poller:
    """A thread that hands ``show`` a fresh status every ``interval`` seconds (nothing when
    ``show`` is None); a failing display never stops the search."""

    def __init__(
        self,
        read: Callable[[], SearchStatus],
        show: Callable[[SearchStatus], None] | None,
        interval: float,
    ) -> None:
        self._read, self._show, self._interval = read, show, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="eegtune-progress")
        if show is not None:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._show(self._read())  # type: ignore[misc]
            except Exception as exc:  # a display must never stop the search
                logger.debug("progress update failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class EtaSmoother:
    """Steadies a remaining-time estimate: between polls the shown value counts down with the
    clock and moves a third of the way to the fresh estimate, so it neither jumps with every
    epoch nor runs down to 0:00 while work remains (it never goes below the fresh estimate's
    half, nor below one epoch's time, which the estimate already includes)."""

    def __init__(self) -> None:
        self._shown: float | None = None
        self._at = 0.0

    def __call__(self, status: SearchStatus, now: float | None = None) -> SearchStatus:
        now = time.time() if now is None else now
        raw = status.eta
        if raw is None or raw == 0.0 or self._shown is None:
            self._shown = raw
        else:
            counted_down = max(0.0, self._shown - (now - self._at))
            self._shown = max(0.5 * raw, (2 * counted_down + raw) / 3)
        self._at = now
        status.eta = self._shown
        return status


def read_status(storage: BaseStorage, name: str, target: int) -> SearchStatus | None:
    """A study's status read from its storage alone (after an interruption); None when the
    study cannot be read."""
    try:
        study = load_study(storage, name)
    except EegtuneError:
        return None
    return snapshot(study, target, 0.0, 0)
