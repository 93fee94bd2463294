"""Datasets beyond BCI IIIb: your own arrays (npz:DIR), K classes, any channel count, subjects.

MOABB datasets are tested in test_moabb.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import optuna
import pytest

from eegtune.data.arrays import load_npz
from eegtune.data.loading import load_dataset
from eegtune.data.sources import DataSource, parse_source
from eegtune.errors import ConfigError, DataError
from eegtune.models.networks import check_input, min_times
from eegtune.search.storages import open_storage
from tests.helpers import assert_one_line_error, chromium_dom, invoke, listing, make_lab_dir

CLASSES = ("rest", "left", "right")


def write_npz_dir(
    folder: Path,
    n_train: int = 90,
    n_test: int = 60,
    channels: int = 8,
    samples: int = 500,
    labels: tuple = CLASSES,
    subjects: bool = True,
    seed: int = 0,
) -> Path:
    """A learnable K-class dataset: each class raises one channel's mean."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        y = np.array([labels[i % len(labels)] for i in range(n)])
        x = rng.standard_normal((n, channels, samples)).astype(np.float32)
        for k, label in enumerate(labels):
            x[y == label, k % channels] += 1.0
        arrays = {"X": x, "y": y}
        if subjects:
            arrays["subject"] = np.repeat(np.array(["a", "b", "c"]), -(-n // 3))[:n]
        np.savez(folder / f"{name}.npz", **arrays)
    return folder


@pytest.fixture(scope="module")
def npz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_npz_dir(tmp_path_factory.mktemp("npz") / "mydata")


# --------------------------------------------------------------------------- loading


def test_npz_labels_map_to_sorted_classes_in_both_files(npz_dir: Path) -> None:
    data = load_dataset(f"npz:{npz_dir}")
    assert data.classes == ("left", "rest", "right")  # sorted labels -> 0, 1, 2
    assert data.model_kwargs == {"n_chans": 8, "n_times": 500, "n_outputs": 3}
    assert data.x_train.shape == (90, 1, 8, 500) and data.x_test.dtype == np.float32
    raw = np.load(npz_dir / "test.npz")
    assert [data.classes[i] for i in data.y_test[:6]] == list(raw["y"][:6])
    assert data.chance == pytest.approx(1 / 3)
    assert set(data.test_subjects) == {"a", "b", "c"}


def test_npz_integer_labels_and_majority_chance(tmp_path: Path) -> None:
    folder = write_npz_dir(tmp_path / "d", labels=(7, 3), subjects=False)
    raw = dict(np.load(folder / "test.npz"))
    raw["y"][:40] = 7  # 50 of 60 test trials are class 7: chance is the majority's share
    raw["y"][40:] = 3
    raw["y"][40:50] = 7
    np.savez(folder / "test.npz", **raw)
    data = load_dataset(f"npz:{folder}")
    assert data.classes == ("3", "7")
    assert np.array_equal(data.y_test[:3], [1, 1, 1])
    assert data.chance == pytest.approx(50 / 60)


def test_npz_nans_filled_from_training_means(tmp_path: Path) -> None:
    folder = write_npz_dir(tmp_path / "d", subjects=False)
    for name in ("train", "test"):
        raw = dict(np.load(folder / f"{name}.npz"))
        raw["X"] = raw["X"].astype(np.float64)
        raw["X"][0, 2, :10] = np.nan
        np.savez(folder / f"{name}.npz", **raw)
    train = np.load(folder / "train.npz")["X"]
    data = load_npz(str(folder))
    assert data.nan_filled == 20 and not np.isnan(data.x_test).any()
    assert data.x_test[0, 0, 2, 0] == pytest.approx(np.nanmean(train[:, 2, :]), rel=1e-5)


def test_subject_restricts_train_and_test(npz_dir: Path) -> None:
    data = load_dataset(parse_source(f"npz:{npz_dir}", ["b"]))
    assert set(data.train_subjects) == set(data.test_subjects) == {"b"}
    assert len(data.y_train) == 30 and len(data.y_test) == 20


def test_bci_iiib_subject_is_one_of_its_two(tmp_path: Path) -> None:
    folder = make_lab_dir(tmp_path / "lab", n_trials=60)
    data = load_dataset(parse_source("bci-iiib", ["X11"]), folder, offline=True)
    assert set(data.test_subjects) == {"X11"} and len(data.y_train) == 60
    assert data.classes == ("left_hand", "right_hand")
    with pytest.raises(DataError, match="no subject S5 .*subjects: S4, X11"):
        load_dataset(parse_source("bci-iiib", ["S5"]), folder, offline=True)


@pytest.mark.parametrize(
    ("text", "options", "fragment"),
    [
        ("mnist", {}, "unknown dataset 'mnist' (choose one of: bci-iiib, synthetic, realistic, "),
        ("synth", {}, "unknown dataset 'synth'; did you mean synthetic? (choose one of: "),
        ("moabbb:X", {}, "unknown dataset 'moabbb:X'; did you mean moabb? (choose one of: "),
        ("npz:", {}, "name the DIR after the colon"),
        ("csv:x", {}, "unknown dataset"),
        ("synthetic", {"fmin": 1.0}, "--fmin applies to moabb: datasets only"),
        ("moabb:X", {"fmax": 70.0}, "not below the Nyquist frequency"),
        ("moabb:X", {"fmin": 30.0, "fmax": 20.0}, "need 0 <= fmin < fmax"),
        ("moabb:X", {"tmin": 2.0, "tmax": 1.0}, "the window must end after it starts"),
    ],
)
def test_bad_dataset_options_are_one_line(text: str, options: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        parse_source(text, **options)


def test_dataset_names_are_case_insensitive_but_their_paths_are_not(tmp_path: Path) -> None:
    assert parse_source("Synthetic").dataset == "synthetic"
    assert parse_source("BCI-IIIb").dataset == "bci-iiib"
    folder = tmp_path / "MyData"
    assert parse_source(f"NPZ:{folder}").dataset == f"npz:{folder}"


def test_source_round_trips_through_study_attributes(tmp_path: Path) -> None:
    source = parse_source("moabb:BNCI2014_001", ["3", "1"], tmax=2.5)
    assert source.options == {"fmin": 4.0, "fmax": 38.0, "tmin": 0.0, "tmax": 2.5,
                              "resample": 125.0}  # fmt: skip
    again = DataSource.from_attrs(json.loads(json.dumps(source.attrs())), "bci-iiib")
    assert again == source
    assert source.describe() == "moabb:BNCI2014_001, subjects 3, 1, 4-38 Hz, 0-2.5 s, 125 Hz"
    assert parse_source("npz:rel").dataset == f"npz:{Path('rel').resolve()}"


def test_input_too_short_for_pooling_names_the_minimum(tmp_path: Path) -> None:
    data = load_npz(str(write_npz_dir(tmp_path / "d", samples=40, subjects=False)))
    need = min_times("deepconvnet", 8)
    assert need is not None and 40 < need <= 100
    check_input("eegnet", data)  # EEGNet's pooling fits in 40 samples
    with pytest.raises(ConfigError, match=f"trials of 40 samples are too short for deepconvnet, "
                                          f"which needs at least {need}"):  # fmt: skip
        check_input("deepconvnet", data)


# --------------------------------------------------------------------------- bad input


def _rewrite(folder: Path, name: str, **changes) -> None:
    raw = dict(np.load(folder / name))
    raw.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del raw[key]
    np.savez(folder / name, **raw)


def _damage(kind: str, folder: Path) -> str:
    """Break an npz: folder one way; return the fragment of the expected error line."""
    x = np.load(folder / "test.npz")["X"]
    y = np.load(folder / "test.npz")["y"]
    if kind == "no-folder":
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
        return "no such folder; it must hold train.npz and test.npz"
    if kind == "missing-test":
        (folder / "test.npz").unlink()
        return "test.npz: file not found"
    if kind == "not-npz":
        (folder / "train.npz").write_bytes(b"not an archive")
        return "train.npz: not a readable npz archive"
    if kind == "no-y":
        _rewrite(folder, "test.npz", y=None)
        return "test.npz: missing array(s) y (found: X, subject)"
    if kind == "x-2d":
        _rewrite(folder, "test.npz", X=x[:, 0, :])
        return "test.npz: X has shape (60, 500), expected (trials, channels, samples)"
    if kind == "x-int":
        _rewrite(folder, "train.npz", X=np.zeros((90, 8, 500), dtype=np.int32))
        return "train.npz: X has dtype int32, expected floats"
    if kind == "inf":
        x = x.copy()
        x[3, 1, 7] = np.inf
        _rewrite(folder, "test.npz", X=x)
        return "test.npz: X holds 1 infinite value(s)"
    if kind == "nan-channel":
        x = x.copy()
        x[:, 4, :] = np.nan
        _rewrite(folder, "test.npz", X=x)
        return "test.npz: channel 4 of X is entirely NaN"
    if kind == "y-length":
        _rewrite(folder, "test.npz", y=y[:-1])
        return "test.npz: y has shape (59,), expected (60,)"
    if kind == "y-float":
        _rewrite(folder, "test.npz", y=np.linspace(0, 1, 60))
        return "test.npz: y has dtype float64; use integers or strings"
    if kind == "one-class":
        _rewrite(folder, "train.npz", y=np.array(["left"] * 90))
        return "train.npz: every trial has label left; a dataset needs 2+ classes"
    if kind == "class-missing":
        _rewrite(folder, "test.npz", y=np.where(y == "rest", "left", y))
        return "test.npz: no trial of class(es) rest, which the other file has"
    if kind == "channels":
        _rewrite(folder, "test.npz", X=x[:, :6, :])
        return "test.npz: trials are 6 channels x 500 samples but train.npz has 8 x 500"
    if kind == "label-kinds":
        _rewrite(folder, "test.npz", y=np.arange(60) % 3)
        return "test.npz: y holds integers but train.npz holds strings"
    if kind == "subject-one-file":
        _rewrite(folder, "test.npz", subject=None)
        return "test.npz: no `subject` array, but train.npz has one"
    raise AssertionError(kind)


BAD_NPZ = ["no-folder", "missing-test", "not-npz", "no-y", "x-2d", "x-int", "inf", "nan-channel",
           "y-length", "y-float", "one-class", "class-missing", "channels", "label-kinds",
           "subject-one-file"]  # fmt: skip


@pytest.mark.parametrize("kind", BAD_NPZ)
def test_bad_npz_is_one_line_exit_2_nothing_written(kind: str, tmp_path: Path) -> None:
    folder = write_npz_dir(tmp_path / "data")
    fragment = _damage(kind, folder)
    before = listing(tmp_path)
    storage, out = tmp_path / "s.db", tmp_path / "out"
    for args in (
        ["train", "--epochs", "1"],
        ["search", "--model", "eegnet", "--trials", "1", "--storage", str(storage)],
        ["compare", "--trials", "1", "--storage", str(storage), "--out", str(out)],
    ):
        result = invoke(*args, "--dataset", f"npz:{folder}", "--device", "cpu")
        assert_one_line_error(result, fragment)
    assert listing(tmp_path) == before  # no storage, no report, no weights


def test_too_short_input_refused_before_the_study_exists(tmp_path: Path) -> None:
    folder = write_npz_dir(tmp_path / "d", samples=40, subjects=False)
    storage = tmp_path / "s.db"
    result = invoke("search", "--model", "deepconvnet", "--dataset", f"npz:{folder}",
                    "--storage", str(storage), "--trials", "1")  # fmt: skip
    assert_one_line_error(result, "trials of 40 samples are too short for deepconvnet")
    assert not storage.exists()


def test_subject_needs_data_that_knows_subjects(tmp_path: Path) -> None:
    folder = write_npz_dir(tmp_path / "d", subjects=False)
    for dataset in ("synthetic", f"npz:{folder}"):
        result = invoke("train", "--dataset", dataset, "--subject", "1", "--epochs", "1")
        assert_one_line_error(result, "--subject needs data that says which trial is whose")


# --------------------------------------------------------------------------- end to end


def test_npz_three_classes_train_search_evaluate_report(npz_dir: Path, tmp_path: Path) -> None:
    data = ["--dataset", f"npz:{npz_dir}", "--device", "cpu"]
    result = invoke("train", *data, "--epochs", "2", "--test")
    assert result.exit_code == 0, result.output
    assert "3 classes" in result.output and "chance 33.33%" in result.output

    storage = str(tmp_path / "s.db")
    result = invoke("search", "--model", "eegnet", "--trials", "2", "--epochs", "3",
                    "--storage", storage, *data)  # fmt: skip
    assert result.exit_code == 0, result.output
    name = f"eegnet-{npz_dir.name}"  # the default study name says which data it holds
    study = optuna.load_study(study_name=name, storage=open_storage(storage))
    assert study.user_attrs["classes"] == ["left", "rest", "right"]
    assert study.user_attrs["dataset"] == f"npz:{npz_dir}"

    result = invoke("evaluate", "--storage", storage, "--seeds", "2",
                    "--models-dir", str(tmp_path / "models"), "--device", "cpu")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "confusion matrix of best" in result.output and "class accuracy" in result.output
    assert re.search(r"\ba \d+\.\d%, b \d+\.\d%, c \d+\.\d%", result.output)  # per subject
    assert "33.3%" in result.output  # chance beside the accuracy

    out = tmp_path / "report"
    result = invoke("report", "--storage", storage, "--out", str(out))
    assert result.exit_code == 0, result.output
    document = json.loads((out / "best_trials.json").read_text())
    evaluation = document["studies"][0]["evaluation"]["best"]
    assert document["studies"][0]["classes"] == ["left", "rest", "right"]
    assert np.array(evaluation["confusion"]).shape == (3, 3)
    assert np.array(evaluation["confusion"]).sum() == 2 * 60  # every test trial of both seeds
    assert evaluation["chance"] == pytest.approx(1 / 3)
    page = (out / "index.html").read_text()
    assert "0 = left, 1 = rest, 2 = right" in page
    assert "chance level 33.3%" in page and "<th>class accuracy</th>" in page
    dom, log = chromium_dom((out / "index.html").as_uri(), size=(1280, 900))
    assert "Test predictions per class and per subject" in dom and "Uncaught" not in log


def test_study_remembers_its_subjects(npz_dir: Path, tmp_path: Path) -> None:
    storage = str(tmp_path / "s.db")
    base = ["search", "--model", "eegnet", "--trials", "1", "--epochs", "1", "--storage", storage,
            "--dataset", f"npz:{npz_dir}", "--device", "cpu"]  # fmt: skip
    result = invoke(*base, "--subject", "a")
    assert result.exit_code == 0, result.output
    assert "subject a" in result.output
    name = f"eegnet-{npz_dir.name}"
    study = optuna.load_study(study_name=name, storage=open_storage(storage))
    assert study.user_attrs["subjects"] == ["a"]
    result = invoke(*base, "--subject", "b")
    assert_one_line_error(result, f"study {name!r} was made with subjects a, not b")
    result = invoke("evaluate", "--storage", storage, "--seeds", "1", "--device", "cpu",
                    "--models-dir", str(tmp_path / "m"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert re.search(r"\sa \d+\.\d% │", result.output)  # subject a's test trials only
    assert not re.search(r"\s[bc] \d+\.\d%", result.output)


def test_compare_on_three_classes_shows_chance_and_confusion(npz_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = invoke("compare", "--model", "eegnet", "--activation", "elu", "--trials", "1",
                    "--epochs", "2", "--seeds", "1", "--dataset", f"npz:{npz_dir}",
                    "--storage", str(tmp_path / "c.db"), "--out", str(out), "--device", "cpu",
                    "--models-dir", str(tmp_path / "m"), env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert re.search(r"│ +eegnet │ +elu │.*│ +33\.3% │ +1 │", result.output), result.output
    page = (out / "index.html").read_text()
    assert "<th>chance</th>" in page and page.count("<th>class accuracy</th>") == 2  # both
    assert "0 = left, 1 = rest, 2 = right" in page  # tuned and baseline each have a matrix
