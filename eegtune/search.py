"""The search: objective, worker loop, parallel workers, heartbeats, interruptions.

``--trials N`` is the study's target, not a per-run count: a worker starts a trial only while
finished (complete or pruned) plus running trials stay below N, so re-running a command after
an interruption, or running it on several machines against one storage, ends with N finished
trials. Each running trial writes a heartbeat into the storage; a trial whose heartbeat stops
(its worker was killed) is marked failed by the next worker, and its configuration is queued
again so that it is retried.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eegtune.errors import EegtuneError
from eegtune.heartbeat import Heartbeat, fail_stale_trials, heartbeat_interval
from eegtune.progress import SearchStatus, snapshot

if TYPE_CHECKING:
    import optuna

__all__ = [
    "DEFAULT_PRUNER",
    "SearchError",
    "SearchSettings",
    "run_search",
]

logger = logging.getLogger(__name__)

DEFAULT_PRUNER = "hyperband"
STUDY_KEYS = ("model", "dataset", "split_seed", "val_fraction")


class SearchError(EegtuneError):
    """The search cannot start, or had to stop (for example after many failures in a row)."""

    exit_code = 1


@dataclass
class SearchSettings:
    """Everything one ``eegtune search`` needs; picklable for worker processes."""

    model: str
    trials: int
    epochs: int = 300
    study_name: str | None = None
    storage: str | None = None
    space: str | None = None
    sampler: str = "tpe"
    pruner: str = DEFAULT_PRUNER
    seed: int = 0
    dataset: str = "bci-iiib"
    data_dir: str = "data"
    offline: bool | None = None
    device: str = "auto"
    val_fraction: float = 0.2
    split_seed: int = 0
    workers: int = 1
    timeout: float | None = None
    max_consecutive_failures: int = 5
    amp: bool = False

    @property
    def name(self) -> str:
        return self.study_name or self.model


# --------------------------------------------------------------------------- study attributes


def prepare_study(settings: SearchSettings, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Create the study, or load it and check that it was made for the same job.

    The study stores the model, dataset and validation split, so that every trial and every
    later worker trains on the same split.
    """
    import optuna

    from eegtune.study import StudyError

    try:
        study = optuna.create_study(
            storage=storage, study_name=settings.name, direction="maximize", load_if_exists=True
        )
    except Exception as exc:  # a storage that broke after it answered
        raise StudyError(f"cannot create study {settings.name!r}: {exc}") from None
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise StudyError(f"study {settings.name!r} minimises; it was not made by eegtune")
    wanted = {
        "model": settings.model,
        "dataset": settings.dataset,
        "split_seed": settings.split_seed,
        "val_fraction": settings.val_fraction,
    }
    stored = {k: study.user_attrs.get(k) for k in STUDY_KEYS}
    if all(v is None for v in stored.values()):
        for key, value in wanted.items():
            study.set_user_attr(key, value)
        return study
    if stored["model"] != settings.model or stored["dataset"] != settings.dataset:
        raise StudyError(
            f"study {settings.name!r} was made for model {stored['model']} on "
            f"{stored['dataset']}; choose another --study name"
        )
    if (stored["split_seed"], stored["val_fraction"]) != (
        settings.split_seed,
        settings.val_fraction,
    ):
        logger.warning(
            "study %r keeps its validation split (split seed %s, fraction %s)",
            settings.name,
            stored["split_seed"],
            stored["val_fraction"],
        )
        settings.split_seed = int(stored["split_seed"])
        settings.val_fraction = float(stored["val_fraction"])
    return study


# --------------------------------------------------------------------------- one worker


@dataclass
class _Job:
    """What a worker loads once and reuses for every trial."""

    settings: SearchSettings
    study: Any
    space: Any
    data: tuple[Any, Any, Any, Any]
    device: Any
    model_kwargs: dict[str, int]


def _attach(
    settings: SearchSettings, worker_index: int, data_set: Any = None, storage: Any = None
) -> _Job:
    from eegtune.data import load_dataset
    from eegtune.space import load_space
    from eegtune.study import load_study, make_pruner, make_sampler, open_storage, quiet_optuna
    from eegtune.training import resolve_device

    quiet_optuna()
    space = load_space(settings.model, settings.space)
    device = resolve_device(_worker_device(settings.device, worker_index))
    if data_set is None:
        data_set = load_dataset(settings.dataset, settings.data_dir, offline=settings.offline)
    storage = storage if storage is not None else open_storage(settings.storage)
    sampler_seed = settings.seed + worker_index if settings.seed is not None else None
    study = load_study(
        storage,
        settings.name,
        sampler=make_sampler(settings.sampler, sampler_seed),
        pruner=make_pruner(settings.pruner, settings.epochs),
    )
    return _Job(
        settings=settings,
        study=study,
        space=space,
        data=data_set.holdout(settings.val_fraction, settings.split_seed),
        device=device,
        model_kwargs=data_set.model_kwargs,
    )


def _worker_device(spec: str, worker_index: int) -> str:
    """``auto`` spreads workers over the GPUs; any explicit device is used as given."""
    if spec != "auto":
        return spec
    import torch

    count = torch.cuda.device_count()
    return f"cuda:{worker_index % count}" if count else "cpu"


def _is_surplus(study: optuna.Study, trial: optuna.Trial, target: int) -> bool:
    """Whether trials numbered before ``trial`` already fill the target (a race lost)."""
    from optuna.trial import TrialState

    busy = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    ahead = study.get_trials(deepcopy=False, states=busy)
    return sum(1 for t in ahead if t.number < trial.number) >= target


def _failure_reason(exc: BaseException) -> str:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        torch.cuda.empty_cache()
        return "CUDA out of memory; try a smaller batch size or fewer workers per GPU"
    text = _first_line(exc)
    return text if text == type(exc).__name__ else f"{type(exc).__name__}: {text}"


def run_trial(job: _Job, trial: optuna.Trial, deadline: float | None = None) -> tuple[str, str]:
    """Train one sampled configuration; tell the study the outcome.

    A trial still training when ``deadline`` (a ``time.time()`` value: the search's
    ``--timeout``) passes is cut after its current epoch and recorded as failed, with its
    learning curves so far.

    Returns:
        The trial's final state name (``COMPLETE``, ``PRUNED`` or ``FAIL``) and the reason of
        a failure, divergence or cut (empty otherwise).
    """
    from optuna.trial import TrialState

    from eegtune.models import build_model, count_parameters
    from eegtune.training import fit, set_seed

    study, settings = job.study, job.settings
    config = job.space.sample(trial)
    seed = settings.seed + trial.number
    trial.set_user_attr("seed", seed)
    trial.set_user_attr("device", str(job.device) + (" amp" if settings.amp else ""))
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    started = time.perf_counter()
    timed_out = False

    def on_epoch(record: Any) -> bool:
        nonlocal timed_out
        trial.report(record.val_acc, record.epoch)
        if deadline is not None and record.epoch < settings.epochs and time.time() >= deadline:
            timed_out = True
            return True
        return trial.should_prune()

    try:
        with Heartbeat(study._storage, trial._trial_id, heartbeat_interval()):
            set_seed(seed)
            model = build_model(
                settings.model,
                config["activation"],
                config["dropout"],
                **job.model_kwargs,
            )
            trial.set_user_attr("n_params", count_parameters(model))
            result = fit(
                model,
                *job.data,
                epochs=settings.epochs,
                lr=config["lr"],
                batch_size=config["batch_size"],
                weight_decay=config["weight_decay"],
                seed=seed,
                device=job.device,
                callback=on_epoch,
                amp=settings.amp,
            )
    except KeyboardInterrupt:
        trial.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
        study.tell(trial, state=TrialState.FAIL)
        raise
    except Exception as exc:
        reason = _failure_reason(exc)
        logger.warning("trial %d failed: %s", trial.number, reason)
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=TrialState.FAIL)
        return "FAIL", reason

    history = {
        key: [round(float(getattr(r, key)), 5) for r in result.history]
        for key in ("train_acc", "val_acc", "train_loss", "val_loss")
    }
    trial.set_user_attr("history", history)
    trial.set_user_attr("epochs_trained", len(result.history))
    trial.set_user_attr("best_epoch", result.best_epoch)
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
    study.tell(trial, result.best_val_acc)
    return "COMPLETE", ""


def run_worker(
    settings: SearchSettings,
    worker_index: int = 0,
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

    job = job or _attach(settings, worker_index)
    study = job.study
    grace = 3 * heartbeat_interval()
    failures_in_a_row = 0
    while deadline is None or time.time() < deadline:
        fail_stale_trials(study, grace)
        states = Counter(t.state for t in study.get_trials(deepcopy=False))
        busy = states[TrialState.COMPLETE] + states[TrialState.PRUNED] + states[TrialState.RUNNING]
        if busy >= settings.trials:
            return
        trial = study.ask()
        if _is_surplus(study, trial, settings.trials):
            trial.set_user_attr("fail_reason", "surplus: other workers already filled the target")
            study.tell(trial, state=TrialState.FAIL)
            return
        outcome, reason = run_trial(job, trial, deadline)
        if deadline is not None and time.time() >= deadline:
            return  # a trial cut by the deadline is not a failure streak
        failures_in_a_row = failures_in_a_row + 1 if outcome == "FAIL" else 0
        if failures_in_a_row >= settings.max_consecutive_failures:
            raise SearchError(
                f"{failures_in_a_row} trials failed in a row (last: {reason}); stopping the search"
            )


def _worker_process(
    settings: SearchSettings, worker_index: int, threads: int, deadline: float | None, errors: Any
) -> None:
    """Entry point of a worker process (spawned)."""
    import torch

    def interrupt_once(signum: int, frame: Any) -> None:
        # A terminal's Ctrl-C and the parent's forwarded SIGINT may both arrive: the second
        # must not break off the cleanup that fails the running trial.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt_once)
    torch.set_num_threads(threads)
    try:
        run_worker(settings, worker_index, deadline=deadline)
    except KeyboardInterrupt:
        os._exit(130)
    except EegtuneError as exc:
        errors.put(str(exc))
        os._exit(exc.exit_code)


# --------------------------------------------------------------------------- the whole search


def run_search(
    settings: SearchSettings,
    *,
    on_status: Callable[[SearchStatus], None] | None = None,
    poll_interval: float = 1.0,
    data_set: Any = None,
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
    from eegtune.study import open_storage, quiet_optuna

    quiet_optuna()
    if settings.trials < 1:
        raise SearchError(f"--trials must be at least 1, got {settings.trials}")
    if settings.workers < 1:
        raise SearchError(f"--workers must be at least 1, got {settings.workers}")
    started = time.time()
    deadline = None if settings.timeout is None else started + settings.timeout

    # Validate space, device and data before touching the storage.
    from eegtune.data import load_dataset
    from eegtune.space import load_space
    from eegtune.training import resolve_device

    load_space(settings.model, settings.space)
    resolve_device(settings.device)
    if data_set is None:
        data_set = load_dataset(settings.dataset, settings.data_dir, offline=settings.offline)
    storage = open_storage(settings.storage)
    study = prepare_study(settings, storage)
    finished_at_start = snapshot(study, settings.trials, started, 0).finished

    def status() -> SearchStatus:
        return snapshot(study, settings.trials, started, finished_at_start)

    stop_polling = threading.Event()

    def poll() -> None:
        while not stop_polling.wait(poll_interval):
            try:
                on_status(status())  # type: ignore[misc]
            except Exception as exc:  # a display must never stop the search
                logger.debug("progress update failed: %s", exc)

    poller = threading.Thread(target=poll, daemon=True, name="eegtune-progress")
    if on_status is not None:
        poller.start()
    try:
        if settings.workers == 1:
            job = _attach(settings, 0, data_set=data_set, storage=storage)
            run_worker(settings, 0, deadline=deadline, job=job)
        else:
            _run_processes(settings, deadline)
    except Exception as exc:
        if not _is_storage_error(exc):
            raise
        raise SearchError(
            f"lost the storage {_shown(settings.storage)} ({_first_line(exc)}); finished trials "
            "are kept: run the same command again to resume"
        ) from None
    finally:
        stop_polling.set()
        if poller.is_alive():
            poller.join()
    final = status()
    out_of_time = deadline is not None and time.time() >= deadline
    final.timed_out = out_of_time and final.finished < final.target
    if on_status is not None:
        on_status(final)
    return final


def _is_storage_error(exc: BaseException) -> bool:
    """Whether an exception comes from the storage (a database or Redis going away, a disk)."""
    import optuna

    if isinstance(exc, OSError | optuna.exceptions.StorageInternalError):
        return True
    return type(exc).__module__.split(".")[0] in (
        "sqlalchemy",
        "redis",
        "psycopg",
        "psycopg2",
        "pymysql",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _shown(storage: str | None) -> str:
    from eegtune.study import describe_storage

    return describe_storage(storage)


def _stop_workers(procs: list[Any], grace: float = 2.0, patience: float = 30.0) -> None:
    """Interrupt workers so that each fails its running trial and exits.

    A Ctrl-C in a terminal reaches the workers too; a SIGINT sent to this process alone does
    not, so after a short grace the signal is forwarded to the workers still running. Workers
    that do not stop within ``patience`` seconds are terminated (their trials are then failed
    by the heartbeat check of the next run).
    """
    deadline = time.time() + grace
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.time()))
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, signal.SIGINT)
    deadline = time.time() + patience
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.time()))
        if proc.is_alive():
            proc.terminate()


def _run_processes(settings: SearchSettings, deadline: float | None) -> None:
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // settings.workers)
    procs = [
        ctx.Process(
            target=_worker_process,
            args=(settings, i, threads, deadline, errors),
            name=f"eegtune-worker-{i}",
        )
        for i in range(settings.workers)
    ]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        _stop_workers(procs)
        raise
    messages = []
    while not errors.empty():
        messages.append(errors.get())
    if messages:
        raise SearchError(messages[0])
    crashed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if crashed:
        raise SearchError(
            f"{len(crashed)} worker(s) exited abnormally (exit codes {crashed}); "
            "run the same command again to finish the remaining trials"
        )
