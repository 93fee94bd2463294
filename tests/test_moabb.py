"""MOABB datasets (moabb:NAME), offline: MOABB's FakeDataset through the real paradigm path.

``.ci/run`` installs the ``moabb`` extra, so these tests run in CI; elsewhere they skip when
MOABB is not installed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from eegtune.data.loading import load_dataset
from eegtune.data.moabb import TEST_FRACTION, moabb_split
from eegtune.data.sources import parse_source
from eegtune.errors import DataError
from eegtune.search.storages import open_storage
from tests.helpers import assert_one_line_error, invoke

moabb = pytest.importorskip("moabb", reason="the moabb extra is not installed")
FAKE = "moabb:FakeDataset"


def test_fake_dataset_loads_through_the_paradigm_with_session_split() -> None:
    data = load_dataset(parse_source(FAKE, ["1", "2"]))
    assert data.name == FAKE and data.classes == ("fake1", "fake2", "fake3")
    # 3 channels; the imagery window of 0-3 s at 125 Hz
    assert data.model_kwargs == {"n_chans": 3, "n_times": 376, "n_outputs": 3}
    # two sessions per subject: the first trains, the last tests
    assert len(data.y_train) == len(data.y_test) == 2 * 120
    assert sorted(set(data.test_subjects)) == ["1", "2"]
    assert 1 < float(data.x_train.std()) < 100  # microvolts, as MOABB scales them
    again = load_dataset(parse_source(FAKE, ["1", "2"]))
    assert np.array_equal(again.x_test, data.x_test)  # seeded: evaluate sees the same trials


def test_preprocessing_options_reach_the_paradigm() -> None:
    data = load_dataset(parse_source(FAKE, ["1"], tmin=0.5, tmax=2.5, resample=100.0))
    assert data.input_shape == (3, 201)  # 2 s at 100 Hz


def test_single_session_split_is_seeded_stratified_per_subject() -> None:
    labels = np.tile([0, 1, 2, 3], 40)
    subjects = np.repeat(["1", "2"], 80)
    sessions = np.zeros(160, dtype=str)
    test = moabb_split(sessions, subjects, labels)
    assert np.array_equal(test, moabb_split(sessions, subjects, labels))  # same every time
    for subject in ("1", "2"):
        mine = subjects == subject
        assert test[mine].sum() == TEST_FRACTION * 80
        assert set(np.bincount(labels[mine & test])) == {5}  # each class 25%
    two = np.where(np.arange(160) % 80 < 50, "0train", "1test")
    assert np.array_equal(moabb_split(two, subjects, labels), two == "1test")


@pytest.mark.parametrize(
    ("dataset", "subjects", "fragment"),
    [
        ("moabb:NoSuchSet", [], "unknown MOABB dataset 'NoSuchSet'; motor-imagery datasets"),
        (FAKE, ["11"], "moabb:FakeDataset has no subject 11 (subjects: 1..10)"),
        ("moabb:BNCI2014_009", [], "is not a motor-imagery dataset (its paradigm: p300)"),
    ],
)
def test_bad_moabb_names_are_one_line(dataset: str, subjects: list, fragment: str) -> None:
    with pytest.raises(DataError, match=re.escape(fragment)):
        load_dataset(parse_source(dataset, subjects))


def test_no_network_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import requests
    from moabb.datasets.fake import FakeDataset

    def offline(self, subject):
        raise requests.ConnectionError("Failed to resolve 'example.org'")

    monkeypatch.setattr(FakeDataset, "_get_single_subject_data", offline)
    storage = tmp_path / "s.db"
    result = invoke("search", "--model", "eegnet", "--dataset", FAKE, "--subject", "1",
                    "--storage", str(storage))  # fmt: skip
    assert_one_line_error(result, "moabb:FakeDataset: cannot get the data (Failed to resolve")
    assert "MNE_DATA" in result.output and not storage.exists()


def test_preprocessing_the_dataset_cannot_have_is_one_line(tmp_path: Path) -> None:
    # FakeDataset records at 128 Hz: a 70 Hz band edge passes our check at --resample 200
    # but not MNE's filter on the raw data
    result = invoke("train", "--dataset", FAKE, "--subject", "1", "--fmax", "70",
                    "--resample", "200", "--epochs", "1", "--device", "cpu")  # fmt: skip
    assert_one_line_error(result, "MOABB cannot preprocess it this way (h_freq")


def test_missing_moabb_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moabb.paradigms", None)  # import fails as if absent
    with pytest.raises(DataError, match=re.escape("pip install 'eegtune[moabb]'")):
        load_dataset(FAKE)


def test_search_and_evaluate_per_subject_offline(tmp_path: Path) -> None:
    storage = str(tmp_path / "s.db")
    data = ["--dataset", FAKE, "--subject", "1", "--subject", "2", "--device", "cpu"]
    result = invoke("search", "--model", "eegnet", "--trials", "1", "--epochs", "2",
                    "--storage", storage, *data)  # fmt: skip
    assert result.exit_code == 0, result.output
    intro = "moabb:FakeDataset, subjects 1, 2, 4-38 Hz, 0-end s, 125 Hz (3 classes, chance 33.3%)"
    assert intro in result.output
    study = optuna.load_study(study_name="eegnet-FakeDataset", storage=open_storage(storage))
    assert study.user_attrs["subjects"] == ["1", "2"]
    assert study.user_attrs["preprocessing"] == {
        "fmin": 4.0, "fmax": 38.0, "tmin": 0.0, "tmax": None, "resample": 125.0
    }  # fmt: skip
    # evaluate reloads the same subjects and preprocessing from the study: no data options
    result = invoke("evaluate", "--storage", storage, "--seeds", "1", "--device", "cpu",
                    "--models-dir", str(tmp_path / "models"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert re.search(r"1 \d+\.\d%, 2 \d+\.\d%", result.output), result.output  # per subject
    assert "fake1" in result.output and "class accuracy" in result.output
    assert "33.3%" in result.output  # chance: three balanced classes
