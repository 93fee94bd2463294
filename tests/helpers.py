"""Helpers shared by the tests: lab-format data, a local HTTP server, Chromium, storages,
search processes and the CLI. Fixtures live in conftest.py and use these."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from eegtune.cli.app import app
from eegtune.data.bciiiib import FILES
from eegtune.data.synthetic import make_raw_synthetic
from eegtune.errors import StudyError
from eegtune.search.plan import SearchPlan, plan_search
from eegtune.search.storages import open_storage

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


def damage(kind: str, path: Path) -> str:
    """Damage one file in a given way; return a fragment the error message must contain."""
    signal, label = make_raw_synthetic(10, seed=1)
    if kind == "missing":
        path.unlink()
        return "file not found"
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
        return "not a readable npz"
    if kind == "not-npz":
        path.write_text("hello")
        return "not a readable npz"
    if kind == "missing-key":
        with path.open("wb") as fh:
            np.savez(fh, signal=signal)
        return "missing key(s) label"
    if kind == "wrong-shape":
        write_lab_file(path, signal[:, :700, :], label)
        return "signal has shape (10, 700, 2)"
    if kind == "wrong-dtype":
        write_lab_file(path, signal.astype(np.int16), label)
        return "signal has dtype int16"
    if kind == "bad-labels":
        write_lab_file(path, signal, label + 1)
        return "labels must be 1 or 2, found 3"
    if kind == "inf":
        signal[3, 100, 0] = np.inf
        write_lab_file(path, signal, label)
        return "signal holds 1 infinite value(s)"
    if kind == "one-class":
        write_lab_file(path, signal, np.ones_like(label))
        return "every trial has label 1; a file needs both classes"
    if kind == "nan-channel":
        signal[:, :, 1] = np.nan
        write_lab_file(path, signal, label)
        return "channel 1 is entirely NaN"
    raise AssertionError(kind)


BAD_KINDS = [
    "missing",
    "truncated",
    "not-npz",
    "missing-key",
    "wrong-shape",
    "wrong-dtype",
    "bad-labels",
    "nan-channel",
    "inf",
    "one-class",
]


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


def wait_for(condition, timeout: float, what: str, every: float = 0.2) -> None:
    """Poll ``condition()`` until it holds; fail the test naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    pytest.fail(f"{what} did not happen within {timeout} s")


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


def chromium_exe() -> str:
    """The Chromium binary; skips outside CI when it is not installed (``.ci/run`` installs it)."""
    import shutil

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run should have installed it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return exe


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium_screenshot(url: str, png: Path, size: tuple[int, int], budget_ms: int = 15000) -> None:
    """Save a screenshot of ``url`` rendered in a window of ``size`` (width, height)."""
    import tempfile

    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium_exe(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={budget_ms}",
             f"--screenshot={png}", url],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip


def chromium_dom(
    url: str, budget_ms: int = 15000, size: tuple[int, int] = (1280, 900)
) -> tuple[str, str]:
    """Render ``url`` in headless Chromium after its scripts ran; return (DOM, browser log).

    Skips outside CI when Chromium is not installed (``.ci/run`` installs it).
    """
    import tempfile

    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [
                chromium_exe(),
                *CHROMIUM_FLAGS,
                f"--window-size={size[0]},{size[1]}",
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


POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


MYSQL = "mysql://root@127.0.0.1:3306/test"


REDIS = "redis://127.0.0.1:6379/0"


def serve_synthetic(monkeypatch: pytest.MonkeyPatch, data) -> None:
    """Make ``--dataset synthetic`` load ``data`` in this process (commands run with
    ``CliRunner``), so that a command works on the data a test's study was made on: a study
    refuses other data."""
    import eegtune.data.loading

    real = eegtune.data.loading.load_dataset

    def load(source, *args, **kwargs):
        name = source if isinstance(source, str) else source.dataset
        return data if name == "synthetic" else real(source, *args, **kwargs)

    monkeypatch.setattr(eegtune.data.loading, "load_dataset", load)


def trials_of(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(storage)).get_trials()


def count(trials, *states) -> int:
    return sum(1 for t in trials if t.state in states)


def finished(trials) -> int:
    return count(trials, TrialState.COMPLETE, TrialState.PRUNED)


def require_service(url: str) -> None:
    """Skip (outside CI) or fail (in CI) when a database service does not answer."""
    try:
        open_storage(url)
    except StudyError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"service needed in CI is not reachable: {exc}")
        pytest.skip(f"no server answers at {url}: {exc}")


def wait_until_training(journal: str, proc: subprocess.Popen, n: int = 1, timeout: float = 120):
    """Wait until ``n`` trials are RUNNING and have reported an epoch; return them.

    Fails the test (after killing ``proc``) when that does not happen in time, so a signal is
    never sent to a search that had not started training.
    """
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.5)
        if Path(journal).exists():
            try:
                trials = trials_of(journal, "eegnet")
            except KeyError:  # the journal exists, the study is not written yet
                continue
            running = [t for t in trials if t.state == TrialState.RUNNING]
            if len(running) >= n and all(t.intermediate_values for t in running[:n]):
                return running[:n]
    proc.kill()
    pytest.fail(f"no {n} trial(s) training after {timeout} s")


def search_cmd(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "eegtune",
        "search",
        "--model",
        "eegnet",
        "--dataset",
        "synthetic",
        "--device",
        "cpu",
        "--study",
        "eegnet",
        *args,
    ]


runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


def assert_one_line_error(result, fragment: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], result.output
    assert "Traceback" not in result.output


def search_plan(storage: str, **kwargs) -> SearchPlan:
    """A small search plan: one 1-epoch EEGNet trial on synthetic data, on the CPU, unpruned,
    in study ``eegnet``, without the portfolio (the tests that need it ask for it: its trials
    would stand in for the sampled ones the others count); ``kwargs`` override any of
    :func:`eegtune.search.plan.plan_search`'s arguments."""
    base = dict(model="eegnet", trials=1, epochs=1, storage=storage, dataset="synthetic",
                device="cpu", pruner="none", study_name="eegnet", portfolio=False)  # fmt: skip
    return plan_search(**(base | kwargs))
