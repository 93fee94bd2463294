"""Serving optuna-dashboard on an eegtune storage."""

from __future__ import annotations

import socket
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from eegtune.errors import ServeError

if TYPE_CHECKING:
    from optuna.artifacts import FileSystemArtifactStore
    from optuna.storages import BaseStorage

__all__ = ["check_port", "serve"]


def check_port(host: str, port: int) -> None:
    """Raise :class:`ServeError` with one line when ``host:port`` cannot be listened on.

    The probe binds as the server will, with ``SO_REUSEADDR``: the connections a browser
    left in TIME-WAIT after the last run do not block a restart on the same port.
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServeError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"
            ) from None


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass


def serve(
    storage: BaseStorage,
    host: str,
    port: int,
    *,
    access_log: bool = False,
    artifacts: FileSystemArtifactStore | None = None,
) -> None:
    """Serve optuna-dashboard's WSGI app until Ctrl-C (with the studies' ``artifacts``: the
    evaluated weights); one line per request with ``access_log``."""
    from optuna_dashboard import wsgi

    handler = WSGIRequestHandler if access_log else _QuietHandler
    app = wsgi(storage, artifact_store=artifacts)
    with make_server(host, port, app, server_class=_Server, handler_class=handler) as server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
