"""What users see while work runs: the live view in plain mode, evaluate's progress, the ETA."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from eegtune.cli.app import app
from eegtune.search.progress import EtaSmoother, SearchStatus
from eegtune.search.storages import open_storage

runner = CliRunner()
PLAIN = {"EEGTUNE_PROGRESS_INTERVAL": "0.2", "COLUMNS": "200"}


def test_search_without_a_terminal_prints_the_running_trial(tmp_path: Path) -> None:
    env = {**PLAIN, "EEGTUNE_STORAGE": str(tmp_path / "s.journal")}
    result = runner.invoke(
        app,
        ["search", "--model", "eegnet", "--dataset", "synthetic", "--trials", "1",
         "--epochs", "6", "--device", "cpu"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    running = re.findall(
        r"running trial 0: epoch (\d)/6, val [\d.]+% \(best single epoch [\d.]+%\), (\w+)",
        result.output,
    )
    assert running, result.output
    assert {activation for _, activation in running} <= {"relu", "leaky_relu", "elu"}
    assert "next pruning check at epoch" in result.output  # Hyperband's rung, by default
    assert re.search(r"^trials  0/1 finished .* 1 running", result.output, flags=re.M)
    assert "done: 1/1 finished" in result.output
    # The study's score is named wherever it is shown: the live line and the final table.
    assert re.search(r"^best    smoothed validation accuracy \(3-epoch mean\) [\d.]+% \(trial 0\)",
                     result.output, flags=re.M)  # fmt: skip
    assert "smoothed validation accuracy (3-epoch mean)" in result.output.split("best trials")[-1]


def test_evaluate_without_a_terminal_prints_progress_per_seed(tmp_path: Path) -> None:
    env = {**PLAIN, "EEGTUNE_STORAGE": str(tmp_path / "s.journal")}
    search = ["search", "--model", "eegnet", "--dataset", "synthetic", "--trials", "1",
              "--epochs", "4", "--device", "cpu", "--pruner", "none"]  # fmt: skip
    assert runner.invoke(app, search, env=env).exit_code == 0
    result = runner.invoke(
        app, ["evaluate", "--seeds", "2", "--models-dir", str(tmp_path / "m")], env=env
    )
    assert result.exit_code == 0, result.output
    # Before the first seed: which configuration is retrained, with its settings and epochs.
    study = optuna.load_study(study_name="eegnet", storage=open_storage(env["EEGTUNE_STORAGE"]))
    trial = study.best_trial
    header = result.output.index("retraining study 'eegnet' (eegnet, synthetic)")
    assert header < result.output.index("seed 0 test accuracy")
    assert "seeds 0..1, each tested once" in result.output
    row = re.search(r"best │\s+0 │\s+(\d+) │\s+(\S+) │\s+([\d.]+)", result.output)
    assert row, result.output
    epochs = trial.user_attrs["best_epoch"]
    assert (int(row[1]), row[2], float(row[3])) == (
        epochs,
        trial.params["activation"],
        pytest.approx(trial.params["dropout"], rel=1e-2),
    )
    # Progress names the configuration by its trial, so "best" never reads as the best seed.
    assert re.search(r"trial 0 \(best\): seed [01] epoch \d/\d; overall \d+/\d+ epochs",
                     result.output)  # fmt: skip
    assert re.search(r"trial 0 \(best\): seed 0 test accuracy [\d.]+%", result.output)
    assert re.search(r"trial 0 \(best\): seed 1 test accuracy [\d.]+%", result.output)


def test_eta_counts_down_between_trials_and_moves_halfway_after_one() -> None:
    smooth = EtaSmoother()
    status = SearchStatus(target=10, complete=1, eta=100.0)
    assert smooth(status, now=0.0).eta == 100.0
    wobble = SearchStatus(target=10, complete=1, eta=140.0)  # pace estimate jumped
    assert smooth(wobble, now=10.0).eta == 90.0  # the clock counts down, not the jump
    done = SearchStatus(target=10, complete=2, eta=60.0)
    assert smooth(done, now=20.0).eta == 0.5 * 80.0 + 0.5 * 60.0
    finished = SearchStatus(target=10, complete=10, eta=0.0)
    assert smooth(finished, now=21.0).eta == 0.0


def test_flags_render_as_flags_not_bool_values() -> None:
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    offline = next(line for line in result.output.splitlines() if "--offline" in line)
    assert "--no-offline" in offline and "<bool>" not in offline
