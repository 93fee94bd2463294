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

from eegtune.data.dataset import check_folds
from eegtune.data.loading import load_dataset
from eegtune.errors import SearchError
from eegtune.models.networks import check_input
from eegtune.search.objective import Job, attach, baseline_waiting, is_surplus, run_trial
from eegtune.search.plan import SearchPlan, default_study_name
from eegtune.search.portfolio import enqueue_portfolio, is_repeat
from eegtune.search.progress import Poller, SearchStatus, StatusReader
from eegtune.search.stopping import STOPPED_KEY, flat_verdict, n_scored
from eegtune.search.storages import (
    close_storage,
    describe_storage,
    failure_reason,
    is_storage_error,
    open_storage,
    redact,
)
from eegtune.search.study import create_or_check_study, quiet_optuna, remember_classes
from eegtune.search.workers import fail_stale_trials, heartbeat_interval, run_processes

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

    from eegtune.data.dataset import Dataset

__all__ = ["run_search", "run_worker"]


def run_worker(
    plan: SearchPlan,
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

    job = job or attach(plan)
    study = job.study
    grace = 3 * heartbeat_interval()
    failures_in_a_row = 0
    while deadline is None or time.time() < deadline:
        fail_stale_trials(study, job.storage, grace)
        states = Counter(t.state for t in study.get_trials(deepcopy=False))
        finished = states[TrialState.COMPLETE] + states[TrialState.PRUNED]
        owed = baseline_waiting(study)  # compare's baseline runs even past the target
        if finished >= plan.trials and not owed:
            return
        if plan.stop_when_flat and not owed and _stop_when_flat(job):
            return
        if finished + states[TrialState.RUNNING] >= plan.trials and not owed:
            # The rest of the target is running in other workers: wait for them (they may
            # still fail or die, and then this worker takes their place).
            time.sleep(min(1.0, grace / 3))
            continue
        trial = study.ask()
        if not trial.user_attrs.get("baseline") and is_surplus(study, trial, plan.trials):
            # Another worker asked in between: fail this one and go round again, which waits
            # for theirs (and takes its place if it fails) instead of leaving it unwatched.
            trial.set_user_attr("fail_reason", "surplus: other workers already filled the target")
            study.tell(trial, state=TrialState.FAIL)
            continue
        if is_repeat(study, trial):
            # Two commands started at once on a new study both queued its portfolio: the
            # first of each pair trains, the copy is failed, and the worker goes round again.
            reason = "repeat: another worker queued the same portfolio trial"
            trial.set_user_attr("fail_reason", reason)
            study.tell(trial, state=TrialState.FAIL)
            continue
        outcome, reason = run_trial(job, trial, deadline)
        if deadline is not None and time.time() >= deadline:
            return  # a trial cut by the deadline is not a failure streak
        failures_in_a_row = failures_in_a_row + 1 if outcome == "FAIL" else 0
        if failures_in_a_row >= plan.max_consecutive_failures:
            raise SearchError(
                f"{failures_in_a_row} trials failed in a row (last: {reason}); stopping the "
                "search short of its target: fix the cause and run the same command again"
            )


def _stop_when_flat(job: Job) -> bool:
    """Whether the study's gains fell below a score's noise (``--stop-when-flat``); the reason
    is stored with the study (``stopped`` attribute) for the summary and ``report``."""
    from optuna.trial import TrialState

    study, plan = job.study, job.plan
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    verdict = flat_verdict(plan.space, complete, n_scored(job.splits), plan.seed)
    if verdict is None or not verdict.stop:
        return False
    study.set_user_attr(STOPPED_KEY, verdict.reason)
    return True


# --------------------------------------------------------------------------- the whole search


def run_search(
    plan: SearchPlan,
    *,
    on_status: Callable[[SearchStatus], None] | None = None,
    poll_interval: float = 1.0,
    data_set: Dataset | None = None,
    storage: BaseStorage | None = None,
    on_start: Callable[[SearchPlan], None] | None = None,
) -> SearchStatus:
    """Run a search to the study's target with ``plan.workers`` workers.

    The plan was checked when it was made (:func:`eegtune.search.plan.plan_search`); the data
    and the study are checked here before a trial starts, so a bad command leaves nothing
    behind but, at most, the study's keys.

    Args:
        plan: What to search.
        on_status: Called with a fresh :class:`SearchStatus` every ``poll_interval`` seconds
            and once at the end.
        data_set: An already loaded dataset (saves loading it again).
        storage: The command's open storage; without one, ``plan.storage`` is opened here
            and closed at the end.
        on_start: Called with the plan (the study's own split and objective) once the study
            is created or checked, before the first trial: a refusal comes before it.

    Returns:
        The final status. ``KeyboardInterrupt`` propagates after workers stopped cleanly.
    """
    quiet_optuna()
    started = time.time()
    deadline = None if plan.timeout is None else started + plan.timeout
    if data_set is None:
        data_set = load_dataset(plan.source, plan.data_dir, offline=plan.offline)
    check_input(plan.model, data_set)
    plan = plan.sized_for(data_set)  # a new study's scoring; an old one keeps its own
    if plan.spec.folds > 1:
        check_folds(data_set.y_train, plan.spec.folds)
    owned = storage is None
    if storage is None:
        storage = open_storage(plan.storage)
    try:
        return _search(
            plan, storage, data_set, started, deadline, on_status, poll_interval, on_start
        )
    finally:
        if owned:
            close_storage(storage)


def _search(
    plan: SearchPlan,
    storage: BaseStorage,
    data_set: Dataset,
    started: float,
    deadline: float | None,
    on_status: Callable[[SearchStatus], None] | None,
    poll_interval: float,
    on_start: Callable[[SearchPlan], None] | None = None,
) -> SearchStatus:
    study, kept = create_or_check_study(
        storage,
        plan.name,
        replace(plan.spec, data=data_set.fingerprint()),
        plan.explicit,
        suggest=default_study_name(plan.model, plan.source),
    )
    plan.space.check_study(study.get_trials(deepcopy=False), plan.name, plan.space_file)
    remember_classes(study, data_set.classes)
    plan = replace(plan, spec=kept)  # the study keeps its split and objective
    if plan.portfolio:
        enqueue_portfolio(study, plan.model, plan.space, plan.trials, plan.activation)
    if on_start is not None:
        on_start(plan)
    status = StatusReader(
        study, plan.trials, started, epochs=plan.epochs, pruner=plan.pruner()
    )  # the pruner: a twin that tells the next check
    crashed: list[int] = []
    poller = Poller(status, on_status, poll_interval)
    try:
        if plan.workers == 1:
            run_worker(
                plan, deadline=deadline, job=attach(plan, data_set=data_set, storage=storage)
            )
        else:
            crashed = run_processes(
                run_worker,
                lambda i: (replace(plan, device=plan.worker_device(i)),),
                plan.workers,
                plan.worker_device,
                deadline,
            )
    except Exception as exc:
        if not is_storage_error(exc):
            raise
        reason = redact(failure_reason(exc), plan.storage)
        lost = f"lost the storage {describe_storage(plan.storage)} ({reason})"
        raise SearchError(
            f"{lost}; finished trials are kept: run the same command again to resume"
        ) from None
    finally:
        poller.stop()
    final = status()
    out_of_time = deadline is not None and time.time() >= deadline
    final.timed_out = out_of_time and final.finished < final.target
    if plan.stop_when_flat and final.finished < final.target and not final.timed_out:
        final.stopped = str(study.user_attrs.get(STOPPED_KEY, ""))
    if crashed:
        lost = f"{len(crashed)} worker(s) exited abnormally (exit codes {crashed})"
        if final.finished < final.target and not final.timed_out and not final.stopped:
            left = final.target - final.finished
            raise SearchError(
                f"{lost}; {left} trial(s) remain: run the same command again to finish them"
            )
        final.warnings.append(f"{lost}; the other workers finished their trials")
    if on_status is not None:
        on_status(final)
    return final
