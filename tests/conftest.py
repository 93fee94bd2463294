"""Shared fixtures: lab-format data folders and a local HTTP server for fetch tests."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from eegtune.data import FILES, make_raw_synthetic

LAB_TRIALS = 540


def write_lab_file(path: Path, signal: np.ndarray, label: np.ndarray) -> None:
    """Write a file the way the lab's are: an uncompressed np.savez with signal and label."""
    with path.open("wb") as fh:
        np.savez(fh, signal=signal, label=label)


def make_lab_dir(folder: Path, n_trials: int = LAB_TRIALS, nan_fraction: float = 1e-4) -> Path:
    """Four lab-format files: float64 signal (n, 750, 2) with a few NaNs, float64 labels 1/2."""
    folder.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(FILES):
        signal, label = make_raw_synthetic(n_trials, seed=seed, nan_fraction=nan_fraction)
        write_lab_file(folder / name, signal, label)
    return folder


@pytest.fixture(scope="session")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention folder of four valid lab-format files."""
    return make_lab_dir(tmp_path_factory.mktemp("lab"))


@pytest.fixture
def lab_copy(tmp_path: Path, lab_dir: Path) -> Path:
    """A private copy of the lab folder that a test may damage."""
    target = tmp_path / "data"
    target.mkdir()
    for f in lab_dir.iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    return target


class FileServer:
    """Serves ``routes[path] = bytes`` on 127.0.0.1; paths under /broken/ stop mid-file."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                body = server.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path.startswith("/broken/"):
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unused_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def listing(folder: Path) -> list[str]:
    """Every file below a folder, hidden ones included, as sorted relative paths."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def chromium_dom(url: str, budget_ms: int = 15000) -> tuple[str, str]:
    """Render ``url`` in headless Chromium after its scripts ran; return (DOM, browser log).

    Skips outside CI when Chromium is not installed (``.ci/run`` installs it).
    """
    import os
    import shutil
    import subprocess
    import tempfile

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run should have installed it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                f"--virtual-time-budget={budget_ms}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    return out.stdout, out.stderr
