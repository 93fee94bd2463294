"""Serving optuna-dashboard on an eegtune storage."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from eegtune.study import StudyError

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

__all__ = ["check_port", "serve"]


def check_port(host: str, port: int) -> None:
    """Raise :class:`StudyError` with one line when ``host:port`` cannot be listened on."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StudyError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"
            ) from None


def serve(storage: BaseStorage, host: str, port: int) -> None:
    """Run optuna-dashboard until Ctrl-C (bottle returns on Ctrl-C itself)."""
    from optuna_dashboard import run_server

    try:
        run_server(storage, host=host, port=port)
    except KeyboardInterrupt:
        pass
