"""Progress of a search: a snapshot of a study's trial counts, best trials and remaining time.

Read by the live view while a search runs and by the summary after it ends (also after an
interruption, from the storage alone).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

__all__ = ["SearchStatus", "read_status", "snapshot"]


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
    timed_out: bool = False  # the search's --timeout ended it before the target
    warnings: list[str] = field(default_factory=list)  # shown, but the search succeeded

    @property
    def finished(self) -> int:
        return self.complete + self.pruned


def snapshot(
    study: optuna.Study, target: int, started: float, finished_at_start: int, top: int = 5
) -> SearchStatus:
    """Count the study's trials and estimate the remaining time from this run's pace."""
    from optuna.trial import TrialState

    from eegtune.study import completed_trials, trial_row

    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    status = SearchStatus(
        target=target,
        complete=states[TrialState.COMPLETE],
        pruned=states[TrialState.PRUNED],
        failed=states[TrialState.FAIL],
        running=states[TrialState.RUNNING],
        elapsed=time.time() - started,
    )
    complete = completed_trials(study)
    if complete:
        status.best_value = complete[0].value
        status.best_params = dict(complete[0].params)
        status.best_number = complete[0].number
    model = str(study.user_attrs.get("model", ""))
    status.best_trials = [trial_row(study.study_name, model, t) for t in complete[:top]]
    done_now = status.finished - finished_at_start
    remaining = max(0, target - status.finished)
    if remaining == 0:
        status.eta = 0.0
    elif done_now > 0:
        status.eta = status.elapsed / done_now * remaining
    return status


def read_status(storage: str | None, name: str, target: int) -> SearchStatus | None:
    """A study's status read from its storage alone (after an interruption); None when the
    storage or the study cannot be read."""
    from eegtune.errors import EegtuneError
    from eegtune.study import load_study, open_storage

    try:
        study = load_study(open_storage(storage, create=False), name)
    except EegtuneError:
        return None
    return snapshot(study, target, 0.0, 0)
