"""The search: the worker loop, then the whole run.

``--trials N`` is the study's target, not a per-run count: a worker starts a trial only while
finished (complete or pruned) plus running trials stay below N, so re-running a command after
an interruption, or running it on several machines against one storage, ends with N finished
trials. Study creation lives in :mod:`eegtune.search.study`, worker processes and heartbeats in
:mod:`eegtune.search.workers`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from eegtune.errors import SearchError
from eegtune.search.objective import Job, attach, baseline_waiting, is_surplus, run_trial
from eegtune.search.progress import Poller, SearchStatus, StatusReader
from eegtune.search.settings import SearchSettings, check_settings
from eegtune.search.workers import (
    fail_stale_trials,
    heartbeat_interval,
    run_processes,
    worker_device,
)

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

    from eegtune.data.dataset import Dataset

__all__ = ["run_search", "run_worker"]


def run_worker(
    settings: SearchSettings,
    *,
    deadline: float | None = None,
    job: Job | None = None,
) -> None:
    """Run trials until the study's target is reached, the deadline passes (cutting the
    running trial), or failures pile up.

    Raises:
        SearchError: after ``max_consecutive_failures`` failed trials in a row.
    """
    from optuna.trial import TrialState

    job = job or attach(settings)
    study = job.study
    grace = 3 * heartbeat_interval()
    failures_in_a_row = 0
    while deadline is None or time.time() < deadline:
        fail_stale_trials(study, job.storage, grace)
        states = Counter(t.state for t in study.get_trials(deepcopy=False))
        finished = states[TrialState.COMPLETE] + states[TrialState.PRUNED]
        owed = baseline_waiting(study)  # compare's baseline runs even past the target
        if finished >= settings.trials and not owed:
            return
        if finished + states[TrialState.RUNNING] >= settings.trials and not owed:
            # The rest of the target is running in other workers: wait for them (they may
            # still fail or die, and then this worker takes their place).
            time.sleep(min(1.0, grace / 3))
            continue
        trial = study.ask()
        if not trial.user_attrs.get("baseline") and is_surplus(study, trial, settings.trials):
            trial.set_user_attr("fail_reason", "surplus: other workers already filled the target")
            study.tell(trial, state=TrialState.FAIL)
            return
        outcome, reason = run_trial(job, trial, deadline)
        if deadline is not None and time.time() >= deadline:
            return  # a trial cut by the deadline is not a failure streak
        failures_in_a_row = failures_in_a_row + 1 if outcome == "FAIL" else 0
        if failures_in_a_row >= settings.max_consecutive_failures:
            raise SearchError(
                f"{failures_in_a_row} trials failed in a row (last: {reason}); stopping the "
                "search short of its target: fix the cause and run the same command again"
            )


# --------------------------------------------------------------------------- the whole search


def run_search(
    settings: SearchSettings,
    *,
    on_status: Callable[[SearchStatus], None] | None = None,
    poll_interval: float = 1.0,
    data_set: Dataset | None = None,
    storage: BaseStorage | None = None,
) -> SearchStatus:
    """Run a search to the study's target with ``settings.workers`` workers.

    Everything that can be wrong with the input (space file, device, data, storage) is checked
    before a study is created, so a bad command leaves nothing behind.

    Args:
        settings: What to search.
        on_status: Called with a fresh :class:`SearchStatus` every ``poll_interval`` seconds
            and once at the end.
        data_set: An already loaded dataset (saves loading it again).
        storage: The command's open storage (else ``settings.storage`` is opened here).

    Returns:
        The final status. ``KeyboardInterrupt`` propagates after workers stopped cleanly.
    """
    from eegtune.data.loading import load_dataset
    from eegtune.models.networks import check_input
    from eegtune.search.space import load_space
    from eegtune.search.storages import (
        describe_storage,
        failure_reason,
        is_storage_error,
        open_storage,
        redact,
    )
    from eegtune.search.study import create_or_check_study, quiet_optuna, remember_classes

    quiet_optuna()
    check_settings(settings)
    started = time.time()
    deadline = None if settings.timeout is None else started + settings.timeout
    if data_set is None:
        data_set = load_dataset(settings.source, settings.data_dir, offline=settings.offline)
    check_input(settings.model, data_set)
    if storage is None:
        storage = open_storage(settings.storage)
    keys = replace(settings.study_keys(), data=data_set.fingerprint())
    study, kept = create_or_check_study(storage, settings.name, keys)
    space = load_space(settings.model, settings.space).fixing("activation", settings.activation)
    space.check_study(study.get_trials(deepcopy=False), settings.name, settings.space)
    remember_classes(study, data_set.classes)
    settings = replace(
        settings,
        split_seed=kept.split_seed,
        val_fraction=kept.val_fraction,
        objective=kept.objective,
    )
    from eegtune.search.samplers import make_pruner

    status = StatusReader(
        study,
        settings.trials,
        started,
        epochs=settings.epochs,
        pruner=make_pruner(settings.pruner, settings.epochs),  # a twin: tells the next check
    )
    crashed: list[int] = []
    poller = Poller(status, on_status, poll_interval)
    try:
        if settings.workers == 1:
            run_worker(
                settings,
                deadline=deadline,
                job=attach(settings, data_set=data_set, storage=storage),
            )
        else:
            crashed = run_processes(
                run_worker,
                lambda i: (replace(settings, device=worker_device(settings.device, i)),),
                settings.workers,
                settings.device,
                deadline,
            )
    except Exception as exc:
        if not is_storage_error(exc):
            raise
        reason = redact(failure_reason(exc), settings.storage)
        lost = f"lost the storage {describe_storage(settings.storage)} ({reason})"
        raise SearchError(
            f"{lost}; finished trials are kept: run the same command again to resume"
        ) from None
    finally:
        poller.stop()
    final = status()
    out_of_time = deadline is not None and time.time() >= deadline
    final.timed_out = out_of_time and final.finished < final.target
    if crashed:
        lost = f"{len(crashed)} worker(s) exited abnormally (exit codes {crashed})"
        if final.finished < final.target and not final.timed_out:
            left = final.target - final.finished
            raise SearchError(
                f"{lost}; {left} trial(s) remain: run the same command again to finish them"
            )
        final.warnings.append(f"{lost}; the other workers finished their trials")
    if on_status is not None:
        on_status(final)
    return final
