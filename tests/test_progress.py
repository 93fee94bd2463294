"""What users see while work runs: the live view in plain mode, evaluate's progress, the ETA."""

from __future__ import annotations

import re
import time
import types
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from eegtune.cli.app import app
from eegtune.search.progress import EtaSmoother, SearchStatus, epochs_left, snapshot
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
    name = "eegnet-synthetic"  # the default study name on synthetic data
    study = optuna.load_study(study_name=name, storage=open_storage(env["EEGTUNE_STORAGE"]))
    trial = study.best_trial
    header = result.output.index(f"retraining study {name!r} (eegnet, synthetic)")
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


def test_eta_counts_down_moves_a_third_to_each_estimate_and_stays_above_half() -> None:
    smooth = EtaSmoother()
    assert smooth(SearchStatus(target=10, eta=100.0), now=0.0).eta == 100.0
    wobble = smooth(SearchStatus(target=10, eta=140.0), now=10.0).eta  # pace estimate jumped
    assert wobble == (2 * 90.0 + 140.0) / 3  # mostly the clock, a third the fresh estimate
    late = smooth(SearchStatus(target=10, eta=60.0), now=500.0).eta  # long after: counted out
    assert late == 30.0  # never below half the fresh estimate: no 0:00 while work remains
    assert smooth(SearchStatus(target=10, complete=10, eta=0.0), now=501.0).eta == 0.0


def _trial(state, epochs: int):
    return optuna.trial.create_trial(
        state=state, params={}, distributions={},
        value=0.5 if state == TrialState.COMPLETE else None,
        intermediate_values={e: 0.5 for e in range(1, epochs + 1)},
    ) if state != TrialState.RUNNING else types.SimpleNamespace(
        state=state, intermediate_values={e: 0.5 for e in range(1, epochs + 1)}
    )  # fmt: skip


def test_epochs_left_come_from_what_finished_trials_took_the_pruner_included() -> None:
    finished = [_trial(TrialState.COMPLETE, 30), _trial(TrialState.PRUNED, 6)]  # 18 a trial
    running = [_trial(TrialState.RUNNING, 4), _trial(TrialState.RUNNING, 25)]
    # 2 running: 14 and at least 1 left; 6 more to start of 10: 18 each
    assert epochs_left([*finished, *running], target=10, epochs=300) == 14 + 1 + 6 * 18
    assert epochs_left([_trial(TrialState.RUNNING, 2)], target=3, epochs=50) == 48 + 2 * 50


def test_a_search_estimate_uses_the_epoch_rate_and_never_reads_zero_with_work_left(
    tmp_path,
) -> None:
    study = optuna.create_study(storage=open_storage(str(tmp_path / "e.journal")))
    study.add_trial(_trial(TrialState.COMPLETE, 10))
    start = time.time()
    status = snapshot(study, 4, start - 100.0, 0, epochs=10, epochs_at_start=0)
    assert status.epochs_done == 10 and status.epochs_left == 30
    assert status.eta == pytest.approx(300.0, rel=0.01)  # 10 s an epoch, 30 epochs left
    study.add_trial(_trial(TrialState.COMPLETE, 10))
    study.add_trial(_trial(TrialState.COMPLETE, 10))
    nearly = snapshot(study, 4, start - 100.0, 0, epochs=10, epochs_at_start=30)
    assert nearly.epochs_done == 0 and nearly.eta is None  # nothing trained in this run yet
    study.enqueue_trial({})
    running = study.ask()
    running.report(0.5, 1)
    last = snapshot(study, 4, start - 100.0, 0, epochs=10, epochs_at_start=30)
    assert last.epochs_left == 9 and last.eta >= 100.0  # at least one epoch's time, never 0


def test_compare_clock_spans_every_cell_and_the_evaluations_timed_per_network(tmp_path) -> None:
    from eegtune.results.compare import RETRAIN_COST, CompareClock, cell_plans

    storage = str(tmp_path / "c.journal")
    cells = cell_plans(["eegnet", "deepconvnet"], ["relu"], "c", trials=4, epochs=20,
                       storage=storage, dataset="synthetic", device="cpu")  # fmt: skip
    clock = CompareClock(cells, seeds=2, baseline=True, started=1000.0)
    assert clock.eta() is None  # before the first epoch
    # nothing searched yet: 2 cells x 4 trials x 20 epochs + 2 cells x 2 configs x 2 seeds x 20
    assert clock.totals() == (0, 2 * 4 * 20 + 2 * 2 * 2 * 20)
    first = SearchStatus(target=4, epochs_done=30, epochs_left=10.0, elapsed=60.0)
    clock.search(cells[0].name, first)  # EEGNet: 2 s an epoch, 10 epochs a trial
    done, left = clock.totals()
    assert (done, left) == (30, 10 + 4 * 20 + 2 * 2 * 10 + 2 * 2 * 20)
    # DeepConvNet is not timed yet: 2.9 times EEGNet's rate (its registry epoch_cost)
    expected = 2.0 * (10 + RETRAIN_COST * 2 * 2 * 10) + 5.8 * (4 * 20 + RETRAIN_COST * 2 * 2 * 20)
    assert clock.eta() == pytest.approx(expected)
    second = SearchStatus(target=4, epochs_done=40, epochs_left=0.0, elapsed=400.0)
    clock.search(cells[0].name, SearchStatus(target=4, epochs_done=40, epochs_left=0.0,
                                             elapsed=80.0))  # fmt: skip
    clock.search(cells[1].name, second)  # DeepConvNet measured: 10 s an epoch
    clock.evaluations([("c-eegnet-relu/tuned", 8), ("c-deepconvnet-relu/tuned", 12)])
    assert clock.totals() == (80, 2 * 8 + 2 * 12)
    assert clock.eta() == pytest.approx(RETRAIN_COST * (2.0 * 16 + 10.0 * 24))
    for _ in range(16):
        clock.evaluated_epoch("c-eegnet-relu/tuned")
    assert clock.eta() == pytest.approx(RETRAIN_COST * 10.0 * 24)  # what is left: DeepConvNet
    for _ in range(24):
        clock.evaluated_epoch("c-deepconvnet-relu/tuned")
    assert clock.eta() == 0.0 and clock.fraction() == 1.0


def test_compare_clock_counts_the_races_before_the_evaluations(tmp_path) -> None:
    from eegtune.names import RACE_SPLITS
    from eegtune.results.compare import RETRAIN_COST, CompareClock, cell_plans

    storage = str(tmp_path / "c.journal")
    hold_out, folds = (cell_plans(["eegnet"], ["relu"], f"c{k}", trials=4, epochs=20,
                                  storage=storage, dataset="synthetic", device="cpu",
                                  folds=k)[0] for k in (1, 5))  # fmt: skip
    cells = [hold_out, folds]
    clock = CompareClock(cells, seeds=2, baseline=True, race=3, started=1000.0)
    searched = 2 * 4 * 20
    retrained = 2 * 2 * 2 * 20
    # hold-out: 3 finalists on RACE_SPLITS fresh hold-outs; 5 folds: 4/5 of the training set
    # each, in hold-out epochs of 80% of it
    raced = 3 * RACE_SPLITS * 20 + 3 * 5 * (4 / 5 / 0.8) * 20
    assert clock.totals() == (0, pytest.approx(searched + raced + retrained))
    for cell in cells:
        clock.search(cell.name, SearchStatus(target=4, epochs_done=80, epochs_left=0.0,
                                             elapsed=80.0))  # fmt: skip
    clock.race_done(hold_out.name, 100.0)  # what its race trained
    assert clock.totals() == (260, pytest.approx(3 * 5 * 20 + retrained))
    assert clock.eta() == pytest.approx(1.0 * (3 * 5 * 20 + RETRAIN_COST * retrained))
    clock.race_done(folds.name, 290.0)
    clock.evaluations([(f"{hold_out.name}/tuned", 8)])
    assert clock.totals() == (550, 2 * 8)  # the races are done: only the evaluation is left


def test_flags_render_as_flags_not_bool_values() -> None:
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    offline = next(line for line in result.output.splitlines() if "--offline" in line)
    assert "--no-offline" in offline and "<bool>" not in offline
