"""eegtune search end to end: CLI, Optuna's own CLI, resume, workers, storages, failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from eegtune.cli.app import app
from eegtune.data.sources import parse_source
from eegtune.data.synthetic import make_synthetic
from eegtune.errors import SearchError, StudyError
from eegtune.names import PARAMS
from eegtune.search import objective as objective_module
from eegtune.search import run as run_module
from eegtune.search.plan import default_study_name, plan_search
from eegtune.search.run import run_search
from eegtune.search.storages import open_storage, storage_url
from eegtune.search.workers import HEARTBEAT_KEY
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


def invoke_search(*args: str, env: dict[str, str] | None = None):
    """`eegtune search --model eegnet --dataset synthetic --study eegnet ARGS` in-process."""
    base = ["search", "--model", "eegnet", "--dataset", "synthetic", "--study", "eegnet"]
    return runner.invoke(app, [*base, *args], env=env)


def one_error_line(output: str) -> str:
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]


# --------------------------------------------------------------------------- end to end


def test_cli_search_then_optuna_cli_reads_the_study(tmp_path: Path) -> None:
    journal = tmp_path / "j.journal"
    result = invoke_search(
        "--trials",
        "3",
        "--epochs",
        "2",
        "--storage",
        str(journal),
        "--device",
        "cpu",
        "--study",
        "e2e",
    )
    assert result.exit_code == 0, result.output
    assert "best trials of study 'e2e'" in result.output and "3/3 finished" in result.output
    out = subprocess.run(
        [
            str(Path(sys.executable).with_name("optuna")),
            "trials",
            "--storage",
            str(journal),
            "--storage-class",
            "JournalFileBackend",
            "--study-name",
            "e2e",
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 3 and all(set(r["params"]) == set(PARAMS) for r in rows)
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    values = [r["value"]["smoothed validation accuracy (3-epoch mean)"] for r in complete]  # named
    assert complete and all(0 <= v <= 1 for v in values)
    attrs = complete[0]["user_attrs"]
    assert {"best_epoch", "history", "seconds", "device", "n_params"} <= set(attrs)
    assert len(attrs["history"]["val_acc"]) == attrs["epochs_trained"]


def test_trial_records_learning_curves_and_study_split(tmp_path, tiny_data) -> None:
    storage = str(tmp_path / "s.journal")
    run_search(search_plan(storage, trials=2, split_seed=7), data_set=tiny_data)
    study = optuna.load_study(study_name="eegnet", storage=open_storage(storage))
    assert study.user_attrs["split_seed"] == 7 and study.user_attrs["model"] == "eegnet"
    for t in study.trials:
        assert t.user_attrs["n_params"] == 17874 and t.user_attrs["device"] == "cpu"
        assert list(t.intermediate_values.values()) == t.user_attrs["history"]["val_acc"]
        curve = t.user_attrs["history"]["val_acc"]
        trailing = [sum(curve[max(0, i - 2) : i + 1]) / len(curve[max(0, i - 2) : i + 1])
                    for i in range(len(curve))]  # fmt: skip
        assert t.value == pytest.approx(max(trailing), abs=1e-5)  # the default: smoothed
        assert t.user_attrs["best_epoch"] == trailing.index(max(trailing)) + 1


def test_objective_best_scores_the_single_best_epoch(tmp_path, tiny_data) -> None:
    storage = str(tmp_path / "b.journal")
    run_search(search_plan(storage, trials=2, epochs=3, objective="best"), data_set=tiny_data)
    study = optuna.load_study(study_name="eegnet", storage=open_storage(storage))
    assert study.user_attrs["objective"] == "best"
    for t in study.trials:
        curve = t.user_attrs["history"]["val_acc"]
        assert t.value == pytest.approx(max(curve), abs=1e-5)


def test_same_seed_same_trials(tmp_path, tiny_data) -> None:
    runs = []
    for name in ("a", "b"):
        storage = str(tmp_path / f"{name}.journal")
        run_search(
            search_plan(storage, trials=4, seed=3, sampler="tpe", pruner="median"),
            data_set=tiny_data,
        )
        runs.append([(t.params, t.value, t.state) for t in trials_of(storage, "eegnet")])
    assert runs[0] == runs[1]


def test_target_is_for_the_study_not_the_run(tmp_path, tiny_data) -> None:
    storage = str(tmp_path / "r.journal")
    run_search(search_plan(storage, trials=2), data_set=tiny_data)
    status = run_search(search_plan(storage, trials=2), data_set=tiny_data)
    assert status.finished == 2 and len(trials_of(storage, "eegnet")) == 2
    status = run_search(search_plan(storage, trials=3), data_set=tiny_data)
    assert status.finished == 3 and len(trials_of(storage, "eegnet")) == 3


def test_ctrl_c_fails_running_trial_exit_130_and_rerun_finishes(tmp_path: Path) -> None:
    journal = str(tmp_path / "int.journal")
    proc = subprocess.Popen(
        search_cmd("--trials", "3", "--epochs", "300", "--storage", journal, "--pruner", "none"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until_training(journal, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert (out + err).count("interrupted") == 1 and "Traceback" not in err
    assert "interrupted: 0/3 finished" in out
    trials = trials_of(journal, "eegnet")
    assert count(trials, TrialState.RUNNING) == 0
    (failed,) = [t for t in trials if t.state == TrialState.FAIL]  # the portfolio still queued
    assert "interrupted" in failed.user_attrs["fail_reason"]
    rerun = subprocess.run(
        search_cmd("--trials", "3", "--epochs", "1", "--storage", journal),
        capture_output=True,
        text=True,
    )
    assert rerun.returncode == 0, rerun.stderr
    after = trials_of(journal, "eegnet")
    assert finished(after) == 3
    done = [tuple(sorted(t.params.items())) for t in after if t.state != TrialState.FAIL]
    assert len(set(done)) == len(done)  # the re-run trained no configuration again


def test_sigkilled_worker_trial_fails_by_heartbeat_and_is_retried(tmp_path: Path) -> None:
    journal = str(tmp_path / "kill.journal")
    env = {**os.environ, "EEGTUNE_HEARTBEAT_INTERVAL": "0.5"}
    proc = subprocess.Popen(
        search_cmd("--trials", "2", "--epochs", "300", "--storage", journal),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (victim,) = wait_until_training(journal, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert trials_of(journal, "eegnet")[victim.number].state == TrialState.RUNNING
    # As if the worker had run on another machine: only the heartbeat can tell it is gone.
    storage = open_storage(journal)
    study_id = storage.get_study_id_from_name("eegnet")
    victim_id = storage.get_trial_id_from_study_id_trial_number(study_id, victim.number)
    storage.set_trial_user_attr(victim_id, "worker", "another-host:1")
    # Its last heartbeat, a minute ago: far longer than the grace of 3 heartbeats (1.5 s).
    storage.set_trial_system_attr(victim_id, HEARTBEAT_KEY, time.time() - 60)
    rerun = subprocess.run(
        search_cmd("--trials", "2", "--epochs", "1", "--storage", journal),
        env=env,
        capture_output=True,
        text=True,
    )
    assert rerun.returncode == 0, rerun.stderr
    trials = trials_of(journal, "eegnet")
    dead = trials[victim.number]
    assert dead.state == TrialState.FAIL and "no heartbeat" in dead.user_attrs["fail_reason"]
    retries = [t for t in trials if t.user_attrs.get("retry_of") == victim.number]
    assert len(retries) == 1 and retries[0].params == victim.params
    assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert finished(trials) == 2 and count(trials, TrialState.RUNNING) == 0


def test_three_workers_on_a_journal_file(tmp_path: Path) -> None:
    journal = str(tmp_path / "par.journal")
    proc = subprocess.Popen(
        search_cmd("--trials", "6", "--epochs", "1", "--workers", "3", "--storage", journal),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    trials = trials_of(journal, "eegnet")
    assert finished(trials) == 6 and count(trials, TrialState.RUNNING) == 0
    # Every trial ran in a worker process, none in the parent that spawned them.
    pids = {int(t.user_attrs["worker"].rpartition(":")[2]) for t in trials}
    assert proc.pid not in pids and len(pids) <= 3
    assert "error" not in err.lower()


@pytest.mark.postgres
def test_three_workers_on_postgresql() -> None:
    require_service(POSTGRES)
    name = f"eegtune-test-{uuid.uuid4().hex[:8]}"
    out = subprocess.run(
        search_cmd(
            "--trials",
            "6",
            "--epochs",
            "1",
            "--workers",
            "3",
            "--storage",
            POSTGRES,
            "--study",
            name,
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        assert out.returncode == 0, out.stderr
        trials = trials_of(POSTGRES, name)
        assert finished(trials) == 6 and count(trials, TrialState.RUNNING) == 0
        assert "error" not in out.stderr.lower()
    finally:
        optuna.delete_study(study_name=name, storage=open_storage(POSTGRES))


def test_postgres_urls_name_the_installed_driver(monkeypatch) -> None:
    """A bare postgresql:// means psycopg2 to SQLAlchemy 2.0 and psycopg 3 to 2.1: eegtune
    names the installed driver, so the URL works with either."""
    import importlib.util

    assert storage_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert storage_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert storage_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    only_psycopg2 = lambda name: None if name == "psycopg" else object()  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", only_psycopg2)
    assert storage_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"


@pytest.mark.parametrize("kind", ["sqlite", "mysql", "redis"])
def test_other_storages(tmp_path, tiny_data, kind: str) -> None:
    url = {"sqlite": f"sqlite:///{tmp_path}/s.db", "mysql": MYSQL, "redis": REDIS}[kind]
    if kind != "sqlite":
        require_service(url)
    name = f"eegtune-test-{uuid.uuid4().hex[:8]}"
    try:
        status = run_search(
            search_plan(url, trials=2, epochs=1, study_name=name), data_set=tiny_data
        )
        assert status.finished == 2 and finished(trials_of(url, name)) == 2
    finally:
        optuna.delete_study(study_name=name, storage=open_storage(url))


# --------------------------------------------------------------------------- failures


def test_trial_exceptions_fail_the_trial_and_many_stop_the_search(
    tmp_path, tiny_data, monkeypatch
) -> None:
    def broken_fit(*args, **kwargs):
        raise RuntimeError("simulated CUDA driver hiccup")

    monkeypatch.setattr("eegtune.training.fit", broken_fit)
    storage = str(tmp_path / "f.journal")
    with pytest.raises(SearchError, match="5 trials failed in a row .*simulated CUDA"):
        run_search(search_plan(storage, trials=20, folds=1), data_set=tiny_data)
    trials = trials_of(storage, "eegnet")
    assert len(trials) == 5 and count(trials, TrialState.FAIL) == 5
    assert trials[0].user_attrs["fail_reason"] == "RuntimeError: simulated CUDA driver hiccup"


def test_one_failure_does_not_stop_the_search(tmp_path, tiny_data, monkeypatch) -> None:
    from eegtune import training

    real_fit, calls = training.fit, []

    def flaky_fit(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("simulated out of memory")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr("eegtune.training.fit", flaky_fit)
    storage = str(tmp_path / "g.journal")
    status = run_search(search_plan(storage, trials=2, folds=1), data_set=tiny_data)
    assert status.finished == 2 and status.failed == 1


def test_diverged_trial_is_pruned_with_its_reason(tmp_path, monkeypatch) -> None:
    data = make_synthetic(n_train=160, n_test=20, seed=0)
    data.x_train[0, 0, 0, 0] = float("inf")
    storage = str(tmp_path / "d.journal")
    status = run_search(search_plan(storage, trials=1), data_set=data)
    trial = trials_of(storage, "eegnet")[0]
    assert status.pruned == 1 and trial.state == TrialState.PRUNED
    assert "non-finite" in trial.user_attrs["fail_reason"]


def test_study_made_for_another_model_is_refused(tmp_path, tiny_data) -> None:
    storage = str(tmp_path / "m.journal")
    run_search(search_plan(storage, trials=1, study_name="shared"), data_set=tiny_data)
    with pytest.raises(StudyError, match="was made for model eegnet"):
        run_search(
            search_plan(storage, model="deepconvnet", trials=1, study_name="shared"),
            data_set=tiny_data,
        )


def test_the_default_study_names_its_dataset_and_a_refusal_comes_before_the_header(
    tmp_path, lab_dir
) -> None:
    journal = str(tmp_path / "n.journal")
    quick = ["search", "--model", "eegnet", "--trials", "1", "--epochs", "1", "--device", "cpu",
             "--pruner", "none", "--storage", journal]  # fmt: skip
    tried = runner.invoke(app, [*quick, "--dataset", "synthetic"])  # the README's quick try
    assert tried.exit_code == 0, tried.output
    assert optuna.study.get_all_study_names(open_storage(journal)) == ["eegnet-synthetic"]
    assert "study 'eegnet-synthetic': eegnet on synthetic" in tried.output
    lab = runner.invoke(app, [*quick, "--data-dir", str(lab_dir), "--offline"])
    assert lab.exit_code == 0, lab.output  # the lab's data get the plain name: no clash
    assert sorted(optuna.study.get_all_study_names(open_storage(journal))) == [
        "eegnet", "eegnet-synthetic",
    ]  # fmt: skip
    # Another dataset in a named study: one line naming the study to use, and no header.
    clash = runner.invoke(app, [*quick, "--study", "eegnet", "--dataset", "synthetic"])
    assert clash.exit_code == 2, clash.output
    assert one_error_line(clash.output) == (
        "error: study 'eegnet' was made for model eegnet on bci-iiib, not eegnet on synthetic; "
        "search with --study eegnet-synthetic instead"
    )
    assert "study 'eegnet':" not in clash.output and len(trials_of(journal, "eegnet")) == 1
    own = parse_source(f"npz:{tmp_path / 'my_eeg'}")
    assert default_study_name("deepconvnet", own) == "deepconvnet-my_eeg"
    assert default_study_name("eegnet", parse_source("moabb:BNCI2014_004")) == "eegnet-BNCI2014_004"


def test_an_explicit_option_against_the_studys_keys_is_refused_before_training(tmp_path) -> None:
    journal = str(tmp_path / "k.journal")
    made = invoke_search("--trials", "1", "--epochs", "1", "--storage", journal)
    assert made.exit_code == 0, made.output  # split 0.2, seed 0, objective smoothed
    for option, value, stored in (("--val-fraction", "0.3", "0.2"), ("--split-seed", "5", "0"),
                                  ("--objective", "best", "smoothed")):  # fmt: skip
        result = invoke_search("--trials", "2", "--epochs", "1", "--storage", journal,
                               option, value)  # fmt: skip
        assert result.exit_code == 2, result.output
        assert one_error_line(result.output) == (
            f"error: study 'eegnet' was made with {option} {stored}, not {value}; drop "
            f"{option} to continue it, or choose another --study name"
        )
        assert len(trials_of(journal, "eegnet")) == 1  # nothing trained
    same = invoke_search("--trials", "2", "--epochs", "1", "--storage", journal,
                         "--val-fraction", "0.2")  # fmt: skip
    assert same.exit_code == 0, same.output  # agreeing with the study is fine
    kept = invoke_search("--trials", "3", "--epochs", "1", "--storage", journal)
    assert kept.exit_code == 0, kept.output
    assert "a 20% hold-out of the training set (split seed 0)" in kept.output
    assert len(trials_of(journal, "eegnet")) == 3


# --------------------------------------------------------------------------- bad input


def _bad_space(tmp_path: Path) -> str:
    path = tmp_path / "bad.toml"
    path.write_text("[dropout]\nlow = 0.9\nhigh = 0.1\n")
    return str(path)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--space", "{bad}"], "range is inverted"),
        (["--space", "{tmp}/missing.toml"], "search-space file not found"),
        (["--storage", "postgresql://postgres@127.0.0.1:1/test"], "cannot reach storage"),
        (["--storage", "redis://127.0.0.1:1/0"], "cannot reach storage"),
        (["--storage", "{tmp}/no/such/dir/x.journal"], "does not exist"),
        (["--storage", "ftp://example/x"], "unknown scheme"),
        (["--sampler", "gp", "--device", "cuda:9"], "device 'cuda:9'"),
    ],
)
def test_bad_search_input_is_one_line_and_creates_nothing(tmp_path, args, fragment) -> None:
    args = [a.format(bad=_bad_space(tmp_path), tmp=tmp_path) for a in args]
    before = listing(tmp_path)
    result = invoke_search(
        "--trials",
        "2",
        "--epochs",
        "1",
        *args,
        env={"EEGTUNE_STORAGE": str(tmp_path / "default.journal")},
    )
    assert result.exit_code == 2, result.output
    assert fragment in one_error_line(result.output)
    assert listing(tmp_path) == before


@pytest.mark.parametrize(("sampler", "package"), [("gp", "scipy"), ("cmaes", "cmaes")])
def test_a_sampler_without_its_package_is_refused_before_a_study_exists(
    tmp_path, monkeypatch, sampler, package
) -> None:
    # None in sys.modules makes the import raise ImportError, as on a machine without it
    monkeypatch.setitem(sys.modules, package, None)
    journal = tmp_path / "s.journal"
    result = invoke_search(
        "--trials", "1", "--epochs", "1", "--sampler", sampler, "--storage", str(journal)
    )
    assert result.exit_code == 2, result.output
    assert f"needs {package}" in one_error_line(result.output)
    assert not journal.exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--model", "resnet"], "resnet"),
        (["--model", "eegnet", "--trials", "0"], "greater than or equal to 1"),
    ],
)
def test_bad_model_or_trials_exit_2(tmp_path, args, fragment) -> None:
    result = runner.invoke(
        app,
        ["search", "--dataset", "synthetic", *args],
        env={"EEGTUNE_STORAGE": str(tmp_path / "x.journal")},
    )
    assert result.exit_code == 2 and fragment in result.output
    assert listing(tmp_path) == []


def test_workers_share_gpus_round_robin(monkeypatch) -> None:
    from eegtune.search.workers import worker_device as _worker_device

    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    assert [_worker_device("auto", i) for i in range(5)] == [
        "cuda:0",
        "cuda:1",
        "cuda:0",
        "cuda:1",
        "cuda:0",
    ]
    assert _worker_device("cuda:1", 3) == "cuda:1"
    monkeypatch.setattr("torch.cuda.device_count", lambda: 0)
    assert _worker_device("auto", 3) == "cpu"


def test_search_with_amp_records_it(tmp_path, tiny_data) -> None:
    storage = str(tmp_path / "amp.journal")
    status = run_search(search_plan(storage, trials=1, amp=True), data_set=tiny_data)
    assert status.finished == 1
    assert trials_of(storage, "eegnet")[0].user_attrs["device"] == "cpu amp"


def test_sigint_to_the_parent_stops_all_workers_cleanly(tmp_path: Path) -> None:
    """`kill -INT` of the parent alone (no terminal): workers fail their trials and exit."""
    journal = str(tmp_path / "mw.journal")
    proc = subprocess.Popen(
        search_cmd(
            "--trials",
            "4",
            "--epochs",
            "300",
            "--workers",
            "2",
            "--pruner",
            "none",
            "--storage",
            journal,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until_training(journal, proc, n=2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "interrupted" in out + err
    trials = trials_of(journal, "eegnet")
    assert count(trials, TrialState.RUNNING) == 0
    assert count(trials, TrialState.FAIL) == 2
    assert all(
        "interrupted" in t.user_attrs["fail_reason"] for t in trials if t.state == TrialState.FAIL
    )


def test_storage_lost_mid_search_is_one_line(tmp_path, tiny_data, monkeypatch) -> None:
    import sqlalchemy.exc

    serve_synthetic(monkeypatch, tiny_data)
    storage = str(tmp_path / "lost.journal")
    run_search(search_plan(storage, trials=1), data_set=tiny_data)

    def gone(self, *args, **kwargs):
        raise sqlalchemy.exc.OperationalError("SELECT", {}, Exception("server closed connection"))

    monkeypatch.setattr(optuna.study.Study, "ask", gone)
    result = invoke_search("--trials", "3", "--epochs", "1", "--storage", storage)
    assert result.exit_code == 1, result.output
    error = one_error_line(result.output)
    assert "lost the storage" in error and "resume" in error
    assert "Traceback" not in result.output


def test_timeout_stops_starting_trials(tmp_path, tiny_data) -> None:
    storage = str(tmp_path / "t.journal")
    status = run_search(search_plan(storage, trials=50, timeout=1e-3), data_set=tiny_data)
    assert status.finished < 50 and status.running == 0 and status.timed_out


def test_timeout_cuts_the_running_trial_and_says_so(tmp_path: Path, monkeypatch) -> None:
    """--timeout bounds the whole search: a trial that could never finish in time is cut
    after an epoch, recorded as failed with its curves, and the summary says how to resume."""
    journal = str(tmp_path / "t.journal")
    # A clock that moves 0.25 s each time the search reads it: the first trial starts, and
    # the deadline passes after a few epochs however fast or slow this machine is.
    ticks = iter(range(10**9))

    def clock() -> float:
        return 1_000_000.0 + 0.25 * next(ticks)

    fake = types.SimpleNamespace(**{**vars(time), "time": clock})  # the rest is the real module
    monkeypatch.setattr(run_module, "time", fake)
    monkeypatch.setattr(objective_module, "time", fake)
    result = invoke_search(
        "--trials", "2", "--epochs", "100000", "--timeout", "1", "--storage", journal
    )
    assert result.exit_code == 3, result.output  # short of the target: not a success
    assert "timeout: 0/2 finished" in result.output
    assert "2 trial(s) remain: run the same command again" in result.output
    (trial,) = [t for t in trials_of(journal, "eegnet") if t.state != TrialState.WAITING]
    assert trial.state == TrialState.FAIL  # the rest of the portfolio is still queued
    epochs = trial.user_attrs["epochs_trained"]
    assert 1 <= epochs < 100000 and len(trial.user_attrs["history"]["val_acc"]) == epochs
    assert trial.user_attrs["fail_reason"] == f"cut by --timeout after epoch {epochs} of 100000"
    assert trial.user_attrs["status"] == "timeout"


def test_evaluate_needs_a_study_name_when_several_exist(tmp_path, tiny_data) -> None:
    storage = str(tmp_path / "two.journal")
    for name in ("a", "b"):
        run_search(search_plan(storage, trials=1, study_name=name), data_set=tiny_data)
    result = runner.invoke(app, ["evaluate", "--storage", storage])
    assert result.exit_code == 2 and "choose a study with --study" in result.output
    assert "a, b" in result.output


# Proposed by a fresh single-worker study (seed 7, 4 trials) on eegtune before the move into
# subpackages (commit 4944d18): the restructure must change no sampled configuration. Since
# the small-budget policy (issue 29) that is the ``tpe-classic`` sampler; the default ``tpe``
# draws the same random start-up (3 trials of a 4-trial target) and models the 4th.
SEED_7_PROPOSALS = [
    {
        "activation": "elu",
        "dropout": 0.5381285359257748,
        "lr": 0.021268102540873187,
        "batch_size": 32,
        "weight_decay": 7.053357875945725e-05,
    },
    {
        "activation": "elu",
        "dropout": 0.10713093235872324,
        "lr": 0.0004133777846792111,
        "batch_size": 256,
        "weight_decay": 0.001299401685374219,
    },
    {
        "activation": "relu",
        "dropout": 0.4890999634044657,
        "lr": 0.001317268256797646,
        "batch_size": 256,
        "weight_decay": 0.015416725898811235,
    },
    {
        "activation": "relu",
        "dropout": 0.2169371755906484,
        "lr": 0.00011889016847948807,
        "batch_size": 256,
        "weight_decay": 0.09502503839841106,
    },
]


@pytest.mark.parametrize(("sampler", "same"), [("tpe-classic", 4), ("tpe", 3)])
def test_a_seeded_study_proposes_the_same_trials_as_before(tmp_path: Path, sampler, same) -> None:
    storage = str(tmp_path / "p.journal")
    settings = plan_search(
        model="eegnet",
        study_name="eegnet", trials=4, epochs=1, storage=storage, dataset="synthetic", device="cpu",
        seed=7, sampler=sampler, portfolio=False, folds=1,
    )  # fmt: skip
    run_search(settings, data_set=make_synthetic(n_train=120, n_test=20, seed=0))
    study = optuna.load_study(study_name="eegnet", storage=open_storage(storage))
    proposed = [t.params for t in sorted(study.trials, key=lambda t: t.number)]
    assert proposed[:same] == [pytest.approx(p) for p in SEED_7_PROPOSALS[:same]]
    assert (proposed[same:] == []) == (same == 4)  # the default's 4th is TPE's own proposal


@pytest.mark.parametrize(
    ("sampler", "pruner"),
    [("random", "median"), ("cmaes", "patient"), ("gp", "none"), ("tpe", "hyperband")],
)
def test_every_sampler_and_pruner_runs_a_short_real_search(tmp_path, sampler, pruner) -> None:
    if sampler == "gp":
        pytest.importorskip("scipy", reason="the gp sampler needs scipy")
    storage = str(tmp_path / "s.journal")
    status = run_search(
        search_plan(storage, trials=4, epochs=3, sampler=sampler, pruner=pruner),
        data_set=make_synthetic(n_train=120, n_test=20, seed=0),
    )
    trials = trials_of(storage, "eegnet")
    assert status.finished == 4 and finished(trials) == 4
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4  # really sampled
