"""Scale-out and recovery: distinct work per worker, honest exits, concurrent starts, safe paths."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from eegtune.cli.app import app
from eegtune.errors import EegtuneError, WorkerError
from eegtune.files import atomic_write_text, safe_name
from eegtune.search.run import run_search
from eegtune.search.storages import failure_reason, open_storage
from eegtune.search.workers import run_processes
from tests.helpers import (
    MYSQL,
    POSTGRES,
    REDIS,
    count,
    finished,
    listing,
    require_service,
    search_cmd,
    search_plan,
    serve_synthetic,
    trials_of,
    wait_until_training,
)

runner = CliRunner()


def configs(trials) -> list[tuple]:
    """The configuration of each finished trial, as a comparable tuple."""
    return [
        tuple(sorted(t.params.items()))
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
    ]


def start_together(n: int, *args: str) -> list[subprocess.CompletedProcess]:
    """Start ``n`` separate `eegtune search` processes at once; wait for all of them."""
    procs = [
        subprocess.Popen(
            search_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(n)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


# --------------------------------------------------------------------------- distinct work


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "target"), [("journal", 9), ("postgresql", 9), ("mysql", 3), ("redis", 3)]
)
def test_separate_processes_same_seed_train_distinct_configurations(tmp_path, kind, target) -> None:
    """Separate `eegtune search` processes started together on one new study, every storage
    kind: exactly the target, every configuration distinct, every process exits 0."""
    servers = {"postgresql": POSTGRES, "mysql": MYSQL, "redis": REDIS}
    if kind in servers:
        storage, name = servers[kind], f"eegtune-test-{uuid.uuid4().hex[:8]}"
        require_service(storage)
    else:
        storage, name = str(tmp_path / "three.journal"), "eegnet"
    try:
        runs = start_together(
            3, "--trials", str(target), "--epochs", "1", "--storage", storage, "--study", name
        )
        trials = trials_of(storage, name)
        for run in runs:
            states = [(t.number, t.state.name, t.user_attrs.get("fail_reason")) for t in trials]
            assert run.returncode == 0, f"{run.stderr[-1500:]}\ntrials: {states}"
        assert finished(trials) == target and count(trials, TrialState.RUNNING) == 0
        assert len(set(configs(trials))) == target
        if target == 9:
            done = (TrialState.COMPLETE, TrialState.PRUNED)  # a surplus trial never started
            assert len({t.user_attrs["worker"] for t in trials if t.state in done}) == 3
    finally:
        if kind in servers:
            optuna.delete_study(study_name=name, storage=open_storage(storage))


def test_a_rerun_trains_no_configuration_that_already_finished(tmp_path, tiny_data) -> None:
    storage = str(tmp_path / "rerun.journal")
    for target in (3, 6):  # the second run continues the study, as after Ctrl-C
        run_search(search_plan(storage, trials=target), data_set=tiny_data)
    trials = trials_of(storage, "eegnet")
    assert finished(trials) == 6 and len(set(configs(trials))) == 6


def test_fresh_single_worker_study_is_reproducible(tmp_path, tiny_data) -> None:
    runs = []
    for name in ("a", "b"):
        storage = str(tmp_path / f"{name}.journal")
        run_search(search_plan(storage, trials=12, seed=1, sampler="tpe"), data_set=tiny_data)
        runs.append([(t.params, t.state) for t in trials_of(storage, "eegnet")])
    assert runs[0] == runs[1]


# --------------------------------------------------------------------------- honest exits


def test_sigkill_then_immediate_rerun_reaches_the_target_and_exits_0(tmp_path) -> None:
    journal = str(tmp_path / "kill.journal")
    proc = subprocess.Popen(
        search_cmd("--trials", "2", "--epochs", "300", "--pruner", "none", "--storage", journal),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (victim,) = wait_until_training(journal, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    rerun = subprocess.run(  # at once: well within the 30 s heartbeat grace
        search_cmd("--trials", "2", "--epochs", "1", "--storage", journal),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "done: 2/2 finished" in rerun.stdout
    trials = trials_of(journal, "eegnet")
    dead = trials[victim.number]
    assert dead.state == TrialState.FAIL and "is gone" in dead.user_attrs["fail_reason"]
    retries = [t for t in trials if t.user_attrs.get("retry_of") == victim.number]
    assert len(retries) == 1 and retries[0].params == victim.params
    assert finished(trials) == 2 and count(trials, TrialState.RUNNING) == 0


@pytest.mark.slow
def test_killed_worker_is_a_warning_when_the_target_is_met(tmp_path) -> None:
    journal = str(tmp_path / "mw.journal")
    proc = subprocess.Popen(
        search_cmd(
            "--trials", "3", "--epochs", "20", "--pruner", "none", "--workers", "2",
            "--storage", journal,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    running = wait_until_training(journal, proc, n=2)
    victim_pid = int(running[0].user_attrs["worker"].rsplit(":", 1)[1])
    os.kill(victim_pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    trials = trials_of(journal, "eegnet")
    assert proc.returncode == 0, err
    assert finished(trials) == 3 and count(trials, TrialState.RUNNING) == 0
    assert "warning: 1 worker(s) exited abnormally (exit codes [-9])" in out
    assert "done: 3/3 finished" in out
    assert "is gone" in trials[running[0].number].user_attrs["fail_reason"]


def test_worker_errors_reach_the_user_word_for_word() -> None:
    with pytest.raises(WorkerError) as info:
        run_processes(_failing_worker, lambda i: (i,), 2, lambda i: "cpu", None)
    assert str(info.value) in {
        f"worker {i}: the space file says no (exactly this text)" for i in (0, 1)
    }


def _failing_worker(index: int, *, deadline: float | None) -> None:
    raise EegtuneError(f"worker {index}: the space file says no (exactly this text)")


def test_workers_killed_without_a_message_are_reported_by_exit_code() -> None:
    assert run_processes(_killed_worker, lambda i: (i,), 2, lambda i: "cpu", None) == [-9, -9]


def _killed_worker(index: int, *, deadline: float | None) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------- concurrent start


@pytest.mark.slow
def test_four_processes_start_together_on_a_new_sqlite_file(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    runs = start_together(4, "--trials", "4", "--epochs", "1", "--storage", url)
    for run in runs:
        assert run.returncode == 0, run.stderr
    trials = trials_of(url, "eegnet")
    assert finished(trials) == 4 and count(trials, TrialState.RUNNING) == 0


def test_sqlite_errors_do_not_mention_a_database_server(tmp_path) -> None:
    (tmp_path / "db").mkdir()
    result = runner.invoke(app, ["report", "--storage", f"sqlite:///{tmp_path}/db"])
    assert result.exit_code == 2
    assert "database server" not in result.output and "path and permissions" in result.output


def test_a_lost_database_is_reported_as_lost_not_as_invalid_data() -> None:
    import sqlalchemy.exc

    try:
        try:
            raise sqlalchemy.exc.OperationalError(
                "COMMIT", {}, Exception("server closed the connection unexpectedly")
            )
        except sqlalchemy.exc.OperationalError as exc:
            raise optuna.exceptions.StorageInternalError(
                "An exception is raised during the commit. This typically happens due to "
                "invalid data in the commit, e.g. exceeding max length."
            ) from exc
    except optuna.exceptions.StorageInternalError as wrapped:
        assert failure_reason(wrapped) == "server closed the connection unexpectedly"


# --------------------------------------------------------------------------- paths and files


@pytest.mark.parametrize("name", ["../../x", "/tmp/eegtune-abs-{}/x", "a b/c", ".."])
def test_study_names_cannot_escape_the_output_folders(
    tmp_path, tiny_data, name, monkeypatch
) -> None:
    serve_synthetic(monkeypatch, tiny_data)
    name = name.format(uuid.uuid4().hex[:8])
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    storage = str(work / "s.journal")
    run_search(search_plan(storage, trials=1, study_name=name), data_set=tiny_data)
    before_outside = listing(tmp_path)
    out, models = work / "A", work / "B"
    env = {"EEGTUNE_STORAGE": storage}
    report = runner.invoke(app, ["report", "--out", str(out)], env=env)
    assert report.exit_code == 0, report.output
    evaluate = runner.invoke(
        app,
        ["evaluate", "--study", name, "--seeds", "1", "--models-dir", str(models)],
        env=env,
    )
    assert evaluate.exit_code == 0, evaluate.output
    new = set(listing(tmp_path)) - set(before_outside)
    # A, B and the artifact store beside the storage, where evaluate attaches the weights
    inside = {"work/deep/A", "work/deep/B", "work/deep/s.journal", "work/deep/artifacts"}
    assert new and all(any(p.startswith(d) for d in inside) for p in new), new
    assert not Path(name).is_absolute() or not Path(name).exists()
    assert f"weights and configs saved under {models / safe_name(name)}" in evaluate.output


def test_safe_names_keep_plain_names_and_never_collide() -> None:
    assert safe_name("eegnet-elu_2.v1") == "eegnet-elu_2.v1"
    odd = ["../../x", "/x", "x/", "a b", "a_b+", "..", "."]
    safe = [safe_name(n) for n in odd]
    assert len(set(safe)) == len(odd) and "a_b" not in safe
    assert all("/" not in s and s not in (".", "..") for s in safe)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(tmp_path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == mode


# --------------------------------------------------------------------------- complete trials


@pytest.mark.parametrize("epochs", [1, 2])
def test_trials_that_train_all_their_epochs_are_complete(tmp_path, tiny_data, epochs) -> None:
    storage = str(tmp_path / "short.journal")
    status = run_search(
        search_plan(storage, trials=8, epochs=epochs, pruner="hyperband"), data_set=tiny_data
    )
    trials = trials_of(storage, "eegnet")
    full = [t for t in trials if t.user_attrs.get("epochs_trained") == epochs]
    assert len(full) >= 1 and all(t.state == TrialState.COMPLETE for t in full)
    if epochs == 1:
        assert status.complete == 8


def test_a_workers_own_error_reaches_the_output_of_workers_2(tmp_path, lab_copy) -> None:
    """The data vanish after the parent loaded them: each worker fails to load them itself,
    and its one-line DataError (not "exited abnormally") is what the user reads."""
    from eegtune.data.loading import load_dataset

    loaded = load_dataset("bci-iiib", lab_copy, offline=True)  # what the parent holds
    (lab_copy / "S4b_train.npz").unlink()  # then the file goes, before any worker starts
    plan = search_plan(str(tmp_path / "w.journal"), trials=2, workers=2, dataset="bci-iiib",
                       data_dir=lab_copy, offline=True)  # fmt: skip
    with pytest.raises(WorkerError) as caught:
        run_search(plan, data_set=loaded)
    assert caught.value.exit_code == 2
    assert "S4b_train.npz: file not found and offline mode is on" in str(caught.value)
    assert "exited abnormally" not in str(caught.value)


def test_a_bad_heartbeat_interval_is_one_line_before_anything_runs(tmp_path) -> None:
    result = runner.invoke(
        app,
        ["search", "--model", "eegnet", "--dataset", "synthetic", "--trials", "1",
         "--storage", str(tmp_path / "h.journal")],
        env={"EEGTUNE_HEARTBEAT_INTERVAL": "soon"},
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    expected = "EEGTUNE_HEARTBEAT_INTERVAL must be a number of seconds from 0.05 to 3600"
    assert f"error: {expected}, got 'soon'" in result.output
    assert listing(tmp_path) == []


def test_a_study_being_created_by_another_process_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Racing first starts: one process writes the keys ("model" last), the other waits for
    them instead of reading half of them; a creator that died half-way is completed."""
    import time
    from types import SimpleNamespace

    from eegtune.data.sources import DataSource
    from eegtune.search import study as study_module
    from eegtune.search.study import StudySpec, create_or_check_study

    storage = open_storage(str(tmp_path / "s.journal"))
    theirs = StudySpec("eegnet", DataSource("synthetic", ("1",)), 3, 0.25, "smoothed")
    racing = optuna.create_study(study_name="racing", storage=storage, direction="maximize")
    for key, value in theirs.to_attrs().items():
        if key != "model":
            racing.set_user_attr(key, value)  # the other process is half-way
    waits: list[float] = []

    def other_process_finishes(seconds: float) -> None:  # called only while this one waits
        waits.append(seconds)
        racing.set_user_attr("model", "eegnet")

    monkeypatch.setattr(
        study_module,
        "time",
        SimpleNamespace(monotonic=time.monotonic, sleep=other_process_finishes),
    )
    wanted = StudySpec("eegnet", DataSource("synthetic", ("1",)), 0, 0.2, "smoothed")
    _, kept = create_or_check_study(storage, "racing", wanted)
    assert waits, "the second process did not wait for the first one's keys"
    assert (kept.split_seed, kept.val_fraction) == (3, 0.25)  # the creator's, read whole
    monkeypatch.undo()

    dead = optuna.create_study(study_name="dead", storage=storage, direction="maximize")
    dead.set_user_attr("dataset", "synthetic")  # its creator died here
    monkeypatch.setattr(study_module, "INIT_WAIT_S", 0.2)
    made, kept = create_or_check_study(storage, "dead", wanted)
    assert kept == wanted and made.user_attrs["model"] == "eegnet"


def test_a_worker_that_loses_the_race_for_the_last_trial_waits_for_the_winner(
    tmp_path, tiny_data, monkeypatch
) -> None:
    """Another worker asks for the last trial between this worker's count and its ask: this
    worker fails its surplus trial and waits for the winner's, so its search ends with the
    target met (an early return ended it short, exit 3 in the CLI)."""
    import threading

    from eegtune.search.workers import worker_label

    storage = str(tmp_path / "race.journal")
    real_ask = optuna.Study.ask
    won: list[optuna.Trial] = []

    def ask_after_a_rival(study, *args, **kwargs):
        if not won:  # the rival worker asks first, then finishes two seconds later
            rival = real_ask(study)
            rival.set_user_attr("worker", worker_label())
            won.append(rival)
            threading.Timer(2.0, study.tell, (rival, 0.5)).start()
        return real_ask(study, *args, **kwargs)

    monkeypatch.setattr(optuna.Study, "ask", ask_after_a_rival)
    final = run_search(search_plan(storage, trials=1), data_set=tiny_data)
    assert final.finished == final.target == 1
    trials = trials_of(storage, "eegnet")
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert trials[1].user_attrs["fail_reason"].startswith("surplus")
