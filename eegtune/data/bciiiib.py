"""BCI Competition III dataset IIIb: the published files and their fingerprints, reading and
validating them, and :func:`load_bci_iiib`.

Downloading lives in :mod:`eegtune.data.fetch`. Raw lab format, per file: an uncompressed
``np.savez`` archive with ``signal`` float64 (trials, 750, 2) and ``label`` float64 (trials,)
holding 1 (left hand) and 2 (right hand).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eegtune.data.archive import read_archive
from eegtune.data.dataset import Dataset, from_arrays
from eegtune.errors import DataError
from eegtune.names import LAB_DATASET

__all__ = [
    "FILES",
    "LAB_CLASSES",
    "READ_CHUNK",
    "FileInfo",
    "FileSpec",
    "ProgressHook",
    "git_blob_sha1",
    "inspect_file",
    "inspect_folder",
    "load_bci_iiib",
    "matches_published",
    "missing_files",
    "prepare",
]

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


def inspect_folder(data_dir: Path | str) -> dict[str, FileInfo | DataError]:
    """Inspect each BCI IIIb file in ``data_dir``: its summary, or what is wrong with it."""
    found: dict[str, FileInfo | DataError] = {}
    for name in FILES:
        try:
            found[name] = inspect_file(Path(data_dir) / name)
        except DataError as exc:
            found[name] = exc
    return found


LAB_CLASSES = ("left_hand", "right_hand")  # labels 1 and 2 of the lab files (MOABB's names)


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
