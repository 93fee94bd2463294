"""Faults of real use: signals as schedulers send them, damaged and full storage files, names
that are markup or script, secrets in storage URLs. Real processes where the fault is one."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from eegtune.cli.app import app
from eegtune.files import safe_name
from eegtune.search.run import run_search
from eegtune.search.storages import describe_storage, open_storage, redact
from tests.helpers import (
    MYSQL,
    POSTGRES,
    REDIS,
    count,
    finished,
    require_service,
    search_cmd,
    search_plan,
    trials_of,
    wait_for,
    wait_until_training,
)

runner = CliRunner()


def _eegtune(*args: str, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", "eegtune", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z"


# --------------------------------------------------------------------------- signals


@pytest.mark.parametrize(
    ("signum", "kind"),
    [(signal.SIGTERM, "journal"), (signal.SIGHUP, "journal"), (signal.SIGTERM, "sqlite"),
     (signal.SIGTERM, "postgresql"), (signal.SIGTERM, "mysql"), (signal.SIGTERM, "redis")],
)  # fmt: skip
def test_sigterm_and_sighup_fail_the_running_trial_exit_128_plus_n_and_a_rerun_resumes(
    tmp_path: Path, signum: int, kind: str
) -> None:
    servers = {"postgresql": POSTGRES, "mysql": MYSQL, "redis": REDIS}
    name = f"term-{uuid.uuid4().hex[:8]}"
    if kind in servers:
        storage = servers[kind]
        require_service(storage)
    else:
        storage = f"sqlite:///{tmp_path}/t.db" if kind == "sqlite" else str(tmp_path / "t.journal")
    args = ("--storage", storage, "--study", name)
    try:
        proc = subprocess.Popen(
            search_cmd("--trials", "2", "--epochs", "300", "--pruner", "none", *args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _wait_for_running(storage, name, proc)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signum, err
        assert "Traceback" not in err and "interrupted: 0/2 finished" in out
        trials = trials_of(storage, name)
        assert count(trials, TrialState.RUNNING) == 0
        (failed,) = [t for t in trials if t.state == TrialState.FAIL]  # the rest still queued
        reason = f"interrupted ({signal.Signals(signum).name})"
        assert failed.user_attrs["fail_reason"] == reason
        rerun = subprocess.run(search_cmd("--trials", "2", "--epochs", "1", *args),
                               capture_output=True, text=True)  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
        assert finished(trials_of(storage, name)) == 2
    finally:
        if kind in servers:
            optuna.delete_study(study_name=name, storage=open_storage(storage))


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_stopped_parent_of_workers_takes_its_workers_with_it(tmp_path: Path, signum) -> None:
    journal = str(tmp_path / "orphans.journal")
    proc = subprocess.Popen(
        search_cmd("--trials", "4", "--epochs", "300", "--workers", "2", "--pruner", "none",
                   "--storage", journal),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    running = wait_until_training(journal, proc, n=2)
    pids = [int(t.user_attrs["worker"].rsplit(":", 1)[1]) for t in running]
    assert proc.pid not in pids
    proc.send_signal(signum)
    proc.communicate(timeout=90)
    if signum == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM
    wait_for(lambda: all(_gone(pid) for pid in pids), 60, "the workers' exit")
    trials = trials_of(journal, "eegnet")
    assert count(trials, TrialState.RUNNING) == 0  # each worker failed its own trial
    failed = [t for t in trials if t.state == TrialState.FAIL]  # portfolio trials wait queued
    assert len(failed) == 2 and {t.user_attrs["fail_reason"] for t in failed} == {
        "interrupted (SIGTERM)"
    }


@pytest.mark.slow
def test_a_paused_worker_drops_a_trial_failed_elsewhere_and_carries_on(tmp_path: Path) -> None:
    """SIGSTOP (Ctrl-Z, a sleeping laptop) past the heartbeat grace: another worker fails and
    retries the trial; the paused one, continued, drops it with a warning and exits 0."""
    journal = str(tmp_path / "pause.journal")
    env = {**os.environ, "EEGTUNE_HEARTBEAT_INTERVAL": "0.5"}
    paused = subprocess.Popen(
        search_cmd("--trials", "2", "--epochs", "300", "--storage", journal, "--pruner", "none"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    (first,) = wait_until_training(journal, paused)
    paused.send_signal(signal.SIGSTOP)
    try:
        other = subprocess.run(
            search_cmd("--trials", "2", "--epochs", "1", "--storage", journal),
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert other.returncode == 0, other.stderr
    finally:
        paused.send_signal(signal.SIGCONT)
    out, err = paused.communicate(timeout=120)
    assert paused.returncode == 0, err
    assert "Traceback" not in err
    assert f"warning: trial {first.number} was failed and retried by another worker" in err
    trials = trials_of(journal, "eegnet")
    assert finished(trials) == 2 and count(trials, TrialState.RUNNING) == 0
    assert trials[first.number].state == TrialState.FAIL
    assert any(t.user_attrs.get("retry_of") == first.number for t in trials)


# --------------------------------------------------------------------------- journal files


def _journal_with_trials(path: Path, trials: int = 2) -> None:
    run_search(search_plan(str(path), trials=trials), data_set=None)


def test_an_incomplete_last_record_is_dropped_with_a_warning_and_the_file_stays_usable(
    tmp_path: Path,
) -> None:
    whole = tmp_path / "whole.journal"
    _journal_with_trials(whole)
    cut = tmp_path / "cut.journal"
    data = whole.read_bytes()
    cut.write_bytes(data[:-25])  # a truncated copy, or a write cut short by a full disk
    report = _eegtune("report", "--storage", str(cut), "--out", str(tmp_path / "r"))
    assert report.returncode == 0, report.stderr
    assert f"warning: journal {cut} ended in an incomplete record" in report.stderr
    assert "Traceback" not in report.stderr
    kept = data[:-25][: data[:-25].rfind(b"\n") + 1]  # every whole record before the cut
    # the incomplete record is gone; what follows it is what report attached (its numbers)
    assert cut.read_bytes().startswith(kept) and cut.read_bytes().endswith(b"\n")
    assert b"eegtune:attached:" in cut.read_bytes()[len(kept) :]
    again = subprocess.run(search_cmd("--trials", "3", "--epochs", "1", "--storage", str(cut)),
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "incomplete record" not in again.stderr  # repaired once, for good
    assert finished(trials_of(str(cut), "eegnet")) == 3


def test_damage_in_the_middle_of_a_journal_is_one_line_and_nothing_is_appended(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "bad.journal"
    _journal_with_trials(journal, trials=1)
    lines = journal.read_bytes().split(b"\n")
    lines[2] = lines[2][:5] + b"\xff" + lines[2][6:]  # a bad byte inside record 3
    journal.write_bytes(b"\n".join(lines))
    before = journal.read_bytes()
    for command in (["report"], ["search", "--model", "eegnet", "--dataset", "synthetic"]):
        result = _eegtune(*command, "--storage", str(journal))
        assert result.returncode == 2, result.stderr
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
        assert f"journal {journal} is damaged at record 3 of" in line and "head -n 2" in line
        assert "Traceback" not in result.stderr
    assert journal.read_bytes() == before


def _sqlite_file(path: Path) -> None:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("create table t (a)")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("sqlite", "is a SQLite database; give it as sqlite:///"),
        ("npz", "is a zip or npz archive"),
        ("zeros", "is zero-filled"),
        ("text", "is not an Optuna journal"),
        ("binary", "is not an Optuna journal"),
    ],
)
def test_a_file_that_is_not_a_journal_is_refused_before_anything_is_written(
    tmp_path: Path, kind: str, message: str
) -> None:
    path = tmp_path / f"{kind}.file"
    if kind == "sqlite":
        _sqlite_file(path)
    elif kind == "npz":
        np.savez(path.open("wb"), X=np.zeros(3))
    elif kind == "zeros":
        path.write_bytes(bytes(8192))
    elif kind == "text":
        path.write_text("just one line of notes\n")
    else:
        path.write_bytes(bytes(range(256)) * 4)
    before = path.read_bytes()
    result = runner.invoke(
        app,
        [
            "search",
            "--model",
            "eegnet",
            "--dataset",
            "synthetic",
            "--trials",
            "1",
            "--epochs",
            "1",
            "--storage",
            str(path),
        ],
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert path.read_bytes() == before
    assert not Path(f"{path}.lock").exists()


def test_a_failed_append_cuts_off_its_own_partial_record(tmp_path: Path, monkeypatch) -> None:
    """ENOSPC injected half-way through a write: the file is whole again, and usable."""

    journal = tmp_path / "enospc.journal"
    storage = open_storage(str(journal))
    study = optuna.create_study(storage=storage, study_name="s")
    size = journal.stat().st_size
    real_open = Path.open

    class HalfThenFull:
        """The journal's file, on a disk that fills up half-way through the next write."""

        def __init__(self, raw) -> None:
            self._raw = raw

        def __getattr__(self, name: str):
            return getattr(self._raw, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self._raw.close()

        def write(self, data) -> int:
            self._raw.write(bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    def opened(self, mode="r", *args, **kwargs):
        raw = real_open(self, mode, *args, **kwargs)
        return HalfThenFull(raw) if self == journal and "+" in mode else raw

    monkeypatch.setattr(Path, "open", opened)
    with pytest.raises(OSError, match="No space left"):
        study.set_user_attr("note", "x" * 500)
    monkeypatch.undo()
    assert journal.stat().st_size == size and journal.read_bytes().endswith(b"\n")
    study.set_user_attr("note", "fits now")
    assert optuna.load_study(study_name="s", storage=open_storage(str(journal))).user_attrs == {
        "note": "fits now"
    }


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 320 KiB tmpfs folder, where the machine lets this process mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()}); the injected ENOSPC "
                    "test covers the same code")  # fmt: skip
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_stops_the_search_and_the_rerun_after_freeing_space_finishes(
    small_disk: Path, tmp_path: Path
) -> None:
    journal = small_disk / "full.journal"
    filler = small_disk / "filler"
    filler.write_bytes(b"x" * (320 * 1024 - 24 * 1024))  # leaves room for a trial or two
    full = subprocess.run(search_cmd("--trials", "30", "--epochs", "3", "--storage", str(journal)),
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert full.returncode == 1, full.stderr
    assert "lost the storage" in full.stderr and "Traceback" not in full.stderr
    assert journal.read_bytes().endswith(b"\n")  # no half-written record left behind
    kept = finished(trials_of(str(journal), "eegnet"))
    filler.unlink()
    rerun = subprocess.run(search_cmd("--trials", str(kept + 2), "--epochs", "1",
                                      "--storage", str(journal)),
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert finished(trials_of(str(journal), "eegnet")) == kept + 2
    report = _eegtune("report", "--storage", str(journal), "--out", str(tmp_path / "r"))
    assert report.returncode == 0, report.stderr


# --------------------------------------------------------------------------- names are text


def test_a_study_name_with_script_runs_no_script_in_any_report_page(tmp_path, tiny_data) -> None:
    storage = str(tmp_path / "xss.journal")
    name = "</title><script>alert(1)</script>"
    run_search(search_plan(storage, study_name=name), data_set=tiny_data)
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "--storage", storage, "--out", str(out)])
    assert result.exit_code == 0, result.output
    pages = list(out.glob("*.html"))
    assert len(pages) >= 5
    for page in pages:
        assert "<script>alert(1)" not in page.read_text(), page.name
    titled = [p for p in pages if "&lt;/title&gt;&lt;script&gt;alert(1)" in p.read_text()]
    assert len(titled) >= 4  # the per-chart pages name the study, escaped


def test_markup_in_study_names_and_class_labels_is_printed_literally(tmp_path: Path) -> None:
    folder = tmp_path / "arrays"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for part, n in (("train", 80), ("test", 40)):
        labels = np.array(["[left]", "[/]"] * (n // 2))
        np.savez(folder / f"{part}.npz", X=rng.standard_normal((n, 2, 200)), y=labels)
    storage = str(tmp_path / "markup.journal")
    searched = runner.invoke(app, ["search", "--model", "eegnet", "--dataset", f"npz:{folder}",
                                   "--trials", "1", "--epochs", "2", "--device", "cpu",
                                   "--storage", storage, "--study", "[/]"])  # fmt: skip
    assert searched.exit_code == 0, searched.output
    assert "best trials of study '[/]'" in searched.output
    evaluated = runner.invoke(app, ["evaluate", "--storage", storage, "--study", "[/]",
                                    "--seeds", "1", "--device", "cpu",
                                    "--models-dir", str(tmp_path / "m")])  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    assert "[left]" in evaluated.output and "[/]" in evaluated.output
    reported = runner.invoke(app, ["report", "--storage", storage, "--out", str(tmp_path / "r")])
    assert reported.exit_code == 0, reported.output
    assert "[/]" in reported.output


def test_any_study_name_the_storage_accepts_gives_file_names_the_disk_accepts(
    tmp_path, tiny_data
) -> None:
    storage = str(tmp_path / "long.journal")
    name = "n" * 240
    run_search(search_plan(storage, study_name=name), data_set=tiny_data)
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "--storage", storage, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert all(len(p.name) < 255 for p in out.iterdir())
    assert len(safe_name(name)) <= 100 and safe_name(name) != safe_name(name + "x")
    assert safe_name("eegnet") == "eegnet"


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    ("url", "secret", "shown"),
    [
        ("postgresql://eeg:s3cret@db:5432/x", "s3cret", "postgresql+psycopg://eeg:***@db:5432/x"),
        ("mysql://root:p@ss:w0rd@db:3306/t", "w0rd", "mysql+pymysql://root:***@db:3306/t"),
        ("postgresql://eeg@db/x?password=hunter22&sslmode=off", "hunter22",
         "postgresql+psycopg://eeg@db/x?password=***&sslmode=off"),
        ("redis://:pw1234@db:6379/0", "pw1234", "redis://:***@db:6379/0"),
    ],
)  # fmt: skip
def test_storage_passwords_are_hidden_in_every_form(url: str, secret: str, shown: str) -> None:
    if "psycopg" in shown and "psycopg2" in describe_storage("postgresql://h/x"):
        shown = shown.replace("psycopg", "psycopg2")
    assert describe_storage(url) == shown
    echoed = f"connection to {url} failed; ss:w0rd@db said {secret}"
    assert secret not in redact(echoed, url)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root:p@ss:w0rd@127.0.0.1:3306/test",  # an unencoded @ inside the password
        "mysql://root:hunter22secret@127.0.0.1:3306/nosuchdb",
        "postgresql://postgres@127.0.0.1:5432/nosuchdb?password=hunter22secret",
    ],
)
def test_real_driver_errors_never_show_the_password(tmp_path: Path, url: str) -> None:
    require_service(url.split("://")[0] + "://root@127.0.0.1:3306/test" if "mysql" in url
                    else "postgresql://postgres@127.0.0.1:5432/test")  # fmt: skip
    result = _eegtune("search", "--model", "eegnet", "--dataset", "synthetic", "--trials", "1",
                      "--epochs", "1", "--storage", url)  # fmt: skip
    assert result.returncode != 0
    for secret in ("w0rd", "ss:w0rd", "hunter22secret"):
        assert secret not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_report_of_a_database_storage_shows_no_password(tmp_path, tiny_data) -> None:
    url = "postgresql://postgres@127.0.0.1:5432/test?password=hunter22secret"
    require_service("postgresql://postgres@127.0.0.1:5432/test")
    name = f"pw-{os.getpid()}-{time.time_ns()}"
    run_search(search_plan(url, study_name=name), data_set=tiny_data)
    out = tmp_path / "r"
    result = runner.invoke(app, ["report", "--storage", url, "--study", name, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "hunter22secret" not in result.output
    for page in out.iterdir():
        assert "hunter22secret" not in page.read_text(errors="replace"), page.name
    assert "password=***" in (out / "index.html").read_text()


# --------------------------------------------------------------------------- long commands resume


def test_an_interrupted_evaluate_keeps_its_finished_seeds_and_trains_only_the_missing(
    tmp_path, tiny_data
) -> None:
    from eegtune.results.evaluate import evaluate_study, plan_evaluation
    from eegtune.search.study import load_seeds, load_study

    storage_url = str(tmp_path / "ev.journal")
    run_search(search_plan(storage_url, trials=2, epochs=2), data_set=tiny_data)
    storage = open_storage(storage_url)
    study = load_study(storage, "eegnet")
    models = tmp_path / "models"
    plan = plan_evaluation(storage, "eegnet", seeds=3, models_dir=models)

    def stop_after_seed_1(label: str, seed: int, acc: float) -> None:
        if seed == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate_study(plan, tiny_data, storage=storage, on_seed=stop_after_seed_1)
    assert sorted(load_seeds(storage, study)["best"]) == [0, 1]  # seed 1 kept, not dropped
    assert sorted(p.name for p in (models / "eegnet" / "best").glob("seed*.pt")) == [
        "seed0.pt", "seed1.pt",
    ]  # fmt: skip
    trained: list[int] = []
    (result,) = evaluate_study(plan, tiny_data, storage=storage,
                               on_seed=lambda label, seed, acc: trained.append(seed))  # fmt: skip
    assert trained == [2] and result.seeds == [0, 1, 2] and len(result.test_acc) == 3
    again: list[int] = []
    evaluate_study(plan, tiny_data, storage=storage,
                   on_seed=lambda label, seed, acc: again.append(seed))  # fmt: skip
    assert again == []


def test_concurrent_evaluations_of_one_study_keep_each_others_results(tmp_path, tiny_data) -> None:
    """A second evaluation finishing while the first runs (another terminal, another machine)
    is not overwritten when the first one stores its results."""
    from eegtune.results.evaluate import evaluate_study, plan_evaluation
    from eegtune.search.study import load_evaluation, load_study

    storage_url = str(tmp_path / "two.journal")
    run_search(search_plan(storage_url, trials=3, epochs=2), data_set=tiny_data)
    storage = open_storage(storage_url)
    models = tmp_path / "models"
    inner: list[str] = []

    def meanwhile(label: str, seed: int, acc: float) -> None:
        if not inner:
            other = open_storage(storage_url)
            both = plan_evaluation(other, "eegnet", seeds=1, per_activation=True,
                                   models_dir=models)  # fmt: skip
            done = evaluate_study(both, tiny_data, storage=other)
            inner.extend(e.label for e in done)

    best = plan_evaluation(storage, "eegnet", seeds=1, models_dir=models)
    evaluate_study(best, tiny_data, storage=storage, on_seed=meanwhile)
    stored = load_evaluation(open_storage(storage_url), load_study(storage, "eegnet"))
    assert inner and set(stored) == {"best", *inner}


def _wait_for_running(storage: str, name: str, proc: subprocess.Popen, timeout: float = 180):
    def running():
        try:
            trials = trials_of(storage, name)
        except Exception:
            return []
        return [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values]

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running():
            return running()[0]
        time.sleep(0.3)
    proc.kill()
    pytest.fail("compare's baseline never started training")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_compare_baseline_is_retried_as_the_baseline(tmp_path, signum) -> None:
    storage = str(tmp_path / "cmp.journal")

    def compare(epochs: str) -> list[str]:
        return [sys.executable, "-m", "eegtune", "compare", "--model", "eegnet",
                "--activation", "relu", "--dataset", "synthetic", "--trials", "2",
                "--epochs", epochs, "--seeds", "1", "--storage", storage, "--device", "cpu",
                "--out", str(tmp_path / "r"), "--models-dir", str(tmp_path / "m")]  # fmt: skip

    proc = subprocess.Popen(compare("300"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    trial = _wait_for_running(storage, "compare-synthetic-eegnet-relu", proc)
    assert trial.user_attrs["baseline"] is True and trial.number == 0
    proc.send_signal(signum)
    proc.communicate(timeout=60)
    rerun = subprocess.run(compare("2"), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "baseline did not complete" not in rerun.stdout + rerun.stderr
    trials = trials_of(storage, "compare-synthetic-eegnet-relu")
    baselines = [t for t in trials if t.user_attrs.get("baseline")]
    assert baselines[0].state == TrialState.FAIL
    assert [t.state for t in baselines[1:]] == [TrialState.COMPLETE]
    assert baselines[1].params == baselines[0].params


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_warm_start_trial_is_queued_again_once(tmp_path, signum) -> None:
    storage = str(tmp_path / "warm.journal")

    def compare(epochs: str, *activations: str) -> list[str]:
        chosen = [a for name in activations for a in ("--activation", name)]
        return [sys.executable, "-m", "eegtune", "compare", "--model", "eegnet", *chosen,
                "--dataset", "synthetic", "--trials", "1", "--epochs", epochs, "--seeds", "1",
                "--no-baseline", "--warm-start", "--race", "0", "--no-references",
                "--storage", storage, "--device", "cpu", "--out", str(tmp_path / "r"),
                "--models-dir", str(tmp_path / "m")]  # fmt: skip

    first = subprocess.run(compare("2", "relu"), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    relu = trials_of(storage, "compare-synthetic-eegnet-relu")[0]
    # the ELU cell starts from ReLU's best; stop it while that warm trial trains
    proc = subprocess.Popen(compare("300", "relu", "elu"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    trial = _wait_for_running(storage, "compare-synthetic-eegnet-elu", proc)
    assert trial.user_attrs["warm_start"] == "compare-synthetic-eegnet-relu"
    proc.send_signal(signum)
    proc.communicate(timeout=60)
    for _ in range(2):  # the rerun trains it again; a second rerun trains nothing more
        rerun = subprocess.run(compare("2", "relu", "elu"), capture_output=True, text=True,
                               timeout=600)  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
    trials = trials_of(storage, "compare-synthetic-eegnet-elu")
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert all(t.user_attrs["warm_start"] == "compare-synthetic-eegnet-relu" for t in trials)
    assert trials[1].params == relu.params | {"activation": "elu"}
    assert len(trials_of(storage, "compare-synthetic-eegnet-relu")) == 1  # not trained again


# --------------------------------------------------------------------------- a study knows its data


def _arrays(folder: Path, classes: int, channels: int, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for part, n in (("train", 60), ("test", 30)):
        y = np.arange(n) % classes
        np.savez(folder / f"{part}.npz", X=rng.standard_normal((n, channels, 200)), y=y)


@pytest.mark.parametrize(
    ("classes", "channels", "seed", "message"),
    [
        (3, 5, 0, "was made on data with training set shape 60x1x2x200, not 60x1x5x200"),
        (3, 2, 0, "was made on data with classes 0, 1, not 0, 1, 2"),
        (2, 2, 1, "was made on other data (same shapes and classes, different values)"),
    ],
)
def test_search_and_evaluate_refuse_data_that_changed_under_a_study(
    tmp_path: Path, classes: int, channels: int, seed: int, message: str
) -> None:
    folder, storage = tmp_path / "arrays", str(tmp_path / "fp.journal")
    _arrays(folder, classes=2, channels=2)
    args = ["search", "--model", "eegnet", "--dataset", f"npz:{folder}", "--trials", "1",
            "--epochs", "1", "--device", "cpu", "--storage", storage, "--study", "fp"]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    _arrays(folder, classes=classes, channels=channels, seed=seed)  # the files swapped
    before = len(trials_of(storage, "fp"))
    again = runner.invoke(app, [*args[:-6], "--trials", "2", *args[-6:]])
    assert again.exit_code == 2 and message in again.output, again.output
    evaluated = runner.invoke(app, ["evaluate", "--storage", storage, "--study", "fp",
                                    "--seeds", "1", "--device", "cpu",
                                    "--models-dir", str(tmp_path / "m")])  # fmt: skip
    assert evaluated.exit_code == 2 and message in evaluated.output, evaluated.output
    assert len(trials_of(storage, "fp")) == before and not (tmp_path / "m" / "fp").exists()


def test_compare_refuses_data_that_changed_under_its_studies(tmp_path: Path) -> None:
    folder, storage = tmp_path / "arrays", str(tmp_path / "cmp.journal")
    _arrays(folder, classes=2, channels=2)
    args = ["compare", "--model", "eegnet", "--activation", "relu", "--dataset", f"npz:{folder}",
            "--trials", "1", "--epochs", "1", "--seeds", "1", "--device", "cpu",
            "--storage", storage, "--out", str(tmp_path / "r"),
            "--models-dir", str(tmp_path / "m")]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    _arrays(folder, classes=2, channels=2, seed=1)  # same shapes, other values
    before = len(trials_of(storage, "compare-arrays-eegnet-relu"))
    again = runner.invoke(app, [*args[:-4], "--seeds", "2", *args[-4:]])
    assert again.exit_code == 2, again.output
    assert "was made on other data (same shapes and classes, different values)" in again.output
    assert len(trials_of(storage, "compare-arrays-eegnet-relu")) == before
    cell = tmp_path / "m" / "compare-arrays-eegnet-relu"
    assert (cell / "tuned" / "seed0.pt").exists() and not (cell / "tuned" / "seed1.pt").exists()


# --------------------------------------------------------------------------- bad input: one line


def _search(storage: str, *args: str, env: dict[str, str] | None = None):
    args = ("--study", "eegnet", "--trials", "1", "--epochs", "1", "--device", "cpu",
            "--storage", storage, *args)  # fmt: skip
    return runner.invoke(app, ["search", "--model", "eegnet", "--dataset", "synthetic", *args],
                         env=env)  # fmt: skip


def _one_error(output: str) -> str:
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in output, output
    return errors[0]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[batch_size]\nchoices = [[32], 64]\n", "choices must be plain values"),
        ("[activation]\nchoices = [{a = 1}]\n", "choices must be plain values"),
    ],
)
def test_toml_choices_that_are_lists_or_tables_are_one_line(tmp_path, toml, message) -> None:
    space = tmp_path / "space.toml"
    space.write_text(toml)
    storage = tmp_path / "s.journal"
    result = _search(str(storage), "--space", str(space))
    assert result.exit_code == 2 and message in _one_error(result.output)
    assert not storage.exists()


def test_a_toml_file_with_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    from eegtune.search.space import load_space

    space = tmp_path / "bom.toml"
    space.write_bytes(b"\xef\xbb\xbf[dropout]\nlow = 0.2\nhigh = 0.4\n")
    assert load_space("eegnet", space).params["dropout"].describe() == "0.2 .. 0.4"


def test_a_space_the_study_cannot_mix_is_refused_before_any_trial(tmp_path: Path) -> None:
    storage = str(tmp_path / "s.journal")
    assert _search(storage).exit_code == 0
    narrow = tmp_path / "narrow.toml"
    narrow.write_text("[batch_size]\nchoices = [32, 64]\n")
    before = len(trials_of(storage, "eegnet"))
    result = _search(storage, "--trials", "3", "--space", str(narrow))
    line = _one_error(result.output)
    assert result.exit_code == 2 and "parameter 'batch_size' is choices 32, 64 here" in line
    assert "start a new --study" in line
    assert len(trials_of(storage, "eegnet")) == before  # nothing trained, nothing left RUNNING
    ranges = tmp_path / "ranges.toml"
    ranges.write_text("[dropout]\nlow = 0.2\nhigh = 0.3\n")  # narrowing a range is fine
    assert _search(storage, "--trials", "2", "--space", str(ranges)).exit_code == 0


@pytest.mark.parametrize("seed", ["4294967295", "-1", "99999999999"])
def test_a_seed_the_sampler_would_refuse_is_one_line_before_the_study(tmp_path, seed) -> None:
    storage = tmp_path / "s.journal"
    result = _search(str(storage), "--seed", seed)
    assert result.exit_code == 2 and "--seed" in result.output and "Traceback" not in result.output
    assert not storage.exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EEGTUNE_HEARTBEAT_INTERVAL", "1e20"),
        ("EEGTUNE_HEARTBEAT_INTERVAL", "1e-9"),
        ("EEGTUNE_PROGRESS_INTERVAL", "soon"),
        ("EEGTUNE_PROGRESS_INTERVAL", "nan"),
    ],
)
def test_eegtune_variables_out_of_range_are_one_line(tmp_path, variable, value) -> None:
    storage = tmp_path / "s.journal"
    result = _search(str(storage), env={variable: value})
    assert result.exit_code == 2 and variable in _one_error(result.output)
    assert not storage.exists()


def _npz_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "arrays"
    _arrays(folder, classes=2, channels=2)
    return folder


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("npy", "is a .npy file (one array), not an npz archive"),
        ("huge-header", "claims shape (4000000000000, 2, 200)"),
        ("float64-overflow", "beyond float32"),
    ],
)
def test_npz_files_that_are_not_what_they_claim_are_one_line(tmp_path, kind, message) -> None:
    folder = _npz_folder(tmp_path)
    train = folder / "train.npz"
    if kind == "npy":
        np.save(tmp_path / "x.npy", np.zeros((60, 2, 200)))
        train.write_bytes((tmp_path / "x.npy").read_bytes())
    elif kind == "huge-header":
        import zipfile

        with zipfile.ZipFile(train) as zf:
            members = {name: zf.read(name) for name in zf.namelist()}
        header = members["X.npy"]
        old = b"(60, 2, 200)"
        assert old in header[:128]
        members["X.npy"] = header.replace(old, b"(4000000000000, 2, 200)", 1)
        with zipfile.ZipFile(train, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    else:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((60, 2, 200))
        x[0, 0, 0] = 1e300
        np.savez(train, X=x, y=np.arange(60) % 2)
    storage = tmp_path / "s.journal"
    args = ["--dataset", f"npz:{folder}", "--trials", "1", "--epochs", "1"]
    result = runner.invoke(app, ["search", "--model", "eegnet", *args, "--storage", str(storage)])
    assert result.exit_code == 2 and message in _one_error(result.output)
    assert not storage.exists()


def test_a_full_or_read_only_output_folder_is_one_line_naming_it(tmp_path, tiny_data) -> None:
    storage = str(tmp_path / "s.journal")
    run_search(search_plan(storage, trials=1), data_set=tiny_data)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    mounted = False
    if os.access(locked, os.W_OK):  # root ignores permissions: a read-only mount does not
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs",
                               str(locked)], capture_output=True, text=True)  # fmt: skip
        if made.returncode != 0:
            pytest.skip(f"this user writes anywhere and cannot mount ({made.stderr.strip()})")
        mounted = True
    try:
        for args in (["report", "--out", str(locked / "r")],
                     ["evaluate", "--seeds", "1", "--models-dir", str(locked / "m")]):  # fmt: skip
            result = runner.invoke(app, [*args, "--storage", storage])
            line = _one_error(result.output)
            assert result.exit_code == 2 and f"cannot write to {locked}" in line
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(locked)], check=False)
        locked.chmod(0o700)


@pytest.mark.slow
def test_a_full_models_dir_is_one_line_before_any_seed_trains(small_disk, tmp_path) -> None:
    storage = str(tmp_path / "s.journal")
    run_search(search_plan(storage, trials=1), data_set=None)
    (small_disk / "filler").write_bytes(b"x" * (320 * 1024 - 2048))
    result = _eegtune("evaluate", "--storage", storage, "--seeds", "1", "--device", "cpu",
                      "--models-dir", str(small_disk / "models"))  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"cannot write to {small_disk / 'models'}: No space left on device" in result.stderr
    assert "seed 0" not in result.stderr
