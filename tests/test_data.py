"""Dataset loading, validation, NaN filling, splits, synthetic data and fetching."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from eegtune.data.bciiiib import FILES, FileSpec, git_blob_sha1, inspect_file, load_bci_iiib
from eegtune.data.dataset import stratified_split
from eegtune.data.fetch import fetch_bci_iiib
from eegtune.data.loading import load_dataset
from eegtune.data.synthetic import make_synthetic
from eegtune.errors import DataError
from tests.helpers import BAD_KINDS, damage, listing, unused_url, write_lab_file


def test_load_gives_model_format(lab_dir: Path) -> None:
    data = load_bci_iiib(lab_dir)
    assert data.x_train.shape == (1080, 1, 2, 750) and data.x_test.shape == (1080, 1, 2, 750)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert set(np.unique(data.y_train)) == {0, 1} and set(np.unique(data.y_test)) == {0, 1}
    assert not np.isnan(data.x_train).any() and not np.isnan(data.x_test).any()
    expected_nan = sum(inspect_file(lab_dir / name).n_nan for name in FILES)
    assert expected_nan > 0 and data.nan_filled == expected_nan


def test_load_transposes_trials_channels_samples(lab_dir: Path) -> None:
    with np.load(lab_dir / "S4b_train.npz") as raw:
        signal, label = raw["signal"], raw["label"]
    data = load_bci_iiib(lab_dir)
    finite = ~np.isnan(signal[3, :, 1])
    np.testing.assert_allclose(data.x_train[3, 0, 1][finite], signal[3, finite, 1], rtol=1e-6)
    assert data.y_train[3] == int(label[3]) - 1


def test_nan_fill_uses_training_statistics_only(tmp_path: Path) -> None:
    n = 20
    for name in FILES:
        signal = np.zeros((n, 750, 2))
        if "train" in name:
            signal[:, :, 0], signal[:, :, 1] = 2.0, -4.0
        else:
            signal[:, :, 0], signal[:, :, 1] = 100.0, 100.0
            signal[0, 10, 0] = signal[1, 20, 1] = np.nan
        write_lab_file(tmp_path / name, signal, np.tile([1.0, 2.0], n // 2))
    data = load_bci_iiib(tmp_path)
    assert data.nan_filled == 4  # two in each of the two test files
    assert data.x_test[0, 0, 0, 10] == pytest.approx(2.0)
    assert data.x_test[1, 0, 1, 20] == pytest.approx(-4.0)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_file_raises_one_data_error_naming_it(kind: str, lab_copy: Path) -> None:
    path = lab_copy / "X11b_test.npz"
    fragment = damage(kind, path)
    with pytest.raises(DataError) as info:
        load_bci_iiib(lab_copy)
    message = str(info.value)
    assert "X11b_test.npz" in message and fragment in message
    assert "\n" not in message


def test_zip_without_npy_members_is_a_data_error(lab_copy: Path) -> None:
    path = lab_copy / "S4b_train.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "not an array")
    with pytest.raises(DataError, match="missing key"):
        load_bci_iiib(lab_copy)


def test_stratified_split_is_seeded_disjoint_and_balanced() -> None:
    labels = np.array([0] * 600 + [1] * 480)
    train_a, val_a = stratified_split(labels, 0.2, seed=3)
    train_b, val_b = stratified_split(labels, 0.2, seed=3)
    _, val_c = stratified_split(labels, 0.2, seed=4)
    np.testing.assert_array_equal(val_a, val_b)
    np.testing.assert_array_equal(train_a, train_b)
    assert not np.array_equal(val_a, val_c)
    assert len(np.intersect1d(train_a, val_a)) == 0 and len(train_a) + len(val_a) == 1080
    assert (labels[val_a] == 0).sum() == 120 and (labels[val_a] == 1).sum() == 96


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1e-6])
def test_stratified_split_rejects_degenerate_fractions(fraction: float) -> None:
    with pytest.raises(DataError):
        stratified_split(np.array([0, 1] * 10), fraction, seed=0)


def test_synthetic_matches_real_shapes_and_is_seeded() -> None:
    a, b, c = make_synthetic(seed=1), make_synthetic(seed=1), make_synthetic(seed=2)
    assert a.x_train.shape == a.x_test.shape == (1080, 1, 2, 750)
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int64
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert abs(a.y_train.mean() - 0.5) < 0.01
    assert not np.array_equal(a.x_train[:5], a.x_test[:5])


def test_synthetic_has_lateralised_mu_desynchronisation() -> None:
    """Left-hand trials (label 0) lose mu power on C4 after the cue; right-hand ones on C3."""
    data = make_synthetic(n_train=400, n_test=2, seed=0)
    spectrum = np.abs(np.fft.rfft(data.x_train[:, 0, :, 400:], axis=-1)) ** 2
    freqs = np.fft.rfftfreq(350, d=1 / 125)
    mu = spectrum[..., (freqs >= 8) & (freqs <= 13)].sum(-1)  # (n, 2)
    ratio = np.log(mu[:, 0] / mu[:, 1])  # log C3/C4 power
    left, right = ratio[data.y_train == 0].mean(), ratio[data.y_train == 1].mean()
    assert left > 0.2 and right < -0.2


def test_git_blob_sha1_matches_git(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 100)
    expected = subprocess.run(
        ["git", "hash-object", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert git_blob_sha1(path) == expected


# --------------------------------------------------------------------------- fetch


@pytest.fixture
def served_files(tmp_path: Path, file_server) -> dict[str, FileSpec]:
    """Serve four small generated files; return the spec they satisfy."""
    specs = {}
    src = tmp_path / "src"
    src.mkdir()
    for i, name in enumerate(FILES):
        content = bytes([i]) * 1000 + name.encode()
        (src / name).write_bytes(content)
        specs[name] = FileSpec(len(content), git_blob_sha1(src / name))
        file_server.routes[f"/good/{name}"] = content
        file_server.routes[f"/broken/{name}"] = content
        file_server.routes[f"/wrong/{name}"] = content[:-1] + b"X"
        file_server.routes[f"/short/{name}"] = content[:-10]
    return specs


def test_fetch_downloads_and_verifies(tmp_path, file_server, served_files) -> None:
    dest = tmp_path / "data"
    seen: list[tuple[str, int]] = []
    fetched = fetch_bci_iiib(
        dest,
        mirrors=[file_server.url + "/good/{name}"],
        files=served_files,
        progress=lambda name, done, total: seen.append((name, done)),
    )
    assert sorted(p.name for p in fetched) == sorted(FILES)
    assert listing(dest) == sorted(FILES)
    assert all(git_blob_sha1(dest / n) == s.git_sha1 for n, s in served_files.items())
    assert {name for name, _ in seen} == set(FILES)
    assert fetch_bci_iiib(dest, mirrors=[unused_url() + "/{name}"], files=served_files) == []


def test_fetch_falls_back_to_the_next_mirror(tmp_path, file_server, served_files) -> None:
    dest = tmp_path / "data"
    mirrors = [
        unused_url() + "/{name}",
        file_server.url + "/wrong/{name}",
        file_server.url + "/good/{name}",
    ]
    fetch_bci_iiib(dest, mirrors=mirrors, files=served_files)
    assert listing(dest) == sorted(FILES)


@pytest.mark.parametrize(
    ("route", "fragment"),
    [
        ("wrong", "git SHA-1"),
        ("short", "bytes, expected"),
        ("broken", "connection closed after"),
        ("missing", "404"),
    ],
)
def test_failed_fetch_never_lands(tmp_path, file_server, served_files, route, fragment) -> None:
    dest = tmp_path / "data"
    with pytest.raises(DataError) as info:
        fetch_bci_iiib(dest, mirrors=[file_server.url + f"/{route}/{{name}}"], files=served_files)
    assert "by hand" in str(info.value) and fragment in " ".join(info.value.details)
    assert listing(dest) == []


def test_no_mirror_reachable_says_where_to_put_files(tmp_path, served_files) -> None:
    dest = tmp_path / "data"
    with pytest.raises(DataError) as info:
        fetch_bci_iiib(dest, mirrors=[unused_url() + "/{name}"], files=served_files, timeout=2)
    assert "by hand" in str(info.value) and f"data folder: {dest}" in info.value.details
    assert not dest.exists()


def test_load_dataset_offline_does_not_fetch(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EEGTUNE_MIRRORS", "http://127.0.0.1:9/{name}")
    with pytest.raises(DataError, match="offline mode is on"):
        load_dataset("bci-iiib", tmp_path, offline=True)
    monkeypatch.setenv("EEGTUNE_OFFLINE", "1")
    with pytest.raises(DataError, match="offline mode is on"):
        load_dataset("bci-iiib", tmp_path)


def test_load_dataset_fetches_missing_files(tmp_path, monkeypatch) -> None:
    url = unused_url()
    monkeypatch.setenv("EEGTUNE_MIRRORS", url + "/{name}")
    monkeypatch.delenv("EEGTUNE_OFFLINE", raising=False)
    with pytest.raises(DataError, match="could not download S4b_train.npz") as info:
        load_dataset("bci-iiib", tmp_path / "data")
    assert any(url in line for line in info.value.details)
    assert not (tmp_path / "data").exists()


def test_unknown_dataset_is_a_data_error() -> None:
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("mnist")
