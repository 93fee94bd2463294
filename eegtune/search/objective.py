"""One trial: a worker's loaded job, training one sampled configuration, telling the study."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from eegtune.data.loading import load_dataset
from eegtune.device import training_failure
from eegtune.models.networks import count_parameters
from eegtune.search.plan import SearchPlan
from eegtune.search.storages import open_storage
from eegtune.search.study import load_study, quiet_optuna, trial_id
from eegtune.search.workers import Heartbeat, heartbeat_interval, worker_label
from eegtune.signals import interrupt_reason
from eegtune.training import FitResult, train_configuration, train_folds

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from torch import nn

    from eegtune.data.dataset import Dataset, ModelShape, Split
    from eegtune.training import EpochRecord

__all__ = ["Job", "attach", "make_splits", "run_trial"]

logger = logging.getLogger(__name__)


@dataclass
class Job:
    """What a worker loads once and reuses for every trial."""

    plan: SearchPlan
    storage: BaseStorage
    study: optuna.Study
    splits: list[Split]  # one hold-out, or the K folds of --folds K
    model_kwargs: ModelShape

    @property
    def split_hash(self) -> str:
        """A digest of every validation set, recorded with each trial: trials of one study
        (re-runs, other workers, other machines) are scored on the same trials."""
        digest = hashlib.blake2b(digest_size=8)
        for split in self.splits:
            digest.update(np.ascontiguousarray(split.x_val).data)
            digest.update(np.ascontiguousarray(split.y_val).data)
        return digest.hexdigest()


def make_splits(plan: SearchPlan, data_set: Dataset) -> list[Split]:
    """What the plan's trials are scored on: ``--folds K`` folds, or one hold-out."""
    spec = plan.spec
    if spec.folds > 1:
        return data_set.folds(spec.folds, spec.split_seed)
    return [data_set.holdout(spec.val_fraction, spec.split_seed)]


def attach(
    plan: SearchPlan,
    *,
    data_set: Dataset | None = None,
    storage: BaseStorage | None = None,
) -> Job:
    """A worker's job: the study loaded with the plan's sampler and pruner, and the split.

    ``data_set`` and ``storage`` are what the calling process already holds (a worker
    process loads and opens its own).
    """
    quiet_optuna()
    if data_set is None:
        data_set = load_dataset(plan.source, plan.data_dir, offline=plan.offline)
    storage = storage if storage is not None else open_storage(plan.storage)
    study = load_study(storage, plan.name, sampler=plan.sampler(), pruner=plan.pruner())
    return Job(
        plan=plan,
        storage=storage,
        study=study,
        splits=make_splits(plan, data_set),
        model_kwargs=data_set.model_kwargs,
    )


def is_surplus(study: optuna.Study, trial: optuna.Trial, target: int) -> bool:
    """Whether trials numbered before ``trial`` already fill the target (a race lost)."""
    from optuna.trial import TrialState

    busy = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    ahead = study.get_trials(deepcopy=False, states=busy)
    return sum(1 for t in ahead if t.number < trial.number) >= target


def baseline_waiting(study: optuna.Study) -> bool:
    """Whether the lab's settings (compare's baseline) wait in the queue to be trained."""
    from optuna.trial import TrialState

    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return any(t.user_attrs.get("baseline") for t in waiting)


def _train(
    job: Job,
    config: dict[str, object],
    seed: int,
    on_epoch: Callable[[EpochRecord], bool],
    trial: optuna.Trial,
) -> tuple[FitResult, list[FitResult]]:
    """Train the configuration on the job's hold-out, or on every fold in lockstep (the
    pruner then sees the fold-mean curve). Returns the scored result and the folds' own."""
    plan = job.plan

    def count(net: nn.Module) -> None:
        trial.set_user_attr("n_params", count_parameters(net))

    if len(job.splits) == 1:
        _, result = train_configuration(
            plan.model, config, *job.splits[0], shape=job.model_kwargs, epochs=plan.epochs,
            seed=seed, device=plan.device, callback=on_epoch, amp=plan.amp, on_model=count,
        )  # fmt: skip
        return result, []
    folds, mean = train_folds(
        plan.model, config, list(job.splits), shape=job.model_kwargs, epochs=plan.epochs,
        seed=seed, device=plan.device, callback=on_epoch, amp=plan.amp, on_model=count,
    )  # fmt: skip
    return mean, folds


def run_trial(job: Job, trial: optuna.Trial, deadline: float | None = None) -> tuple[str, str]:
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


def _train_trial(job: Job, trial: optuna.Trial, deadline: float | None = None) -> tuple[str, str]:
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

    study, plan = job.study, job.plan
    config = plan.space.sample(trial)
    seed = plan.seed + trial.number
    trial.set_user_attr("seed", seed)
    trial.set_user_attr("device", plan.device + (" amp" if plan.amp else ""))
    trial.set_user_attr("worker", worker_label())
    started = time.perf_counter()
    timed_out = False
    baseline = bool(trial.user_attrs.get("baseline"))  # the lab's settings: never pruned

    def on_epoch(record: EpochRecord) -> bool:
        nonlocal timed_out
        if record.epoch >= plan.epochs:
            return False  # the last epoch: the trial completes whatever a pruner would say
        trial.report(record.val_acc or 0.0, record.epoch)
        if deadline is not None and time.time() >= deadline:
            timed_out = True
            return True
        return not baseline and trial.should_prune()

    try:
        tid = trial_id(job.storage, study, trial.number)
        trial.set_user_attr("split_hash", job.split_hash)
        with Heartbeat(job.storage, tid, heartbeat_interval()):
            result, folds = _train(job, config, seed, on_epoch, trial)
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

    if result.history and result.history[-1].epoch == plan.epochs:
        last = result.history[-1]  # reported here: the callback skipped the last epoch
        trial.report(last.val_acc or 0.0, last.epoch)
    history = {
        key: [round(float(getattr(r, key) or 0.0), 5) for r in result.history]
        for key in ("train_acc", "val_acc", "train_loss", "val_loss")
    }
    trial.set_user_attr("history", history)
    trial.set_user_attr("epochs_trained", len(result.history))
    value, best_epoch = result.score(plan.spec.objective)
    trial.set_user_attr("best_epoch", best_epoch)
    if folds and best_epoch is not None:  # each fold's score at the fold-mean's epoch
        scores = [fold.score_at(plan.spec.objective, best_epoch) for fold in folds]
        trial.set_user_attr("fold_values", [round(v or 0.0, 5) for v in scores])
        trial.set_user_attr(
            "fold_val_acc", [[round(r.val_acc or 0.0, 5) for r in f.history] for f in folds]
        )
    trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
    trial.set_user_attr("status", "timeout" if timed_out else result.status)
    if timed_out:
        reason = f"cut by --timeout after epoch {len(result.history)} of {plan.epochs}"
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
