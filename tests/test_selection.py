"""Choosing a configuration through the noise: ``--folds K``, finalists raced, classical
references beside the networks, and the ``realistic`` dataset the benchmarks use."""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from eegtune.data.loading import load_dataset
from eegtune.data.realistic import make_realistic
from eegtune.data.sources import parse_source
from eegtune.data.synthetic import make_synthetic
from eegtune.results.racing import load_race, race_study
from eegtune.search.objective import attach
from eegtune.search.run import run_search
from eegtune.search.storages import open_storage
from eegtune.search.study import StudySpec, create_or_check_study
from tests.helpers import assert_one_line_error, invoke, search_plan

# --------------------------------------------------------------------------- --folds K


def test_folds_are_stored_and_reused_by_a_rerun_and_a_second_worker(tmp_path: Path) -> None:
    storage = str(tmp_path / "f.journal")
    run_search(search_plan(storage, folds=3, trials=1, epochs=2))
    # a re-run that does not name --folds continues on the study's own 3 folds
    again = search_plan(storage, trials=2, epochs=2)
    run_search(again)
    study = optuna.load_study(study_name="eegnet", storage=open_storage(storage))
    assert study.user_attrs["folds"] == 3
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(done) == 2
    hashes = {t.user_attrs["split_hash"] for t in done}
    assert len(hashes) == 1  # both trials were scored on the same three validation sets
    # a second worker (another `eegtune search` on the study) checks the study and attaches
    # with the spec it keeps, as run_search does for every worker: the same folds
    _, kept = create_or_check_study(open_storage(storage), "eegnet", again.spec)
    job = attach(replace(again, spec=kept))
    assert len(job.splits) == 3 and job.split_hash in hashes
    for trial in done:
        folds = trial.user_attrs["fold_val_acc"]
        assert len(folds) == 3 and len(trial.user_attrs["fold_values"]) == 3
        # what the pruner saw at each epoch is the mean of the three folds' curves
        for epoch, value in trial.intermediate_values.items():
            mean = statistics.fmean(curve[epoch - 1] for curve in folds)
            assert value == pytest.approx(mean, abs=1e-4)
        assert trial.value == pytest.approx(statistics.fmean(trial.user_attrs["fold_values"]),
                                            abs=1e-4)  # fmt: skip


def test_folds_are_a_study_key_another_value_is_refused(tmp_path: Path) -> None:
    storage = str(tmp_path / "f.journal")
    run_search(search_plan(storage, folds=2, trials=1, epochs=1))
    result = invoke("search", "--model", "eegnet", "--dataset", "synthetic", "--study", "eegnet",
                    "--storage", storage, "--folds", "3", "--trials", "2", "--epochs", "1",
                    "--device", "cpu")  # fmt: skip
    assert_one_line_error(result, "folds")
    study = optuna.load_study(study_name="eegnet", storage=open_storage(storage))
    assert len(study.trials) == 1  # nothing ran


def test_more_folds_than_the_smallest_class_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "rare"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("train", "test"):
        y = np.array(["common"] * 20 + ["rare"] * 3)
        np.savez(folder / f"{name}.npz", X=rng.standard_normal((23, 2, 750)), y=y)
    result = invoke("search", "--model", "eegnet", "--dataset", f"npz:{folder}", "--folds", "5",
                    "--trials", "1", "--epochs", "1", "--device", "cpu",
                    "--storage", str(tmp_path / "s.journal"))  # fmt: skip
    assert_one_line_error(result, "--folds 5 is more than the 3 training trials of the smallest "
                                  "class; choose at most --folds 3")  # fmt: skip
    assert "Trial" not in result.output


# --------------------------------------------------------------------------- racing

GOOD = {"activation": "elu", "dropout": 0.25, "lr": 0.01, "batch_size": 32, "weight_decay": 1e-4}
STUCK = {**GOOD, "lr": 1e-7}  # learns nothing in a few epochs: any high score was luck
EPOCHS = 4
DISTRIBUTIONS = {  # of the constructed trials: the default space's, wide enough for STUCK
    "activation": CategoricalDistribution(["relu", "leaky_relu", "elu"]),
    "dropout": FloatDistribution(0.0, 0.9),
    "lr": FloatDistribution(1e-8, 0.1, log=True),
    "batch_size": CategoricalDistribution([32, 64, 1024]),
    "weight_decay": FloatDistribution(1e-6, 0.1, log=True),
}


def _easy_npz(folder: Path) -> Path:
    """240 + 240 trials a network learns in one epoch: a 10 Hz rhythm on channel 0 or 1."""
    rng = np.random.default_rng(0)
    rhythm = 2 * np.sin(2 * np.pi * 10 * np.arange(750) / 125.0)
    folder.mkdir()
    for name in ("train", "test"):
        y = np.tile(["left", "right"], 120)
        x = rng.standard_normal((240, 2, 750))
        x[y == "left", 0] += rhythm
        x[y == "right", 1] += rhythm
        np.savez(folder / f"{name}.npz", X=x, y=y)
    return folder


def _constructed_study(storage: str, folder: Path) -> optuna.Study:
    """A study whose best search score belongs to a configuration that cannot learn (its
    validation split flattered it), the runner-up to one that does."""
    opened = open_storage(storage)
    spec = StudySpec(model="eegnet", source=parse_source(f"npz:{_easy_npz(folder)}"))
    study, _ = create_or_check_study(opened, "lucky", spec)
    for params, value in ((STUCK, 0.99), (GOOD, 0.90)):
        study.add_trial(create_trial(
            params=params, distributions=DISTRIBUTIONS, value=value,
            user_attrs={"best_epoch": EPOCHS, "epochs_trained": EPOCHS},
            intermediate_values={EPOCHS: value},
        ))  # fmt: skip
    return study


def test_racing_changes_the_choice_when_a_finalist_was_lucky(tmp_path: Path) -> None:
    storage = str(tmp_path / "r.journal")
    study = _constructed_study(storage, tmp_path / "easy")
    opened = open_storage(storage)
    data = load_dataset(f"npz:{tmp_path / 'easy'}")
    race = race_study(opened, study, data, top=2, splits=1)
    assert race.finalists == [0, 1] and race.winner == 1
    lucky, good = race.scores["0"], race.scores["1"]
    assert lucky[0] == 0.99 and good[0] == 0.90  # the search scores come first
    assert lucky[1] < 0.7 < 0.9 < good[1]  # fresh: the stuck one near chance, the good one not
    assert "trial 1 won the race of 2 finalists" in race.text
    assert "the search's best, trial 0, lost its lead" in race.text
    assert race.cost == pytest.approx(2 * EPOCHS)  # two finalists, on 80% of the trials each
    # stored and reused while the finalists are the same ...
    assert load_race(opened, study, top=2, splits=1) == race
    # ... and no longer once another trial becomes a finalist
    attrs = {"best_epoch": EPOCHS, "epochs_trained": EPOCHS}
    study.add_trial(create_trial(params=GOOD | {"dropout": 0.3}, value=0.995, user_attrs=attrs,
                                 distributions=study.trials[0].distributions))  # fmt: skip
    assert load_race(opened, study, top=2, splits=1) is None


def test_evaluate_retrains_the_race_winner_and_says_so(tmp_path: Path) -> None:
    storage = str(tmp_path / "r.journal")
    _constructed_study(storage, tmp_path / "easy")
    result = invoke("evaluate", "--storage", storage, "--study", "lucky", "--seeds", "1",
                    "--race", "2", "--device", "cpu", "--models-dir", str(tmp_path / "m"),
                    env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "trial 1 won the race of 2 finalists" in result.output
    assert "│   best │     1 │      4 │" in result.output  # the winner is what was retrained
    # the report states how the configuration was chosen
    report = invoke("report", "--storage", storage, "--out", str(tmp_path / "rep"))
    assert report.exit_code == 0, report.output
    index = (tmp_path / "rep" / "index.html").read_text()
    assert "choice of configuration" in index and "trial 1 won the race" in index


def test_race_zero_keeps_the_best_search_score(tmp_path: Path) -> None:
    storage = str(tmp_path / "r.journal")
    _constructed_study(storage, tmp_path / "easy")
    result = invoke("evaluate", "--storage", storage, "--study", "lucky", "--seeds", "1",
                    "--race", "0", "--device", "cpu", "--models-dir", str(tmp_path / "m"),
                    env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "racing" not in result.output and "won the race" not in result.output
    assert "│   best │     0 │      4 │" in result.output


# --------------------------------------------------------------------------- warm start


def _study_with(storage: str, name: str, *scored: tuple[dict, float]) -> optuna.Study:
    study = optuna.create_study(storage=open_storage(storage), study_name=name,
                                direction="maximize")  # fmt: skip
    for params, value in scored:
        study.add_trial(create_trial(params=params, distributions=DISTRIBUTIONS, value=value))
    return study


def test_warm_configs_substitute_the_activation_and_skip_the_lab_and_repeats(
    tmp_path: Path,
) -> None:
    from eegtune.names import LAB_SETTINGS
    from eegtune.results.compare import warm_configs

    storage = str(tmp_path / "w.journal")
    relu = _study_with(storage, "c-relu", (GOOD | {"activation": "relu"}, 0.9),
                       (STUCK | {"activation": "relu"}, 0.8))  # fmt: skip
    lab = _study_with(storage, "c-lab", (LAB_SETTINGS | {"activation": "leaky_relu"}, 0.95),
                      (GOOD | {"activation": "leaky_relu"}, 0.7))  # fmt: skip
    again = _study_with(storage, "c-again", (GOOD | {"activation": "leaky_relu"}, 0.99))
    empty = _study_with(storage, "c-empty")
    found = warm_configs([relu, lab, empty, again], "elu")
    # only relu's best (GOOD), with elu substituted: the lab's settings are already queued as
    # the baseline, "again" repeats GOOD, and a cell without a completed trial gives nothing
    assert found == [("c-relu", GOOD | {"activation": "elu"})]


def _search_warm_cell(tmp_path: Path, activation: str, trials: int) -> optuna.Study:
    """Search compare cell ``c-eegnet-ACTIVATION`` (1 epoch a trial, synthetic) with GOOD as
    its warm start from ``c-eegnet-relu``; its study after the search."""
    from eegtune.results.compare import cell_plans, search_cell

    storage = str(tmp_path / "w.journal")
    warm = [("c-eegnet-relu", GOOD | {"activation": activation})]
    (plan,) = cell_plans(["eegnet"], [activation], "c", trials=trials, epochs=1, storage=storage,
                         dataset="synthetic", device="cpu")  # fmt: skip
    data = load_dataset("synthetic")
    search_cell(plan, baseline=True, data_set=data, storage=open_storage(storage), warm=warm)
    return optuna.load_study(study_name=plan.name, storage=open_storage(storage))


def test_warm_start_queues_after_the_baseline_and_never_again_on_a_resume(
    tmp_path: Path,
) -> None:
    from eegtune.names import LAB_SETTINGS

    study = _search_warm_cell(tmp_path, "leaky_relu", trials=2)
    first, second = study.trials
    assert first.user_attrs.get("baseline") and first.params == LAB_SETTINGS | {
        "activation": "leaky_relu"
    }
    assert second.params == GOOD | {"activation": "leaky_relu"}
    assert second.user_attrs["warm_start"] == "c-eegnet-relu"
    assert study.user_attrs["warm_started"] == [["c-eegnet-relu", second.params]]
    # a resume with a larger target searches on from the study's own history
    study = _search_warm_cell(tmp_path, "leaky_relu", trials=3)
    assert len(study.trials) == 3
    assert sum("warm_start" in t.user_attrs for t in study.trials) == 1


def test_a_warm_trial_is_queued_only_while_the_target_has_room(tmp_path: Path) -> None:
    """A cell whose target the baseline fills leaves no warm trial waiting forever; a resume
    with a larger target queues and trains it then."""
    from optuna.trial import TrialState

    study = _search_warm_cell(tmp_path, "elu", trials=1)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]  # the baseline, nothing left
    study = _search_warm_cell(tmp_path, "elu", trials=2)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert study.trials[1].user_attrs["warm_start"] == "c-eegnet-relu"


def test_compare_warm_start_seeds_a_later_cell_with_the_earlier_best(tmp_path: Path) -> None:
    storage = str(tmp_path / "c.journal")
    common = ("compare", "--dataset", "synthetic", "--model", "eegnet", "--epochs", "1",
              "--seeds", "1", "--no-baseline", "--no-references", "--race", "0",
              "--storage", storage, "--out", str(tmp_path / "rep"),
              "--models-dir", str(tmp_path / "m"))  # fmt: skip
    cold = invoke(*common, "--activation", "relu", "--activation", "elu", "--trials", "1",
                  "--prefix", "cold")  # fmt: skip
    assert cold.exit_code == 0, cold.output
    assert "note: the lab trains" not in cold.output  # --no-baseline: no lab's row to qualify
    cold_elu = optuna.load_study(study_name="cold-eegnet-elu", storage=open_storage(storage))
    assert not any("warm_start" in t.user_attrs for t in cold_elu.trials)  # off by default
    warm = invoke(*common, "--activation", "relu", "--activation", "elu", "--trials", "1",
                  "--prefix", "warm", "--warm-start")  # fmt: skip
    assert warm.exit_code == 0, warm.output
    relu = optuna.load_study(study_name="warm-eegnet-relu", storage=open_storage(storage))
    elu = optuna.load_study(study_name="warm-eegnet-elu", storage=open_storage(storage))
    (trial,) = elu.trials
    assert trial.user_attrs["warm_start"] == "warm-eegnet-relu"
    assert trial.params == relu.best_trial.params | {"activation": "elu"}


# --------------------------------------------------------------------------- references


def test_references_on_synthetic_beat_chance_with_an_interval() -> None:
    from eegtune.results.references import run_references

    results = run_references(make_synthetic())
    assert [r.name for r in results] == ["csp-lda", "ts-lr"]
    for r in results:
        assert r.accuracy is not None and r.accuracy > 0.65, r  # a lateralised mu rhythm
        ci = r.interval
        assert ci is not None and ci.low < r.accuracy < ci.high and ci.high - ci.low < 0.07
        assert r.n_test == 1080 and r.band == (8.0, 30.0) and r.per_subject == {}
        assert 0.0 <= r.window[0] < r.window[1] == pytest.approx(6.0)


def test_references_on_npz_report_each_subject(tmp_path: Path) -> None:
    from eegtune.results.references import run_references

    folder = tmp_path / "d"
    folder.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(500) / 125.0
    for name in ("train", "test"):
        y = np.array(["left", "right"] * 60)
        x = rng.standard_normal((120, 4, 500))
        # a 10 Hz rhythm, stronger on channel 0 for "left" and on channel 1 for "right"
        for i, label in enumerate(y):
            x[i, 0 if label == "left" else 1] += 3 * np.sin(2 * np.pi * 10 * t)
        subjects = np.array(["a", "b"] * 60)
        np.savez(folder / f"{name}.npz", X=x, y=y, subject=subjects)
    results = run_references(load_dataset(f"npz:{folder}"))
    for r in results:
        assert r.accuracy is not None and r.accuracy > 0.9, r
        assert set(r.per_subject) == {"a", "b"}
        assert r.n_test == 120


def _rhythm_npz(folder: Path, hz: float, **extra) -> Path:
    """Two classes told apart by a ``hz`` rhythm at 500 samples per second, on channel 0 for
    "left" and 1 for "right"; ``extra`` arrays are saved in both files."""
    rng = np.random.default_rng(1)
    t = np.arange(500) / 500.0
    folder.mkdir()
    for name in ("train", "test"):
        y = np.array(["left", "right"] * 60)
        x = rng.standard_normal((120, 2, 500))
        for i, label in enumerate(y):
            x[i, 0 if label == "left" else 1] += np.sin(2 * np.pi * hz * t)
        np.savez(folder / f"{name}.npz", X=x, y=y, **extra)
    return folder


def test_references_filter_npz_data_at_its_own_sfreq(tmp_path: Path) -> None:
    from eegtune.results.references import run_references

    # a 60 Hz rhythm sampled at 500 Hz: outside the references' 8-30 Hz band, so they cannot
    # see it when told the rate; read at the assumed 125 Hz it would look like 15 Hz
    rated = load_dataset(f"npz:{_rhythm_npz(tmp_path / 'rated', 60.0, sfreq=500.0)}")
    assumed = load_dataset(f"npz:{_rhythm_npz(tmp_path / 'assumed', 60.0)}")
    assert rated.sampling_rate == 500.0 and assumed.sampling_rate == 125.0
    for r in run_references(rated):
        assert r.accuracy is not None and r.accuracy < 0.7, r
    for r in run_references(assumed):
        assert r.accuracy is not None and r.accuracy > 0.9, r


@pytest.mark.parametrize(
    ("train", "test", "fragment"),
    [
        (500.0, None, "test.npz: no `sfreq`, but train.npz has one; give both or none"),
        (500.0, 250.0, "test.npz: sfreq is 250 Hz but train.npz says 500 Hz"),
        (-1.0, -1.0, "train.npz: sfreq must be one positive number (the sampling rate in Hz)"),
        ([250.0, 500.0], [250.0, 500.0], "sfreq must be one positive number"),
    ],
)
def test_a_bad_npz_sfreq_is_one_line(tmp_path: Path, train, test, fragment) -> None:
    folder = _rhythm_npz(tmp_path / "d", 10.0)
    for name, rate in (("train", train), ("test", test)):
        with np.load(folder / f"{name}.npz") as arrays:
            kept = dict(arrays)
        if rate is not None:
            kept["sfreq"] = np.asarray(rate)
        np.savez(folder / f"{name}.npz", **kept)
    storage = tmp_path / "s.journal"
    result = invoke("search", "--model", "eegnet", "--trials", "1", "--storage", str(storage),
                    "--dataset", f"npz:{folder}", "--device", "cpu")  # fmt: skip
    assert_one_line_error(result, fragment)
    assert not storage.exists()  # refused before a study is made


def test_references_on_moabb_fake_dataset_use_its_band_and_rate() -> None:
    pytest.importorskip("moabb", reason="the moabb extra is not installed")
    from eegtune.results.references import run_references

    data = load_dataset(parse_source("moabb:FakeDataset", ["1", "2"], fmin=10.0, fmax=26.0,
                                     resample=100.0))  # fmt: skip
    assert data.sampling_rate == 100.0 and data.band == (10.0, 26.0)
    results = run_references(data)
    for r in results:
        assert r.band == (10.0, 26.0)  # the references' 8-30 Hz within the data's own band
        assert r.accuracy is not None and r.n_test == len(data.y_test)
        assert set(r.per_subject) == {"1", "2"}


def test_evaluate_references_prints_and_stores_them(tmp_path: Path) -> None:
    storage = str(tmp_path / "s.journal")
    run_search(search_plan(storage, trials=1, epochs=1))
    result = invoke("evaluate", "--storage", storage, "--seeds", "1", "--references",
                    "--race", "0", "--device", "cpu", "--models-dir", str(tmp_path / "m"),
                    env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "classical references (same training and test sets, trained once)" in result.output
    for title in ("CSP + LDA", "tangent space + LR"):
        assert title in result.output
    report = invoke("report", "--storage", storage, "--out", str(tmp_path / "rep"))
    assert report.exit_code == 0, report.output
    document = json.loads((tmp_path / "rep" / "best_trials.json").read_text())
    stored = document["studies"][0]["references"]
    assert [r["name"] for r in stored] == ["csp-lda", "ts-lr"]
    assert all(0 <= r["ci95"][0] < r["accuracy"] < r["ci95"][1] <= 1 for r in stored)
    index = (tmp_path / "rep" / "index.html").read_text()
    assert '<div id="references"><h2>Classical references</h2>' in index


def test_references_without_the_extra_are_one_line(tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "pyriemann" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    storage = str(tmp_path / "s.journal")
    run_search(search_plan(storage, trials=1, epochs=1))
    result = invoke("evaluate", "--storage", storage, "--seeds", "1", "--references",
                    "--device", "cpu", "--models-dir", str(tmp_path / "m"))  # fmt: skip
    assert_one_line_error(result, "the classical references need pyriemann: pip install "
                                  "'eegtune[references]'")  # fmt: skip
    assert "seed 0" not in result.output  # refused before anything was retrained


# --------------------------------------------------------------------------- realistic data


def test_realistic_dataset_is_seeded_with_two_subjects_in_both_sets() -> None:
    data = make_realistic(seed=0)
    assert data.x_train.shape == data.x_test.shape == (1080, 1, 2, 750)
    assert data.classes == ("left_hand", "right_hand") and data.chance == 0.5
    for subjects in (data.train_subjects, data.test_subjects):
        assert subjects is not None
        assert {
            str(s): int(n) for s, n in zip(*np.unique(subjects, return_counts=True), strict=True)
        } == {"1": 540, "2": 540}
    again = load_dataset("realistic")
    assert np.array_equal(again.x_train, data.x_train) and np.array_equal(again.y_test, data.y_test)
    other = make_realistic(seed=1)
    assert not np.array_equal(other.x_train, data.x_train)
    assert np.isfinite(data.x_train).all() and np.isfinite(data.x_test).all()


def test_realistic_test_session_is_shifted_from_training() -> None:
    data = make_realistic(seed=0)
    # the test session is noisier than the training session (a shift validation cannot see)
    assert float(data.x_test.std()) > 1.05 * float(data.x_train.std())
