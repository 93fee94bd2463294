"""The budget a user has: start-up sized to the target, the portfolio first, scoring sized to
the data, a study that stops when flat, and the small dataset (issue 29's policy)."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from eegtune.cli.app import app
from eegtune.data.loading import load_dataset
from eegtune.data.realistic import SMALL_TEST_TRIALS, SMALL_TRAIN_TRIALS, make_small
from eegtune.names import HOLDOUT_MIN_VAL, LAB_SETTINGS, PORTFOLIOS, SMALL_DATA_FOLDS
from eegtune.search.plan import sized_folds
from eegtune.search.portfolio import QUEUED_KEY, enqueue_portfolio, portfolio_configs
from eegtune.search.run import run_search
from eegtune.search.samplers import make_sampler, sampling_note, startup_trials
from eegtune.search.space import load_space
from eegtune.search.stopping import STOPPED_KEY, flat_verdict, regret_bound
from eegtune.search.study import trial_source
from tests.helpers import search_plan, trials_of

SPACE = load_space("eegnet")
TWO = [
    {"activation": "elu", "dropout": 0.25, "lr": 0.003, "batch_size": 32, "weight_decay": 1e-4},
    {"activation": "relu", "dropout": 0.1, "lr": 0.0005, "batch_size": 64, "weight_decay": 1e-5},
]


@pytest.fixture
def two_configs(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The EEGNet portfolio replaced by two known configurations."""
    monkeypatch.setitem(PORTFOLIOS, "eegnet", [dict(c) for c in TWO])
    return TWO


# ------------------------------------------------------------------------ sampler policy


@pytest.mark.parametrize(("target", "startup"), [(1, 3), (5, 3), (12, 3), (16, 4), (20, 5),
                                                 (40, 5), (400, 5), (None, 5)])  # fmt: skip
def test_startup_trials_follow_the_target(target, startup) -> None:
    assert startup_trials(target) == startup
    sampler = make_sampler("tpe", 0, target)
    inner = sampler.inner  # the per-trial seed stream wraps it
    assert isinstance(inner, optuna.samplers.TPESampler)
    assert inner._n_startup_trials == startup
    assert inner._multivariate


def test_classic_tpe_keeps_ten_random_trials_whatever_the_target() -> None:
    inner = make_sampler("tpe-classic", 0, 8).inner
    assert inner._n_startup_trials == 10 and not inner._multivariate


def test_a_target_too_small_for_tpe_gets_a_note() -> None:
    assert "all random start-up" in sampling_note("tpe", 3)
    assert sampling_note("tpe", 4) == ""
    assert sampling_note("random", 3) == ""


def test_the_sampler_learns_within_twenty_trials_and_reproduces_its_trials() -> None:
    """From trial 6 on (start-up 5 of 20) TPE proposes near the best region; two studies with
    one seed propose the same trials."""

    def objective(trial: optuna.Trial) -> float:
        params = SPACE.sample(trial)
        return -abs(math.log10(params["lr"]) + 2.5)  # best at lr = 10**-2.5

    runs = []
    for _ in range(2):
        study = optuna.create_study(direction="maximize", sampler=make_sampler("tpe", 3, 20))
        study.optimize(objective, n_trials=20)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]
    late = [abs(math.log10(p["lr"]) + 2.5) for p in runs[0][10:]]
    early = [abs(math.log10(p["lr"]) + 2.5) for p in runs[0][:5]]
    assert np.median(late) < np.median(early)


# ------------------------------------------------------------------------------ portfolio


def test_portfolio_configs_leave_out_the_lab_and_repeats_and_fix_the_activation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab = {**LAB_SETTINGS, "activation": "relu"}
    monkeypatch.setitem(PORTFOLIOS, "eegnet", [TWO[0], lab, TWO[0], TWO[1]])
    assert portfolio_configs("eegnet", SPACE) == TWO
    fixed = portfolio_configs("eegnet", SPACE.fixing("activation", "relu"), "relu")
    assert fixed == [{**TWO[0], "activation": "relu"}, TWO[1]]  # TWO[1] is relu already


def test_portfolio_is_queued_once_and_requeued_only_when_it_failed(two_configs) -> None:
    study = optuna.create_study(direction="maximize")
    assert enqueue_portfolio(study, "eegnet", SPACE, 10, None) == 2
    assert enqueue_portfolio(study, "eegnet", SPACE, 10, None) == 0  # a rerun, a second worker
    first = study.ask()
    study.tell(first, state=TrialState.FAIL)  # Ctrl-C during the first portfolio trial
    assert study.user_attrs[QUEUED_KEY] == two_configs
    assert enqueue_portfolio(study, "eegnet", SPACE, 10, None) == 1
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert sorted(t.user_attrs["portfolio"] for t in waiting) == [0, 1]


def test_portfolio_respects_the_target_and_a_searched_study(two_configs) -> None:
    study = optuna.create_study(direction="maximize")
    assert enqueue_portfolio(study, "eegnet", SPACE, 1, None) == 1  # room for one
    searched = optuna.create_study(direction="maximize")
    searched.optimize(lambda t: SPACE.sample(t)["dropout"], n_trials=1)
    assert enqueue_portfolio(searched, "eegnet", SPACE, 10, None) == 0
    assert QUEUED_KEY not in searched.user_attrs


def test_search_starts_with_the_portfolio_marked_and_never_repeats_it(
    tmp_path, tiny_data, two_configs
) -> None:
    storage = str(tmp_path / "p.journal")
    run_search(search_plan(storage, trials=3, folds=1, portfolio=True), data_set=tiny_data)
    run_search(search_plan(storage, trials=5, folds=1, portfolio=True), data_set=tiny_data)
    trials = trials_of(storage, "eegnet")
    assert len(trials) == 5
    assert [t.params for t in trials[:2]] == two_configs
    assert [trial_source(t) for t in trials] == ["portfolio 1", "portfolio 2", *["sampler"] * 3]


def test_a_portfolio_trial_queued_twice_by_two_commands_trains_once(
    tmp_path, tiny_data, two_configs
) -> None:
    storage = str(tmp_path / "r.journal")
    run_search(search_plan(storage, trials=1, folds=1, portfolio=True), data_set=tiny_data)
    study = optuna.load_study(study_name="eegnet", storage=storage_of(storage))
    for _ in range(2):  # portfolio 2 queued by two commands at once (trial 0 left it no room)
        study.enqueue_trial(two_configs[1], user_attrs={"portfolio": 1})
    run_search(search_plan(storage, trials=3, folds=1, portfolio=True), data_set=tiny_data)
    trials = trials_of(storage, "eegnet")
    repeats = [t for t in trials if t.state == TrialState.FAIL]
    assert len(repeats) == 1 and repeats[0].user_attrs["fail_reason"].startswith("repeat:")
    done = [t for t in trials if t.state != TrialState.FAIL]
    assert [trial_source(t) for t in done] == ["portfolio 1", "portfolio 2", "sampler"]


def test_a_lost_portfolio_trial_is_retried_once_and_keeps_its_mark(
    tmp_path, tiny_data, two_configs
) -> None:
    from eegtune.search.workers import fail_stale_trials

    storage = str(tmp_path / "l.journal")
    run_search(search_plan(storage, trials=1, folds=1, portfolio=True), data_set=tiny_data)
    study = optuna.load_study(study_name="eegnet", storage=storage_of(storage))
    enqueue_portfolio(study, "eegnet", SPACE, 3, None)  # a later run queues portfolio 2 ...
    lost = study.ask()  # ... and its worker is SIGKILLed: RUNNING, no heartbeat since
    assert lost.user_attrs["portfolio"] == 1
    assert fail_stale_trials(study, storage_of(storage), grace=0.0) == [lost.number]
    run_search(search_plan(storage, trials=3, folds=1, portfolio=True), data_set=tiny_data)
    done = [t for t in trials_of(storage, "eegnet") if t.state != TrialState.FAIL]
    assert [trial_source(t) for t in done] == ["portfolio 1", "portfolio 2", "sampler"]
    assert done[1].user_attrs["retry_of"] == lost.number


def test_no_portfolio_leaves_it_out_and_the_summary_marks_the_source(
    tmp_path, two_configs, monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # the whole table on one line
    storage = str(tmp_path / "n.journal")
    run_search(search_plan(storage, trials=1, portfolio=False), data_set=make_small(0))
    assert trial_source(trials_of(storage, "eegnet")[0]) == "sampler"
    result = CliRunner().invoke(app, ["search", "--model", "eegnet", "--trials", "1", "--epochs",
                                      "1", "--dataset", "small", "--storage",
                                      str(tmp_path / "c.log"), "--device", "cpu", "--folds",
                                      "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "portfolio 1" in result.output  # the best-trials table's "from" column
    assert "note: a new study" not in result.output  # --folds 1 given: no sizing


def test_a_compare_cell_queues_the_portfolio_after_the_baseline_and_the_report_marks_it(
    tmp_path, tiny_data, two_configs
) -> None:
    from eegtune.results.compare import cell_plans, search_cell

    storage = str(tmp_path / "c.journal")
    (cell,) = cell_plans(["eegnet"], ["elu"], "c", trials=4, epochs=1, storage=storage,
                         dataset="synthetic", device="cpu", folds=1)  # fmt: skip
    search_cell(cell, baseline=True, data_set=tiny_data, storage=storage_of(storage))
    trials = trials_of(storage, "c-eegnet-elu")
    assert [trial_source(t) for t in trials] == [
        "lab's settings", "portfolio 1", "portfolio 2", "sampler"
    ]
    assert [t.params for t in trials[1:3]] == [{**c, "activation": "elu"} for c in two_configs]
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", "--storage", storage, "--out", str(out),
                                      "--top", "4"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = (out / "best_trials.csv").read_text().splitlines()
    assert rows[0].endswith(",source")
    assert sorted(r.rsplit(",", 1)[1] for r in rows[1:]) == [
        "lab's settings", "portfolio 1", "portfolio 2", "sampler"
    ]


def test_the_report_headline_names_a_portfolio_or_lab_trial() -> None:
    from eegtune.results.report import _headline_html

    row = {"study": "s", "model": "eegnet", "activation": "elu", "objective": "smoothed",
           "val_acc": 0.8, "trial": 2, "test_mean": None, "test_std": None, "test_seeds": 0,
           "chance": None}  # fmt: skip
    assert "<td>2 (portfolio 2)</td>" in _headline_html([{**row, "source": "portfolio 2"}])
    lab = _headline_html([{**row, "source": "lab's settings"}])
    assert "<td>2 (lab&#x27;s settings)</td>" in lab
    assert "<td>2</td>" in _headline_html([{**row, "source": "sampler"}])


def test_compare_says_the_mean_gain_over_the_activations_with_its_interval() -> None:
    from types import SimpleNamespace

    from eegtune.results.compare import Cell, mean_gains

    def cell(activation: str, tuned: list[float], lab: list[float] | None) -> Cell:
        seen = SimpleNamespace(by_seed=dict(enumerate(tuned)))
        base = None if lab is None else SimpleNamespace(by_seed=dict(enumerate(lab)))
        return Cell("eegnet", activation, f"c-{activation}", tuned=seen, baseline=base)  # type: ignore[arg-type]

    cells = [cell("relu", [0.8, 0.82, 0.84], [0.7, 0.7, 0.7]),
             cell("elu", [0.7, 0.72, 0.74], [0.7, 0.7, 0.7]),
             cell("leaky_relu", [0.9, 0.9, 0.9], None)]  # fmt: skip
    (gain,) = mean_gains(cells)
    assert gain.activations == 2 and gain.difference.n == 3
    assert gain.difference.mean == pytest.approx(0.07)  # (0.10 + 0.0, 0.12 + 0.02, ...) / 2
    assert gain.difference.low < 0.07 < gain.difference.high
    assert gain.text.startswith("tuned vs the lab's settings, mean over 2 activation(s): +7.0 [")


# ------------------------------------------------------------------------- sized scoring


def test_scoring_follows_the_size_of_the_training_set() -> None:
    big = np.repeat([0, 1], 540)  # a 20% hold-out of 216 trials
    assert sized_folds(big, 0.2) == 1
    small = np.repeat([0, 1], SMALL_TRAIN_TRIALS // 2)  # a hold-out of 32
    assert round(len(small) * 0.2) < HOLDOUT_MIN_VAL
    assert sized_folds(small, 0.2) == SMALL_DATA_FOLDS
    assert sized_folds(np.array([0, 0, 0, 1, 1]), 0.2) == 2  # the smallest class bounds K
    assert sized_folds(np.array([0, 0, 1]), 0.2) == 1  # not even 2 folds fit


def test_the_scoring_chosen_for_small_data_is_stored_and_reused(tmp_path) -> None:
    storage = str(tmp_path / "s.journal")
    data = make_small(0)
    run_search(search_plan(storage, trials=1, dataset="small", portfolio=False), data_set=data)
    study = optuna.load_study(study_name="eegnet", storage=storage_of(storage))
    assert study.user_attrs["folds"] == SMALL_DATA_FOLDS
    assert len(trials_of(storage, "eegnet")[0].user_attrs["fold_values"]) == SMALL_DATA_FOLDS
    # a later run without --folds keeps the study's scoring, and an explicit other one is refused
    run_search(search_plan(storage, trials=2, dataset="small", portfolio=False), data_set=data)
    assert [len(t.user_attrs["fold_values"]) for t in trials_of(storage, "eegnet")] == [5, 5]
    with pytest.raises(Exception, match="folds"):
        run_search(
            search_plan(storage, trials=3, dataset="small", folds=1, portfolio=False), data_set=data
        )


def test_an_explicit_hold_out_on_small_data_is_kept(tmp_path) -> None:
    storage = str(tmp_path / "h.journal")
    data = make_small(0)
    run_search(search_plan(storage, trials=1, folds=1, portfolio=False), data_set=data)
    run_search(search_plan(storage, trials=2, portfolio=False), data_set=data)
    assert all("fold_values" not in t.user_attrs for t in trials_of(storage, "eegnet"))


def storage_of(path: str):
    from eegtune.search.storages import open_storage

    return open_storage(path)


# ------------------------------------------------------------------------------ stopping


def _trials(configs: list[dict], values: list[float]) -> list[optuna.trial.FrozenTrial]:
    dists = SPACE.distributions()
    return [optuna.trial.create_trial(params=c, distributions=dists, value=v)
            for c, v in zip(configs, values, strict=True)]  # fmt: skip


def _random_configs(n: int, seed: int) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(SPACE.sample(trial))
        study.tell(trial, 0.0)
    return out


def test_a_flat_study_stops_and_an_improving_one_does_not() -> None:
    rng = np.random.default_rng(0)
    configs = _random_configs(16, 0)
    flat = _trials(configs, list(0.75 + rng.normal(0, 0.002, 16)))
    verdict = flat_verdict(SPACE, flat, n_scored=216)
    assert verdict is not None and verdict.stop, verdict
    assert "stopped early" in verdict.reason and "16 completed trials" in verdict.reason
    # scores that climb steeply with the learning rate, its upper end unexplored
    low = [{**c, "lr": min(c["lr"], 1e-3)} for c in configs]
    rising = _trials(low, [0.5 + 0.1 * (math.log10(c["lr"]) + 5) for c in low])
    verdict = flat_verdict(SPACE, rising, n_scored=216)
    assert verdict is not None and not verdict.stop, verdict
    assert regret_bound(SPACE, low, [t.value for t in rising]) > verdict.error


def test_no_verdict_before_enough_trials() -> None:
    few = _trials(_random_configs(5, 1), [0.7] * 5)
    assert flat_verdict(SPACE, few, n_scored=216) is None


def test_stop_when_flat_ends_a_flat_study_and_says_why(tmp_path) -> None:
    storage, data = str(tmp_path / "f.journal"), make_small(0)
    small = {"dataset": "small", "folds": 1, "portfolio": False}
    run_search(search_plan(storage, trials=1, **small), data_set=data)
    study = optuna.load_study(study_name="eegnet", storage=storage_of(storage))
    first = study.trials[0].value
    rng = np.random.default_rng(1)
    for trial in _trials(_random_configs(12, 2), list(first + rng.normal(0, 0.001, 12))):
        study.add_trial(trial)
    status = run_search(search_plan(storage, trials=40, stop_when_flat=True, **small),
                        data_set=data)  # fmt: skip
    assert status.finished == 13 and "stopped early" in status.stopped
    assert "stopped early" in study.user_attrs[STOPPED_KEY]
    result = CliRunner().invoke(app, ["search", "--model", "eegnet", "--trials", "40", "--epochs",
                                      "1", "--storage", storage, "--study", "eegnet", "--device",
                                      "cpu", "--dataset", "small", "--stop-when-flat"])  # fmt: skip
    assert result.exit_code == 0, result.output  # stopped on purpose: not short of its target
    # a new study would be scored on folds; this one keeps the hold-out it was made with
    assert "note: a new study on these 160 training trials is scored on 5 stratified folds: a " \
        "20% hold-out would hold 32, fewer than 100" in result.output
    assert "scored on a 20% hold-out" in result.output
    assert "stopped early (--stop-when-flat)" in result.output
    assert "done: 13/40 finished" in result.output


def test_without_stop_when_flat_the_same_study_goes_on(tmp_path) -> None:
    storage, data = str(tmp_path / "g.journal"), make_small(0)
    small = {"dataset": "small", "folds": 1, "portfolio": False}
    run_search(search_plan(storage, trials=1, **small), data_set=data)
    study = optuna.load_study(study_name="eegnet", storage=storage_of(storage))
    for trial in _trials(_random_configs(8, 3), [study.trials[0].value] * 8):
        study.add_trial(trial)
    status = run_search(search_plan(storage, trials=10, **small), data_set=data)
    assert status.finished == 10 and status.stopped == ""


# --------------------------------------------------------------------------- small dataset


def test_the_small_dataset_is_one_short_seeded_session() -> None:
    data = load_dataset("small", "data")
    assert len(data.y_train) == SMALL_TRAIN_TRIALS and len(data.y_test) == SMALL_TEST_TRIALS
    assert data.x_train.shape[1:] == (1, 2, 750)
    assert np.array_equal(data.x_train, make_small(0).x_train)
    assert not np.array_equal(data.x_train, make_small(1).x_train)
    assert set(np.unique(data.y_train)) == {0, 1}
