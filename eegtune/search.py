"""The search: settings, the objective (one trial) and the worker loop, then the whole run.

``--trials N`` is the study's target, not a per-run count: a worker starts a trial only while
finished (complete or pruned) plus running trials stay below N, so re-running a command after
an interruption, or running it on several machines against one storage, ends with N finished
trials. Study creation lives in :mod:`eegtune.study`, worker processes and heartbeats in
:mod:`eegtune.workers`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from eegtune.errors import ConfigError, EegtuneError
from eegtune.names import (
    ACTIVATIONS,
    DEFAULT_OBJECTIVE,
    DEFAULT_PRUNER,
    DEFAULT_SAMPLER,
    LAB_DATASET,
    OBJECTIVES,
)
from eegtune.progress import Poller, SearchStatus, StatusReader
from eegtune.signals import interrupt_reason
from eegtune.workers import (
    Heartbeat,
    fail_stale_trials,
    heartbeat_interval,
    run_processes,
    worker_device,
    worker_label,
)

if TYPE_CHECKING:
    import optuna
    import torch
    from optuna.storages import BaseStorage

    from eegtune.data import Dataset, ModelShape, Split
    from eegtune.sources import DataSource
    from eegtune.space import SearchSpace
    from eegtune.study import StudyKeys
    from eegtune.training import EpochRecord

__all__ = [
    "SearchError",
    "SearchSettings",
    "check_settings",
    "run_search",
    "run_trial",
    "run_worker",
]

logger = logging.getLogger(__name__)


MAX_SEED = 2**32 - 1
"""The largest seed numpy and the samplers accept."""


class SearchError(EegtuneError):
    """The search cannot start, or had to stop (for example after many failures in a row)."""

    exit_code = 1


@dataclass(frozen=True)
class SearchSettings:
    """Everything one ``eegtune search`` needs; picklable for worker processes."""

    model: str
    trials: int
    epochs: int = 300
    study_name: str | None = None
    storage: str | None = None
    space: str | None = None
    sampler: str = DEFAULT_SAMPLER
    pruner: str = DEFAULT_PRUNER
    seed: int = 0
    dataset: str = LAB_DATASET  # bci-iiib, synthetic, npz:DIR or moabb:NAME
    data_dir: str = "data"
    subjects: tuple[str, ...] = ()  # restrict the study to these subjects
    preprocessing: tuple[tuple[str, float | None], ...] = ()  # moabb: datasets only
    offline: bool | None = None
    device: str = "auto"
    val_fraction: float = 0.2
    split_seed: int = 0
    workers: int = 1
    timeout: float | None = None
    objective: str = DEFAULT_OBJECTIVE
    activation: str | None = None  # fixes the activation (a cell of `eegtune compare`)
    max_consecutive_failures: int = 5
    amp: bool = False

    @property
    def name(self) -> str:
        return self.study_name or self.model

    @property
    def source(self) -> DataSource:
        """The dataset, subjects and preprocessing, as the study remembers them."""
        from eegtune.sources import DataSource

        return DataSource(self.dataset, self.subjects, self.preprocessing)

    def study_keys(self) -> StudyKeys:
        """What the study must remember so that every worker and re-run does the same job."""
        from eegtune.study import StudyKeys

        return StudyKeys(
            self.model,
            self.dataset,
            self.split_seed,
            self.val_fraction,
            self.objective,
            list(self.subjects),
            dict(self.preprocessing),
        )


def check_settings(settings: SearchSettings) -> None:
    """Check everything about ``settings`` that needs neither data nor storage.

    Raises:
        SearchError, SpaceError, ConfigError, StudyError: one line saying what is wrong.
    """
    from eegtune.samplers import make_pruner, make_sampler
    from eegtune.space import load_space
    from eegtune.training import resolve_device

    if settings.trials < 1:
        raise SearchError(f"--trials must be at least 1, got {settings.trials}")
    if settings.workers < 1:
        raise SearchError(f"--workers must be at least 1, got {settings.workers}")
    if not 0 <= settings.seed <= MAX_SEED - settings.trials:  # trial seeds: seed + number
        raise ConfigError(
            f"--seed must lie in 0..{MAX_SEED - settings.trials} (each trial trains with "
            f"seed + its number, at most {MAX_SEED}), got {settings.seed}"
        )
    if settings.epochs < 1:
        raise SearchError(f"--epochs must be at least 1, got {settings.epochs}")
    if settings.objective not in OBJECTIVES:
        raise SearchError(
            f"unknown objective {settings.objective!r}; choose one of: {', '.join(OBJECTIVES)}"
        )
    if settings.activation is not None and settings.activation not in ACTIVATIONS:
        raise SearchError(
            f"unknown activation {settings.activation!r}; choose one of: {', '.join(ACTIVATIONS)}"
        )
    # built here, not only looked up: a sampler that cannot be made (gp without scipy) fails
    # before any study exists
    make_sampler(settings.sampler, settings.seed)
    make_pruner(settings.pruner, settings.epochs)
    load_space(settings.model, settings.space)
    resolve_device(settings.device)
    heartbeat_interval()  # a bad $EEGTUNE_HEARTBEAT_INTERVAL fails here, not in a worker


# --------------------------------------------------------------------------- one worker


@dataclass
class _Job:
    """What a worker loads once and reuses for every trial."""

    settings: SearchSettings
    storage: BaseStorage
    study: optuna.Study
    space: SearchSpace
    split: Split
    device: torch.device
    model_kwargs: ModelShape


def _attach(
    settings: SearchSettings,
    *,
    data_set: Dataset | None = None,
    storage: BaseStorage | None = None,
) -> _Job:
    from eegtune.data import load_dataset
    from eegtune.samplers import make_pruner, make_sampler
    from eegtune.space import load_space
    from eegtune.storages import open_storage
    from eegtune.study import load_study, quiet_optuna
    from eegtune.training import resolve_device

    quiet_optuna()
    space = load_space(settings.model, settings.space).fixing("activation", settings.activation)
    device = resolve_device(settings.device)
    if data_set is None:
        data_set = load_dataset(settings.source, settings.data_dir, offline=settings.offline)
    storage = storage if storage is not None else open_storage(settings.storage)
    study = load_study(
        storage,
        settings.name,
        sampler=make_sampler(settings.sampler, settings.seed),
        pruner=make_pruner(settings.pruner, settings.epochs),
    )
    return _Job(
        settings=settings,
        storage=storage,
        study=study,
        space=space,
        split=data_set.holdout(settings.val_fraction, settings.split_seed),
        device=device,
        model_kwargs=data_set.model_kwargs,
    )


def _is_surplus(study: optuna.Study, trial: optuna.Trial, target: int) -> bool:
    """Whether trials numbered before ``trial`` already fill the target (a race lost)."""
    from optuna.trial import TrialState

    busy = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    ahead = study.get_trials(deepcopy=False, states=busy)
    return sum(1 for t in ahead if t.number < trial.number) >= target


def _baseline_waiting(study: optuna.Study) -> bool:
    """Whether the lab's settings (compare's baseline) wait in the queue to be trained."""
    from optuna.trial import TrialState

    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return any(t.user_attrs.get("baseline") for t in waiting)


def run_trial(job: _Job, trial: optuna.Trial, deadline: float | None = None) -> tuple[str, str]:
    """Train one sampled configuration; tell the study the outcome (see :func:`_train_trial`).

    A worker that was paused (Ctrl-Z, a sleeping laptop) past the heartbeat grace comes back
    to find its trial failed and retried by another worker: it drops the trial with a
    warning and carries on (outcome ``DROPPED``).
    """
    from optuna.exceptions import UpdateFinishedTrialError

    try:
        return _train_trial(job, trial, deadline)
    except UpdateFinishedTrialError:
        reason = (
            f"trial {trial.number} was failed and retried by another worker while this one "
            "was paused; dropped it"
        )
        logger.warning("%s", reason)
        return "DROPPED", reason


def _train_trial(job: _Job, trial: optuna.Trial, deadline: float | None = None) -> tuple[str, str]:
    """Train one sampled configuration; tell the study the outcome.

    A trial still training when ``deadline`` (a ``time.time()`` value: the search's
    ``--timeout``) passes is cut after its current epoch and recorded as failed, with its
    learning curves so far. A trial that trains all its epochs is never pruned.

    Returns:
        The trial's final state name (``COMPLETE``, ``PRUNED`` or ``FAIL``) and the reason of
        a failure, divergence or cut (empty otherwise).
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    from eegtune.models import build_model, count_parameters
    from eegtune.study import trial_id
    from eegtune.training import fit, set_seed, training_failure

    study, settings = job.study, job.settings
    config = job.space.sample(trial)
    seed = settings.seed + trial.number
    trial.set_user_attr("seed", seed)
    trial.set_user_attr("device", str(job.device) + (" amp" if settings.amp else ""))
    trial.set_user_attr("worker", worker_label())
    started = time.perf_counter()
    timed_out = False
    baseline = bool(trial.user_attrs.get("baseline"))  # the lab's settings: never pruned

    def on_epoch(record: EpochRecord) -> bool:
        nonlocal timed_out
        if record.epoch >= settings.epochs:
            return False  # the last epoch: the trial completes whatever a pruner would say
        trial.report(record.val_acc or 0.0, record.epoch)
        if deadline is not None and time.time() >= deadline:
            timed_out = True
            return True
        return not baseline and trial.should_prune()

    try:
        tid = trial_id(job.storage, study, trial.number)
        with Heartbeat(job.storage, tid, heartbeat_interval()):
            set_seed(seed)
            model = build_model(
                settings.model, config["activation"], config["dropout"], **job.model_kwargs
            )
            trial.set_user_attr("n_params", count_parameters(model))
            result = fit(
                model,
                *job.split,
                epochs=settings.epochs,
                lr=config["lr"],
                batch_size=config["batch_size"],
                weight_decay=config["weight_decay"],
                seed=seed,
                device=job.device,
                callback=on_epoch,
                amp=settings.amp,
            )
    except KeyboardInterrupt as exc:
        try:
            trial.set_user_attr("fail_reason", interrupt_reason(exc))
            study.tell(trial, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            pass  # already failed elsewhere: nothing left to mark
        raise
    except UpdateFinishedTrialError:
        raise  # failed elsewhere while this worker was paused: see run_trial
    except Exception as exc:
        reason = training_failure(exc)
        logger.warning("trial %d failed: %s", trial.number, reason)
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=TrialState.FAIL)
        return "FAIL", reason

    if result.history and result.history[-1].epoch == settings.epochs:
        last = result.history[-1]  # reported here: the callback skipped the last epoch
        trial.report(last.val_acc or 0.0, last.epoch)
    history = {
        key: [round(float(getattr(r, key) or 0.0), 5) for r in result.history]
        for key in ("train_acc", "val_acc", "train_loss", "val_loss")
    }
    trial.set_user_attr("history", history)
    trial.set_user_attr("epochs_trained", len(result.history))
    value, best_epoch = result.score(settings.objective)
    trial.set_user_attr("best_epoch", best_epoch)
    trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
    trial.set_user_attr("status", "timeout" if timed_out else result.status)
    if timed_out:
        reason = f"cut by --timeout after epoch {len(result.history)} of {settings.epochs}"
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=TrialState.FAIL)
        return "FAIL", reason
    if result.status == "diverged":
        trial.set_user_attr("fail_reason", result.message)
        study.tell(trial, state=TrialState.PRUNED)
        return "PRUNED", result.message
    if result.status == "stopped":
        study.tell(trial, state=TrialState.PRUNED)
        return "PRUNED", ""
    study.tell(trial, value)
    return "COMPLETE", ""


def run_worker(
    settings: SearchSettings,
    *,
    deadline: float | None = None,
    job: _Job | None = None,
) -> None:
    """Run trials until the study's target is reached, the deadline passes (cutting the
    running trial), or failures pile up.

    Raises:
        SearchError: after ``max_consecutive_failures`` failed trials in a row.
    """
    from optuna.trial import TrialState

    job = job or _attach(settings)
    study = job.study
    grace = 3 * heartbeat_interval()
    failures_in_a_row = 0
    while deadline is None or time.time() < deadline:
        fail_stale_trials(study, job.storage, grace)
        states = Counter(t.state for t in study.get_trials(deepcopy=False))
        finished = states[TrialState.COMPLETE] + states[TrialState.PRUNED]
        owed = _baseline_waiting(study)  # compare's baseline runs even past the target
        if finished >= settings.trials and not owed:
            return
        if finished + states[TrialState.RUNNING] >= settings.trials and not owed:
            # The rest of the target is running in other workers: wait for them (they may
            # still fail or die, and then this worker takes their place).
            time.sleep(min(1.0, grace / 3))
            continue
        trial = study.ask()
        if not trial.user_attrs.get("baseline") and _is_surplus(study, trial, settings.trials):
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
) -> SearchStatus:
    """Run a search to the study's target with ``settings.workers`` workers.

    Everything that can be wrong with the input (space file, device, data, storage) is checked
    before a study is created, so a bad command leaves nothing behind.

    Args:
        settings: What to search.
        on_status: Called with a fresh :class:`SearchStatus` every ``poll_interval`` seconds
            and once at the end.
        data_set: An already loaded dataset (saves loading it again).

    Returns:
        The final status. ``KeyboardInterrupt`` propagates after workers stopped cleanly.
    """
    from eegtune.data import load_dataset
    from eegtune.models import check_input
    from eegtune.space import load_space
    from eegtune.storages import (
        describe_storage,
        failure_reason,
        is_storage_error,
        open_storage,
        redact,
    )
    from eegtune.study import create_or_check_study, quiet_optuna, remember_classes

    quiet_optuna()
    check_settings(settings)
    started = time.time()
    deadline = None if settings.timeout is None else started + settings.timeout
    if data_set is None:
        data_set = load_dataset(settings.source, settings.data_dir, offline=settings.offline)
    check_input(settings.model, data_set)
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
    from eegtune.samplers import make_pruner

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
                job=_attach(settings, data_set=data_set, storage=storage),
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
