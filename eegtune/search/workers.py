"""Worker processes, their signals, and heartbeats of running trials.

Heartbeats: Optuna's own heartbeat exists only for RDB storages; this one works with every
storage, journal files and Redis included. A thread stamps the running trial's system
attribute ``eegtune:heartbeat`` with the time, and a worker that finds a running trial whose
stamp is older than the grace period marks it failed and queues its parameters again, so the
configuration is retried.

Processes: ``--workers K`` spawns K processes that each run the worker loop they are given
(:func:`eegtune.search.run_worker`) against the same storage. Each applies the process-wide
training settings itself, as an entry point should, and sends its one-line error back.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from eegtune import signals
from eegtune.device import configure_process, resolve_device
from eegtune.errors import ConfigError, EegtuneError, WorkerError
from eegtune.search.study import trial_id

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage

__all__ = [
    "HEARTBEAT_KEY",
    "Heartbeat",
    "fail_stale_trials",
    "heartbeat_interval",
    "run_processes",
    "worker_device",
    "worker_label",
]

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "eegtune:heartbeat"


def heartbeat_interval() -> float:
    """Seconds between heartbeats (``$EEGTUNE_HEARTBEAT_INTERVAL``, default 10).

    Raises:
        ConfigError: when the variable is not a positive number.
    """
    raw = os.environ.get("EEGTUNE_HEARTBEAT_INTERVAL", "10")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0.05 <= seconds <= 3600:  # beyond an hour a dead worker would hold its trial for hours
        raise ConfigError(
            f"EEGTUNE_HEARTBEAT_INTERVAL must be a number of seconds from 0.05 to 3600, got {raw!r}"
        )
    return seconds


class Heartbeat:
    """A thread that stamps a running trial with the time every ``interval`` seconds."""

    def __init__(self, storage: BaseStorage, trial_id: int, interval: float) -> None:
        self._storage, self._trial_id, self._interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="eegtune-heartbeat")

    def _beat(self) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            self._storage.set_trial_system_attr(self._trial_id, HEARTBEAT_KEY, time.time())
        except UpdateFinishedTrialError:
            self._stop.set()  # failed by another worker while this one was paused
        except Exception as exc:  # a storage hiccup must not kill training
            logger.warning("heartbeat failed: %s", exc)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._beat()

    def __enter__(self) -> Heartbeat:
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def worker_label() -> str:
    """``host:pid`` of this process, as running trials record it (user attribute ``worker``)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_gone(pid: int) -> bool:
    """Whether process ``pid`` of this machine has exited (a zombie counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def _lost_reason(trial: optuna.trial.FrozenTrial, now: float, grace: float) -> str | None:
    """Why a running trial's worker is known to be gone, or None while it may be alive."""
    host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid():
        if _process_gone(int(pid)):
            return f"worker process {pid} on this machine is gone"
    start = trial.datetime_start.timestamp() if trial.datetime_start else now
    last = float(trial.system_attrs.get(HEARTBEAT_KEY, start))
    if now - last > grace:
        return f"no heartbeat for {now - last:.0f} s (worker died)"
    return None


def fail_stale_trials(study: optuna.Study, storage: BaseStorage, grace: float) -> list[int]:
    """Fail running trials whose worker is gone and queue a retry of each.

    A worker is gone when its process on this machine has exited (known at once), or when
    its heartbeat is older than ``grace`` seconds (a worker on another machine).

    Returns:
        Numbers of the trials this call failed.
    """
    import optuna
    from optuna.trial import TrialState

    failed = []
    now = time.time()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = _lost_reason(trial, now, grace)
        if reason is None:
            continue
        tid = trial_id(storage, study, trial.number)
        try:
            storage.set_trial_user_attr(tid, "fail_reason", reason)
            if not storage.set_trial_state_values(tid, state=TrialState.FAIL):
                continue
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
            continue  # another worker got there first
        # compare's marks go with the retry: the lab's settings stay the baseline, a warm-start
        # configuration keeps its source, a portfolio trial its place (none is queued again)
        marks = {k: v for k, v in trial.user_attrs.items() if k in RETRY_MARKS}
        retry = {"retry_of": trial.number, **marks}
        study.enqueue_trial(trial.params, user_attrs=retry)
        failed.append(trial.number)
        logger.warning("trial %d lost its worker; failed it and queued a retry", trial.number)
    return failed


RETRY_MARKS = ("baseline", "warm_start", "portfolio")
"""User attributes that say where a trial's configuration came from: its retry keeps them."""


class ErrorQueue(Protocol):
    def put(self, obj: tuple[int, str]) -> None: ...

    def close(self) -> None: ...

    def join_thread(self) -> None: ...


def _worker_main(
    target: Callable[..., None],
    args: tuple[object, ...],
    threads: int,
    device: str,
    deadline: float | None,
    errors: ErrorQueue,
    parent_pid: int,
) -> None:
    """Entry point of a worker process (spawned): set up the process, run ``target``.

    The worker stops like its parent on SIGINT, SIGTERM and SIGHUP, and gets SIGTERM when
    the parent dies by any signal (SIGKILL included), so no orphan trains on.
    """
    code = 0
    try:
        signals.install()
        signals.log_to_stderr()
        signals.die_with_parent(parent_pid)
        import torch

        torch.set_num_threads(threads)
        configure_process(resolve_device(device))  # process-wide settings, set at the entry
        target(*args, deadline=deadline)
    except KeyboardInterrupt as exc:
        code = signals.exit_code(exc)
    except EegtuneError as exc:
        errors.put((exc.exit_code, str(exc)))
        code = exc.exit_code
    # Flush the queue before leaving: os._exit skips the feeder thread that sends it.
    errors.close()
    errors.join_thread()
    os._exit(code)


def worker_device(spec: str, worker_index: int) -> str:
    """``auto`` spreads workers over the GPUs; any explicit device is used as given."""
    if spec != "auto":
        return spec
    import torch

    count = torch.cuda.device_count()
    return f"cuda:{worker_index % count}" if count else "cpu"


def _stop(
    procs: Sequence[multiprocessing.process.BaseProcess],
    grace: float,
    patience: float,
    signum: int = signal.SIGINT,
) -> None:
    """Interrupt workers so that each fails its running trial and exits.

    A Ctrl-C in a terminal reaches the workers too; a signal sent to this process alone does
    not, so after a short grace the same signal is forwarded to the workers still running. Workers
    that do not stop within ``patience`` seconds are terminated (their trials are then failed
    by the heartbeat check of the next run).
    """
    deadline = time.time() + grace
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.time()))
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, signum)
    deadline = time.time() + patience
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.time()))
        if proc.is_alive():
            proc.terminate()


def run_processes(
    target: Callable[..., None],
    args_of: Callable[[int], tuple[object, ...]],
    workers: int,
    device_of: Callable[[int], str],
    deadline: float | None,
) -> list[int]:
    """Run ``target(*args_of(i), deadline=deadline)`` in ``workers`` spawned processes.

    ``target`` must be a module-level function (it is pickled). The CPU cores are divided
    among the workers; worker ``i`` trains on ``device_of(i)``.

    Returns:
        The exit codes of workers that died without a message of their own (killed, for
        example); the caller decides whether that matters.

    Raises:
        WorkerError: with the first worker's own message, word for word.
            ``KeyboardInterrupt`` after the workers stopped.
    """
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // workers)
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(
                target,
                args_of(i),
                threads,
                device_of(i),
                deadline,
                errors,
                os.getpid(),
            ),  # fmt: skip
            name=f"eegtune-worker-{i}",
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, signals.Interrupted) else signal.SIGINT
        _stop(procs, grace=2.0, patience=30.0, signum=signum)
        raise
    messages = []
    while not errors.empty():
        messages.append(errors.get())
    if messages:
        code, message = messages[0]
        raise WorkerError(message, exit_code=code)
    return [p.exitcode for p in procs if p.exitcode not in (0, None)]
