"""The model-ready :class:`Dataset`; BCI Competition III dataset IIIb: fingerprints, load and
validate, NaN fill, splits; :func:`load_dataset`, which loads any dataset by name.

Downloading lives in :mod:`eegtune.fetch`, the synthetic dataset in :mod:`eegtune.synthetic`,
your own arrays (``npz:DIR``) in :mod:`eegtune.arrays`, MOABB in :mod:`eegtune.moabb_data`.

Raw lab format, per file: an uncompressed ``np.savez`` archive with ``signal`` float64
(trials, 750, 2) and ``label`` float64 (trials,) holding 1 (left hand) and 2 (right hand).
Model format: inputs (N, 1, channels, samples) float32, labels 0..K-1 int64.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypedDict

import numpy as np

from eegtune.errors import ConfigError, DataError
from eegtune.names import DATASET_KINDS, DATASETS, LAB_DATASET

__all__ = [
    "FILES",
    "READ_CHUNK",
    "DataError",
    "Dataset",
    "FileInfo",
    "FileSpec",
    "ModelShape",
    "ProgressHook",
    "Split",
    "git_blob_sha1",
    "inspect_file",
    "chance_level",
    "from_arrays",
    "inspect_folder",
    "load_bci_iiib",
    "load_dataset",
    "matches_published",
    "missing_files",
    "offline_from_env",
    "stratified_split",
]

if TYPE_CHECKING:
    from eegtune.sources import DataSource

logger = logging.getLogger(__name__)

ProgressHook = Callable[[str, int, int | None], None]
"""Called as ``hook(file_name, bytes_so_far, total_bytes_or_None)`` while downloading."""

N_CHANNELS = 2
N_SAMPLES = 750
SAMPLING_RATE = 125.0


@dataclass(frozen=True)
class FileSpec:
    """Published fingerprint of one dataset file."""

    size: int
    git_sha1: str


FILES: dict[str, FileSpec] = {
    "S4b_train.npz": FileSpec(6484788, "a5c0b401ea28c8bb723f3912fcabcc61a56a021e"),
    "S4b_test.npz": FileSpec(6484788, "60406fc64b256bdef23d40cb8f1b69a427d65c13"),
    "X11b_train.npz": FileSpec(6484788, "a5f55532d3212c83d80ffe56ea9fb6ede7b64537"),
    "X11b_test.npz": FileSpec(6484788, "d9a2fc3e965638fe8b6dd8be0868a928b179ff2e"),
}
TRAIN_FILES = ("S4b_train.npz", "X11b_train.npz")
TEST_FILES = ("S4b_test.npz", "X11b_test.npz")

READ_CHUNK = 1 << 16


# --------------------------------------------------------------------------- fingerprints


def git_blob_sha1(path: Path) -> str:
    """Return the git blob SHA-1 of a file: ``sha1(b"blob <size>\\0" + content)``."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(READ_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def matches_published(path: Path, spec: FileSpec | None = None) -> bool:
    """Whether a file has the published size and git blob SHA-1."""
    spec = spec or FILES.get(path.name)
    if spec is None or not path.is_file() or path.stat().st_size != spec.size:
        return False
    return git_blob_sha1(path) == spec.git_sha1


# --------------------------------------------------------------------------- validate and load


@dataclass(frozen=True)
class FileInfo:
    """What ``eegtune data info`` shows about one raw file."""

    path: Path
    n_trials: int
    shape: tuple[int, ...]
    n_nan: int
    class_counts: dict[int, int]
    matches_published: bool


def _read_raw(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate one lab-format file; return (signal, labels as given)."""
    if not path.is_file():
        raise DataError(
            f"{path}: file not found; run `eegtune data fetch --data-dir {path.parent}` "
            "or copy the BCI IIIb files there"
        )
    fix = "replace it with a good copy (delete it and run `eegtune data fetch`)"
    try:
        arrays, names = read_archive(path, ("signal", "label"), fix)
        missing = {"signal", "label"} - set(arrays)
        if missing:
            raise DataError(
                f"{path}: missing key(s) {', '.join(sorted(missing))} "
                f"(found: {', '.join(sorted(names)) or 'none'}); {fix}"
            )
        signal, label = arrays["signal"], arrays["label"]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"{path}: not a readable npz archive ({exc}); {fix}") from None

    if signal.ndim != 3 or signal.shape[1:] != (N_SAMPLES, N_CHANNELS) or signal.shape[0] == 0:
        raise DataError(
            f"{path}: signal has shape {signal.shape}, expected (trials, {N_SAMPLES}, "
            f"{N_CHANNELS}); {fix}"
        )
    if not np.issubdtype(signal.dtype, np.floating):
        raise DataError(f"{path}: signal has dtype {signal.dtype}, expected float64; {fix}")
    if label.shape != (signal.shape[0],):
        raise DataError(
            f"{path}: label has shape {label.shape}, expected ({signal.shape[0]},) to match "
            f"the signal; {fix}"
        )
    if not (np.issubdtype(label.dtype, np.floating) or np.issubdtype(label.dtype, np.integer)):
        raise DataError(f"{path}: label has dtype {label.dtype}, expected float64; {fix}")
    bad = ~np.isin(label, (1, 2))
    if bad.any():
        odd = ", ".join(str(v) for v in np.unique(label[bad])[:5])
        raise DataError(f"{path}: labels must be 1 or 2, found {odd}; {fix}")
    if len(np.unique(label)) < 2:
        raise DataError(
            f"{path}: every trial has label {label[0]:g}; a file needs both classes (1 and 2); "
            + fix
        )
    n_inf = int(np.isinf(signal).sum())
    if n_inf:
        raise DataError(f"{path}: signal holds {n_inf} infinite value(s); {fix}")
    all_nan = [c for c in range(N_CHANNELS) if np.isnan(signal[:, :, c]).all()]
    if all_nan:
        raise DataError(f"{path}: channel {all_nan[0]} is entirely NaN; {fix}")
    return signal, label


def inspect_file(path: Path | str) -> FileInfo:
    """Validate one raw file and summarise it (raises :class:`DataError` when invalid)."""
    path = Path(path)
    signal, label = _read_raw(path)
    classes, counts = np.unique(label.astype(np.int64), return_counts=True)
    return FileInfo(
        path=path,
        n_trials=int(signal.shape[0]),
        shape=tuple(signal.shape),
        n_nan=int(np.isnan(signal).sum()),
        class_counts={int(c): int(n) for c, n in zip(classes, counts, strict=True)},
        matches_published=matches_published(path),
    )


class ModelShape(TypedDict):
    """Input and output sizes of a network, as :func:`eegtune.models.build_model` takes them."""

    n_chans: int
    n_times: int
    n_outputs: int


class Split(NamedTuple):
    """Training and validation arrays of a hold-out split (unpacks in ``fit``'s order)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def inspect_folder(data_dir: Path | str) -> dict[str, FileInfo | DataError]:
    """Inspect each BCI IIIb file in ``data_dir``: its summary, or what is wrong with it."""
    found: dict[str, FileInfo | DataError] = {}
    for name in FILES:
        try:
            found[name] = inspect_file(Path(data_dir) / name)
        except DataError as exc:
            found[name] = exc
    return found


@dataclass
class Dataset:
    """Model-ready arrays: inputs (N, 1, channels, samples) float32 and labels 0..K-1 int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    nan_filled: int = 0
    test_subjects: np.ndarray | None = None  # the subject of each test trial, where known
    train_subjects: np.ndarray | None = None  # the subject of each training trial, where known
    class_names: tuple[str, ...] = ()  # the original label of class 0, 1, ...

    @property
    def input_shape(self) -> tuple[int, int]:
        """(channels, samples) of one trial."""
        return int(self.x_train.shape[2]), int(self.x_train.shape[3])

    @property
    def n_classes(self) -> int:
        if self.class_names:
            return len(self.class_names)
        return int(max(self.y_train.max(), self.y_test.max()) + 1)

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names in class-index order (the index itself where no name is known)."""
        return self.class_names or tuple(str(i) for i in range(self.n_classes))

    @property
    def chance(self) -> float:
        """Chance level: the test accuracy of always answering the most frequent test class."""
        return chance_level(self.y_test)

    @property
    def model_kwargs(self) -> ModelShape:
        """Input and output sizes for :func:`eegtune.models.build_model`."""
        channels, samples = self.input_shape
        return {"n_chans": channels, "n_times": samples, "n_outputs": self.n_classes}

    def fingerprint(self) -> dict[str, object]:
        """What a study remembers of its data: shapes, classes and a content hash (BLAKE2b
        over every array, a few milliseconds for the lab's 13 MB), to refuse changed data."""
        digest = hashlib.blake2b(digest_size=12)
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(str((array.dtype.str, array.shape)).encode())
            digest.update(np.ascontiguousarray(array).data)
        return {
            "train": list(self.x_train.shape),
            "test": list(self.x_test.shape),
            "classes": list(self.classes),
            "hash": digest.hexdigest(),
        }

    def holdout(self, val_fraction: float, seed: int) -> Split:
        """A seeded, stratified hold-out of the training set."""
        train_idx, val_idx = stratified_split(self.y_train, val_fraction, seed)
        return Split(
            self.x_train[train_idx],
            self.y_train[train_idx],
            self.x_train[val_idx],
            self.y_train[val_idx],
        )

    def restrict(self, subjects: Sequence[str]) -> Dataset:
        """Only the trials of ``subjects`` (training and test sets alike).

        Raises:
            DataError: the data does not say whose trial is whose, or a subject is not in it.
        """
        if not subjects:
            return self
        if self.train_subjects is None or self.test_subjects is None:
            raise DataError(
                f"--subject needs data that says which trial is whose; {self.name} does not "
                "(an npz: dataset gives it with a `subject` array)"
            )
        known = sorted(set(map(str, self.train_subjects)) & set(map(str, self.test_subjects)))
        unknown = [s for s in subjects if s not in known]
        if unknown:
            raise DataError(
                f"{self.name}: no subject {unknown[0]} in both training and test sets "
                f"(subjects: {', '.join(known)})"
            )
        train = np.isin(self.train_subjects.astype(str), list(subjects))
        test = np.isin(self.test_subjects.astype(str), list(subjects))
        return replace(
            self,
            x_train=self.x_train[train],
            y_train=self.y_train[train],
            x_test=self.x_test[test],
            y_test=self.y_test[test],
            train_subjects=self.train_subjects[train],
            test_subjects=self.test_subjects[test],
        )


def chance_level(labels: np.ndarray) -> float:
    """The accuracy of always answering the most frequent class of ``labels`` (>= 1/K)."""
    return float(np.bincount(labels).max() / len(labels))


def read_archive(
    path: Path, keys: Sequence[str], hint: str
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The arrays ``keys`` (those present) of the npz archive at ``path``, checked first, and
    the names of every array in it.

    A file that is not a zip archive (a ``.npy`` file, text) and a member whose header claims
    more data than the archive holds (a damaged or forged header, which numpy would try to
    allocate) are refused with one line, before anything large is read.

    Raises:
        DataError: naming the file and what is wrong, ending with ``hint``.
    """
    with path.open("rb") as fh:
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        raise DataError(f"{path}: is a .npy file (one array), not an npz archive; {hint}")
    if not magic.startswith(b"PK"):
        raise DataError(f"{path}: not a readable npz archive (not a zip file); {hint}")
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, np.load(path, allow_pickle=False) as arrays:
        for key in keys:
            if key not in arrays.files:
                continue
            info = archive.getinfo(f"{key}.npy")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                shape, _, dtype = (
                    np.lib.format.read_array_header_1_0(member)
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0(member)
                )
            claimed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if claimed > info.file_size:
                raise DataError(
                    f"{path}: array {key} claims shape {shape} ({claimed:,} bytes) but the file "
                    f"holds {info.file_size:,} bytes: the file is damaged; {hint}"
                )
            out[key] = arrays[key]
        return out, list(arrays.files)


def from_arrays(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    name: str,
    class_names: Sequence[str] = (),
    subjects: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> Dataset:
    """A :class:`Dataset` from (trials, channels, samples) arrays and 0..K-1 labels.

    NaNs in both sets are filled with the per-channel mean of the *training* set only.
    """
    for part, values in (("training", train[0]), ("test", test[0])):
        big = np.abs(values[np.isfinite(values)]).max(initial=0.0)
        if big > np.finfo(np.float32).max:
            raise DataError(
                f"the {part} set holds values up to {big:.3g}, beyond float32 (about 3.4e38), "
                "which the networks train in; rescale the data (for example to volts or µV)"
            )
    x_train = np.ascontiguousarray(train[0][:, None, :, :], dtype=np.float32)
    x_test = np.ascontiguousarray(test[0][:, None, :, :], dtype=np.float32)
    means = np.asarray(np.nanmean(x_train, axis=(0, 1, 3), dtype=np.float64), dtype=np.float32)
    filled = _fill_nan(x_train, means) + _fill_nan(x_test, means)
    if filled:
        logger.info("filled %d NaN values with training-set channel means", filled)
    return Dataset(
        x_train,
        np.asarray(train[1], dtype=np.int64),
        x_test,
        np.asarray(test[1], dtype=np.int64),
        name=name,
        nan_filled=filled,
        train_subjects=subjects[0],
        test_subjects=subjects[1],
        class_names=tuple(class_names),
    )


LAB_CLASSES = ("left_hand", "right_hand")  # labels 1 and 2 of the lab files (MOABB's names)


def _fill_nan(x: np.ndarray, channel_means: np.ndarray) -> int:
    """Fill NaNs in place with per-channel means; return how many were filled."""
    mask = np.isnan(x)
    n = int(mask.sum())
    if n:
        fill = np.broadcast_to(channel_means[None, None, :, None], x.shape)
        x[mask] = fill[mask]
    return n


def prepare(
    train: Sequence[tuple[np.ndarray, np.ndarray]],
    test: Sequence[tuple[np.ndarray, np.ndarray]],
    name: str,
) -> Dataset:
    """Turn raw lab-format (signal, label) parts into a model-ready :class:`Dataset`."""

    def joined(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        signal = np.concatenate([s.transpose(0, 2, 1) for s, _ in parts])
        return signal, np.concatenate([y.astype(np.int64) - 1 for _, y in parts])

    return from_arrays(joined(train), joined(test), name, LAB_CLASSES)


def load_bci_iiib(data_dir: Path | str) -> Dataset:
    """Load and validate the four BCI IIIb files (subjects S4 and X11).

    Returns:
        A :class:`Dataset` with 1080 training and 1080 test trials for the published files.

    Raises:
        DataError: naming the file and what is wrong with it.
    """
    data_dir = Path(data_dir)
    train = [_read_raw(data_dir / name) for name in TRAIN_FILES]
    test = [_read_raw(data_dir / name) for name in TEST_FILES]
    data = prepare(train, test, name=LAB_DATASET)
    subjects = [name.split("b_", 1)[0] for name in TEST_FILES]  # S4b_test.npz -> S4
    data.train_subjects = np.repeat(subjects, [len(label) for _, label in train])
    data.test_subjects = np.repeat(subjects, [len(label) for _, label in test])
    return data


def missing_files(data_dir: Path | str) -> list[str]:
    """Names of the dataset files absent from ``data_dir``."""
    return [name for name in FILES if not (Path(data_dir) / name).exists()]


def offline_from_env() -> bool:
    """Whether ``$EEGTUNE_OFFLINE`` asks never to download (set and not ``0``)."""
    return os.environ.get("EEGTUNE_OFFLINE", "") not in ("", "0")


def load_dataset(
    name: str | DataSource,
    data_dir: Path | str = "data",
    *,
    offline: bool | None = None,
    progress: ProgressHook | None = None,
) -> Dataset:
    """Load a dataset by name, or a :class:`~eegtune.sources.DataSource` with its subjects.

    Args:
        name: ``bci-iiib`` (fetched first when files are missing), ``synthetic``, ``npz:DIR``
            or ``moabb:NAME`` (see :data:`eegtune.names.DATASETS` and ``DATASET_KINDS``).
        data_dir: Folder with the BCI IIIb files.
        offline: Never download; default: :func:`offline_from_env`.
        progress: Download progress hook.
    """
    from eegtune.sources import DataSource, parse_source

    try:
        source = name if isinstance(name, DataSource) else parse_source(name)
    except ConfigError as exc:
        raise DataError(str(exc)) from None
    kind = DATASET_KINDS.get(source.kind)
    if kind is not None:  # npz:DIR or moabb:NAME
        loaded: Dataset = kind.load()(source.target, source.subjects, source.options)
        return loaded.restrict(source.subjects)
    entry = DATASETS.get(source.dataset)
    if entry is None:
        raise DataError(f"unknown dataset {source.dataset!r}; choose one of: {', '.join(DATASETS)}")
    offline = offline_from_env() if offline is None else offline
    dataset: Dataset = entry.load()(Path(data_dir), offline=offline, progress=progress)
    return dataset.restrict(source.subjects)


# --------------------------------------------------------------------------- splits


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, stratified hold-out: return sorted (train_idx, val_idx).

    Each class contributes ``round(n_class * val_fraction)`` trials to validation.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"validation fraction must lie in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    val_parts = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        n_val = int(round(len(idx) * val_fraction))
        if n_val == 0 or n_val == len(idx):
            raise DataError(
                f"validation fraction {val_fraction} leaves class {cls} empty in one part; "
                "choose a fraction between 0.05 and 0.5"
            )
        val_parts.append(rng.permutation(idx)[:n_val])
    val_idx = np.sort(np.concatenate(val_parts))
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return train_idx, val_idx
