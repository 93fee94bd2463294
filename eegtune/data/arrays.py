"""Your own EEG arrays: the ``npz:DIR`` dataset.

DIR holds ``train.npz`` and ``test.npz``, each with

- ``X``: float, shape (trials, channels, samples);
- ``y``: integer or string labels, one per trial;
- ``subject`` (optional, in both files or in neither): integer or string, one per trial;
- ``sfreq`` (optional, in both files or in neither, the same): the sampling rate in Hz, one
  number (the classical references filter with it; without it, the lab's 125 Hz).

Labels map to classes 0..K-1 in sorted order, the same in both files; the study remembers the
mapping. Validation is as strict as for the lab files, and each problem is one line naming the
file. NaNs are filled with the training set's channel means, as for BCI IIIb.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from eegtune.data.archive import read_archive
from eegtune.data.dataset import Dataset, from_arrays
from eegtune.errors import DataError

__all__ = ["load_npz", "read_npz"]

FILES = ("train.npz", "test.npz")
HINT = "see README.md, 'Your own data'"


class Arrays(NamedTuple):
    """One validated file: signals, labels as given, subjects (or None), rate (or None)."""

    x: np.ndarray
    y: np.ndarray
    subject: np.ndarray | None
    sfreq: float | None = None


def _rate(path: Path, values: np.ndarray) -> float:
    """The ``sfreq`` array as one positive, finite number of Hz."""
    if values.size == 1 and values.dtype.kind in "iuf":
        rate = float(values.reshape(()))
        if np.isfinite(rate) and rate > 0:
            return rate
    raise DataError(
        f"{path}: sfreq must be one positive number (the sampling rate in Hz), got "
        f"{values.reshape(-1)[:3].tolist()} of dtype {values.dtype}"
    )


def _labels(path: Path, key: str, values: np.ndarray, n: int) -> np.ndarray:
    """Integer or string labels of shape (n,); integral floats become integers."""
    if values.shape != (n,):
        raise DataError(
            f"{path}: {key} has shape {values.shape}, expected ({n},): one value per trial of X"
        )
    if np.issubdtype(values.dtype, np.integer) or values.dtype.kind == "U":
        return values
    if np.issubdtype(values.dtype, np.floating) and np.isfinite(values).all():
        if (values == np.round(values)).all():
            return values.astype(np.int64)
    raise DataError(f"{path}: {key} has dtype {values.dtype}; use integers or strings ({HINT})")


def read_npz(path: Path) -> Arrays:
    """Read and validate one file of an ``npz:`` folder."""
    if not path.is_file():
        raise DataError(f"{path}: file not found; an npz: folder holds {' and '.join(FILES)}")
    try:
        arrays, names = read_archive(path, ("X", "y", "subject", "sfreq"), HINT)
        missing = {"X", "y"} - set(arrays)
        if missing:
            found = ", ".join(sorted(names)) or "none"
            raise DataError(
                f"{path}: missing array(s) {', '.join(sorted(missing))} (found: {found}); " + HINT
            )
        x, y, subject = arrays["X"], arrays["y"], arrays.get("subject")
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: not a readable npz archive ({reason}); {HINT}") from None
    if x.ndim != 3 or 0 in x.shape:
        raise DataError(
            f"{path}: X has shape {x.shape}, expected (trials, channels, samples), none empty"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{path}: X has dtype {x.dtype}, expected floats (X.astype('float32'))")
    n_inf = int(np.isinf(x).sum())
    if n_inf:
        raise DataError(f"{path}: X holds {n_inf} infinite value(s); replace them with NaN or data")
    all_nan = [c for c in range(x.shape[1]) if np.isnan(x[:, c, :]).all()]
    if all_nan:
        raise DataError(f"{path}: channel {all_nan[0]} of X is entirely NaN; drop it")
    y = _labels(path, "y", y, x.shape[0])
    if subject is not None:
        subject = _labels(path, "subject", subject, x.shape[0]).astype(str)
    sfreq = _rate(path, arrays["sfreq"]) if "sfreq" in arrays else None
    return Arrays(x, y, subject, sfreq)


def _class_names(train: Path, test: Path, y_train: np.ndarray, y_test: np.ndarray) -> list:
    """Sorted labels shared by both files (at least two), or the one-line reason why not."""
    if (y_train.dtype.kind == "U") != (y_test.dtype.kind == "U"):
        kinds = {True: "strings", False: "integers"}
        raise DataError(
            f"{test}: y holds {kinds[y_test.dtype.kind == 'U']} but {train.name} holds "
            f"{kinds[y_train.dtype.kind == 'U']}; use the same labels in both files"
        )
    labels = np.unique(y_train)
    if len(labels) < 2:
        raise DataError(f"{train}: every trial has label {labels[0]}; a dataset needs 2+ classes")
    for path, here, there in ((test, y_test, y_train), (train, y_train, y_test)):
        absent = np.setdiff1d(np.unique(there), np.unique(here))
        if len(absent):
            shown = ", ".join(str(v) for v in absent[:5])
            raise DataError(
                f"{path}: no trial of class(es) {shown}, which the other file has; "
                "both files need every class"
            )
    return list(labels)


def load_npz(
    target: str, subjects: Sequence[str] = (), preprocessing: Mapping[str, object] | None = None
) -> Dataset:
    """The ``npz:DIR`` dataset loader (``subjects`` are applied by the caller)."""
    folder = Path(target)
    if not folder.is_dir():
        raise DataError(f"npz:{folder}: no such folder; it must hold {' and '.join(FILES)}")
    train_path, test_path = (folder / name for name in FILES)
    train, test = read_npz(train_path), read_npz(test_path)
    if train.x.shape[1:] != test.x.shape[1:]:
        raise DataError(
            f"{test_path}: trials are {test.x.shape[1]} channels x {test.x.shape[2]} samples but "
            f"{train_path.name} has {train.x.shape[1]} x {train.x.shape[2]}; both must match"
        )
    if (train.subject is None) != (test.subject is None):
        has, lacks = (train_path, test_path) if test.subject is None else (test_path, train_path)
        raise DataError(f"{lacks}: no `subject` array, but {has.name} has one; give both or none")
    if (train.sfreq is None) != (test.sfreq is None):
        has, lacks = (train_path, test_path) if test.sfreq is None else (test_path, train_path)
        raise DataError(f"{lacks}: no `sfreq`, but {has.name} has one; give both or none")
    if train.sfreq != test.sfreq:
        raise DataError(
            f"{test_path}: sfreq is {test.sfreq:g} Hz but {train_path.name} says "
            f"{train.sfreq:g} Hz; both files must be sampled alike"
        )
    names = _class_names(train_path, test_path, train.y, test.y)
    labels = np.array(names)  # sorted: a label's position is its class
    data = from_arrays(
        (train.x, np.searchsorted(labels, train.y)),
        (test.x, np.searchsorted(labels, test.y)),
        name=f"npz:{folder}",
        class_names=[str(v) for v in names],
        subjects=(train.subject, test.subject),
    )
    return data if train.sfreq is None else replace(data, sampling_rate=train.sfreq)
