"""eegtune dashboard: optuna-dashboard on the same storage, over HTTP and in Chromium."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eegtune.cli.app import app
from eegtune.data.synthetic import make_synthetic
from eegtune.search.plan import plan_search
from eegtune.search.run import run_search
from tests.helpers import chromium_dom, free_port

runner = CliRunner()


def get_json(url: str, timeout: float = 60.0):
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture(scope="module")
def journal(tmp_path_factory) -> str:
    """A study made by eegtune search itself."""
    path = str(tmp_path_factory.mktemp("dash") / "dash.journal")
    settings = plan_search(
        model="eegnet",
        trials=2,
        epochs=2,
        storage=path,
        study_name="dash-study",
        dataset="synthetic",
        device="cpu",
        pruner="none",
    )
    run_search(settings, data_set=make_synthetic(n_train=120, n_test=8, seed=0))
    return path


def test_dashboard_serves_the_study_and_stops_on_ctrl_c(journal: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "eegtune", "dashboard", "--storage", journal, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        studies = get_json(f"http://127.0.0.1:{port}/api/studies")
        summaries = studies["study_summaries"]
        assert [s["study_name"] for s in summaries] == ["dash-study"]
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{summaries[0]['study_id']}")
        assert len(detail["trials"]) == 2
        assert {p["name"] for p in detail["trials"][0]["params"]} == {
            "activation",
            "dropout",
            "lr",
            "batch_size",
            "weight_decay",
        }
        assert len(detail["trials"][0]["intermediate_values"]) == 2
        assert detail["objective_names"] == ["smoothed validation accuracy (3-epoch mean)"]
        dom, log = chromium_dom(f"http://127.0.0.1:{port}/dashboard/")
        assert "dash-study" in dom, log[-2000:]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in out
    assert proc.returncode == 0, err
    assert "dashboard stopped" in out and "Traceback" not in err
    assert "GET /api" not in out + err  # no access log unless --verbose


def test_evaluated_weights_are_attached_to_the_study_and_served(tmp_path: Path) -> None:
    journal = str(tmp_path / "a.journal")
    searched = runner.invoke(app, ["search", "--model", "eegnet", "--dataset", "synthetic",
                                   "--study", "eegnet", "--trials", "1", "--epochs", "1",
                                   "--device", "cpu", "--storage", journal])  # fmt: skip
    assert searched.exit_code == 0, searched.output
    result = runner.invoke(app, ["evaluate", "--storage", journal, "--seeds", "1", "--device",
                                 "cpu", "--models-dir", str(tmp_path / "m")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"attached to the study in {tmp_path / 'artifacts'}" in result.output
    weights = (tmp_path / "m" / "eegnet" / "best" / "seed0.pt").read_bytes()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "eegtune", "dashboard", "--storage", journal, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        summaries = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
        study_id = summaries[0]["study_id"]
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{study_id}")
        (artifact,) = detail["artifacts"]
        assert artifact["filename"] == "eegnet-best-seed0.pt"
        url = f"http://127.0.0.1:{port}/artifacts/{study_id}/{artifact['artifact_id']}"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.read() == weights  # the very weights evaluate saved
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    again = runner.invoke(app, ["evaluate", "--storage", journal, "--seeds", "1", "--device",
                                "cpu", "--models-dir", str(tmp_path / "m")])  # fmt: skip
    assert again.exit_code == 0  # nothing retrained, nothing attached twice
    assert len(list((tmp_path / "artifacts").iterdir())) == 1


def test_dashboard_port_in_use_is_one_line(journal: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["dashboard", "--storage", journal, "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output


def test_the_dashboard_restarts_at_once_on_a_port_its_last_run_used() -> None:
    """The server closed its side of a browser's connection first, so that connection sits
    in TIME-WAIT on the port, as after a Ctrl-C; the next start must not be refused."""
    from eegtune.cli.dashboard import check_port

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        browser = socket.create_connection(("127.0.0.1", port))
        served, _ = server.accept()
        served.close()  # the server side closes first: its end goes to TIME-WAIT
        time.sleep(0.1)
        browser.close()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # what the old check did: refused
    check_port("127.0.0.1", port)  # the check binds as the server does: accepted


def test_dashboard_without_storage(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dashboard", "--storage", str(tmp_path / "none.journal")])
    assert result.exit_code == 2 and "journal file not found" in result.output
    assert not (tmp_path / "none.journal").exists()
