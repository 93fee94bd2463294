"""Heartbeats of running trials, and failing the trials whose worker died.

Optuna's own heartbeat exists only for RDB storages; this one works with every storage,
journal files and Redis included: a thread stamps the running trial's system attribute
``eegtune:heartbeat`` with the time, and a worker that finds a running trial whose stamp is
older than the grace period marks it failed and queues its parameters again, so the
configuration is retried.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

__all__ = ["HEARTBEAT_KEY", "Heartbeat", "fail_stale_trials", "heartbeat_interval"]

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "eegtune:heartbeat"


def heartbeat_interval() -> float:
    """Seconds between heartbeats (``$EEGTUNE_HEARTBEAT_INTERVAL``, default 10)."""
    return float(os.environ.get("EEGTUNE_HEARTBEAT_INTERVAL", "10"))


class Heartbeat:
    """A thread that stamps a running trial with the time every ``interval`` seconds."""

    def __init__(self, storage: Any, trial_id: int, interval: float) -> None:
        self._storage, self._trial_id, self._interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="eegtune-heartbeat")

    def _beat(self) -> None:
        try:
            self._storage.set_trial_system_attr(self._trial_id, HEARTBEAT_KEY, time.time())
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


def fail_stale_trials(study: optuna.Study, grace: float) -> list[int]:
    """Fail running trials whose heartbeat is older than ``grace`` seconds; queue a retry.

    Returns:
        Numbers of the trials this call failed.
    """
    import optuna
    from optuna.trial import TrialState

    storage = study._storage
    failed = []
    now = time.time()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        start = trial.datetime_start.timestamp() if trial.datetime_start else now
        last = float(trial.system_attrs.get(HEARTBEAT_KEY, start))
        if now - last <= grace:
            continue
        try:
            storage.set_trial_user_attr(
                trial._trial_id, "fail_reason", f"no heartbeat for {now - last:.0f} s (worker died)"
            )
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                continue
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
            continue  # another worker got there first
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        failed.append(trial.number)
        logger.warning("trial %d lost its worker; failed it and queued a retry", trial.number)
    return failed
