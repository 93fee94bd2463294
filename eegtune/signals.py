"""Signals as schedulers send them: SIGTERM and SIGHUP stop work the way Ctrl-C does.

``kill``, ``timeout``, SLURM (``scancel``, a job's time limit), Kubernetes and ``docker stop``
send SIGTERM; a closed terminal or SSH session sends SIGHUP. Each is turned into
:class:`Interrupted`, a ``KeyboardInterrupt``, so every ``except KeyboardInterrupt`` that marks a
running trial failed and keeps finished work handles them too; the exit code is 128 + the
signal's number, as a shell reports a process that a signal stopped.

Handlers are process-wide, so only entry points install them (:func:`install`): the console
script and each worker process, never the library.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from types import FrameType

__all__ = [
    "HANDLED",
    "Interrupted",
    "check",
    "die_with_parent",
    "exit_code",
    "install",
    "interrupt_reason",
    "log_to_stderr",
]

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(exc: BaseException) -> int:
    """128 + the signal's number (130 for Ctrl-C and a plain ``KeyboardInterrupt``)."""
    return 128 + (exc.signum if isinstance(exc, Interrupted) else signal.SIGINT)


def interrupt_reason(exc: BaseException) -> str:
    """How a trial's ``fail_reason`` names the interruption."""
    if isinstance(exc, Interrupted) and exc.signum != signal.SIGINT:
        return f"interrupted ({signal.Signals(exc.signum).name})"
    return "interrupted (Ctrl-C)"


_received: list[int] = []  # the stop signal this process got, once one arrived


def _raise_once(signum: int, frame: FrameType | None) -> None:
    # A terminal's Ctrl-C and a forwarded signal may both arrive, or a scheduler may send
    # SIGTERM twice: the second must not break off the cleanup that fails the running trial.
    for other in HANDLED:
        signal.signal(other, signal.SIG_IGN)
    _received.append(signum)
    raise Interrupted(signum)


def check() -> None:
    """Raise :class:`Interrupted` again when a stop signal arrived and work still goes on.

    Python drops an exception raised while a finaliser (``__del__``, a weakref callback) runs,
    and the handler above ignores later signals: a signal that landed there would leave the
    process training on, deaf to Ctrl-C and SIGTERM. Training calls this once per epoch.
    """
    if _received:
        raise Interrupted(_received[0])


def install() -> None:
    """Turn SIGINT, SIGTERM and SIGHUP into :class:`Interrupted` in this (main) thread."""
    for signum in HANDLED:
        signal.signal(signum, _raise_once)


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to send this process SIGTERM when its parent dies, SIGKILL included.

    A worker of ``--workers K`` must not train on as an orphan. Where ``prctl`` is missing
    (not Linux) nothing is set; the parent's own signal handling still stops its workers.
    If the parent died before the request was made, this process stops at once.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        raise Interrupted(signal.SIGTERM)


class _LevelPrefix(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def log_to_stderr() -> None:
    """eegtune's warnings as ``warning: ...`` lines on stderr (an entry point's choice)."""
    root = logging.getLogger("eegtune")
    if not any(getattr(h, "_eegtune", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(_LevelPrefix())
        handler._eegtune = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
