"""The model-ready :class:`Dataset` (classes, subjects, chance, fingerprint), built from arrays
with NaN fill; seeded stratified splits.

Model format: inputs (N, 1, channels, samples) float32, labels 0..K-1 int64.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple, TypedDict

import numpy as np

from eegtune.errors import DataError

__all__ = [
    "Dataset",
    "ModelShape",
    "Split",
    "chance_level",
    "check_folds",
    "from_arrays",
    "stratified_folds",
    "stratified_split",
]

logger = logging.getLogger(__name__)


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
    sampling_rate: float = 125.0  # Hz; the lab's rate unless the loader knows another
    band: tuple[float, float] | None = None  # the band-pass already applied, where known (Hz)

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

    def test_accuracy(self, predicted: np.ndarray) -> tuple[float, dict[str, float]]:
        """Accuracy of test-set predictions, and per subject where the data says whose
        trial is whose."""
        correct = np.asarray(predicted) == self.y_test
        by_subject = {}
        if self.test_subjects is not None:
            for subject in np.unique(self.test_subjects):
                by_subject[str(subject)] = float(correct[self.test_subjects == subject].mean())
        return float(correct.mean()), by_subject

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

    def folds(self, k: int, seed: int) -> list[Split]:
        """``k`` seeded folds of the training set, stratified by class and subject (where the
        data says whose trial is whose): fold ``i`` validates on its part, trains on the rest."""
        parts = stratified_folds(self.y_train, k, seed, groups=self.train_subjects)
        everything = np.arange(len(self.y_train))
        splits = []
        for val_idx in parts:
            train_idx = np.setdiff1d(everything, val_idx)
            splits.append(
                Split(
                    self.x_train[train_idx],
                    self.y_train[train_idx],
                    self.x_train[val_idx],
                    self.y_train[val_idx],
                )
            )
        return splits

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


def _fill_nan(x: np.ndarray, channel_means: np.ndarray) -> int:
    """Fill NaNs in place with per-channel means; return how many were filled."""
    mask = np.isnan(x)
    n = int(mask.sum())
    if n:
        fill = np.broadcast_to(channel_means[None, None, :, None], x.shape)
        x[mask] = fill[mask]
    return n


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


def check_folds(labels: np.ndarray, k: int) -> None:
    """Refuse ``k`` folds that some fold could not hold every class in.

    Raises:
        DataError: ``k`` below 2, or above the size of the smallest class.
    """
    counts = np.bincount(labels)
    smallest = int(counts[counts > 0].min()) if len(labels) else 0
    if k < 2:
        raise DataError(f"--folds needs at least 2 folds, got {k}")
    if k > smallest:
        raise DataError(
            f"--folds {k} is more than the {smallest} training trials of the smallest class; "
            f"choose at most --folds {smallest}"
        )


def stratified_folds(
    labels: np.ndarray, k: int, seed: int, groups: np.ndarray | None = None
) -> list[np.ndarray]:
    """Seeded stratified K-fold: the sorted validation indices of each of ``k`` folds.

    Trials are dealt round-robin to the folds within each class (and each subject, where
    ``groups`` gives them), in a seeded random order, so every fold holds each class and
    subject in proportion, and every trial validates exactly once.

    Raises:
        DataError: ``k`` below 2, or above the size of the smallest class (a fold would
            miss that class).
    """
    check_folds(labels, k)
    rng = np.random.default_rng(seed)
    strata = (
        labels.astype(str)
        if groups is None
        else np.char.add(labels.astype(str), np.char.add("|", np.asarray(groups).astype(str)))
    )
    fold_of = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for stratum in np.unique(strata):
        idx = rng.permutation(np.flatnonzero(strata == stratum))
        fold_of[idx] = (np.arange(len(idx)) + offset) % k
        offset += len(idx)  # a small stratum's trials do not all land in fold 0
    return [np.flatnonzero(fold_of == i) for i in range(k)]
