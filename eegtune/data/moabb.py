"""MOABB motor-imagery datasets: the ``moabb:NAME`` dataset (extra ``eegtune[moabb]``).

Trials come from MOABB's ``MotorImagery`` paradigm with eegtune's defaults
(:data:`eegtune.data.sources.MOABB_PREPROCESSING`): 4-38 Hz band-pass, the dataset's imagery
window, 125 Hz. Signals are in microvolts, as MOABB scales them.

Train/test split: where a subject has two or more sessions, the last session (in MOABB's
order) is the test set and the others the training set, as in the competitions these
datasets come from (BCI IV 2a: session ``0train`` / ``1test``). With one session, each
subject's trials are split 75/25, stratified by class, with seed 0 (the same every time).

Downloading and caching are MOABB's and MNE's (``MNE_DATA``, default ``~/mne_data``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from eegtune.data.dataset import Dataset, from_arrays, stratified_split
from eegtune.data.sources import MOABB_PREPROCESSING
from eegtune.errors import DataError

__all__ = ["TEST_FRACTION", "load_moabb", "moabb_split"]

TEST_FRACTION = 0.25
"""Test share of each subject's trials for single-session datasets (seed 0, stratified)."""


def _import_moabb() -> Any:
    try:
        import mne
        import moabb.datasets
        import moabb.datasets.fake
        import moabb.paradigms
    except ImportError:
        raise DataError(
            "moabb: datasets need MOABB; install it with: pip install 'eegtune[moabb]'"
        ) from None
    mne.set_log_level("ERROR")
    logging.getLogger("moabb").setLevel(logging.ERROR)
    return moabb


def _dataset(moabb: Any, name: str) -> Any:
    """Instantiate the MOABB dataset class called ``name`` (FakeDataset: seed 0)."""
    if name == "FakeDataset":  # MOABB's offline stand-in; seeded so that reloads agree
        return moabb.datasets.fake.FakeDataset(seed=0)
    cls = getattr(moabb.datasets, name, None)
    from moabb.datasets.base import BaseDataset

    if not (isinstance(cls, type) and issubclass(cls, BaseDataset)):
        from moabb.datasets.utils import dataset_list

        imagery = sorted(d.__name__ for d in dataset_list if _is_imagery(d))
        raise DataError(
            f"unknown MOABB dataset {name!r}; motor-imagery datasets include: "
            f"{', '.join(imagery[:12])}, ... (and FakeDataset, offline)"
        )
    return cls()


def _is_imagery(cls: type) -> bool:
    try:
        return getattr(cls(), "paradigm", None) == "imagery"
    except Exception:  # a dataset whose constructor needs arguments or files
        return False


def _subject_ids(dataset: Any, name: str, subjects: Sequence[str]) -> list[Any]:
    """MOABB subject ids for ``--subject`` values (all subjects when none are given)."""
    known = list(dataset.subject_list)
    if not subjects:
        return known
    by_text = {str(s): s for s in known}
    unknown = [s for s in subjects if s not in by_text]
    if unknown:
        shown = f"{known[0]}..{known[-1]}" if len(known) > 6 else ", ".join(map(str, known))
        raise DataError(f"moabb:{name} has no subject {unknown[0]} (subjects: {shown})")
    return [by_text[s] for s in subjects]


def moabb_split(sessions: np.ndarray, subjects: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Whether each trial is a test trial: last session, or a seeded 25% per subject."""
    test = np.zeros(len(labels), dtype=bool)
    for subject in np.unique(subjects):
        mine = subjects == subject
        own = list(dict.fromkeys(sessions[mine]))  # MOABB's session order
        if len(own) > 1:
            test[mine & (sessions == own[-1])] = True
            continue
        idx = np.flatnonzero(mine)
        _, held = stratified_split(labels[idx], TEST_FRACTION, seed=0)
        test[idx[held]] = True
    return test


def load_moabb(
    target: str, subjects: Sequence[str] = (), preprocessing: Mapping[str, Any] | None = None
) -> Dataset:
    """The ``moabb:NAME`` dataset loader: only ``subjects`` are loaded (all when empty)."""

    moabb = _import_moabb()
    options = {**MOABB_PREPROCESSING, **(preprocessing or {})}
    dataset = _dataset(moabb, target)
    paradigm = moabb.paradigms.MotorImagery(
        fmin=options["fmin"],
        fmax=options["fmax"],
        tmin=options["tmin"],
        tmax=options["tmax"],
        resample=options["resample"],
    )
    if not paradigm.is_valid(dataset):
        raise DataError(f"moabb:{target} is not a motor-imagery dataset (its paradigm: "
                        f"{getattr(dataset, 'paradigm', '?')}); choose one that is")  # fmt: skip
    ids = _subject_ids(dataset, target, subjects)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, y, meta = paradigm.get_data(dataset, subjects=ids)
    except OSError as exc:  # requests, urllib and pooch network errors are OSErrors
        import mne

        where = mne.get_config("MNE_DATA") or "~/mne_data"
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise DataError(
            f"moabb:{target}: cannot get the data ({reason}); MOABB downloads it once into "
            f"MNE_DATA ({where}): connect to the network or copy the files there"
        ) from None
    except ValueError as exc:  # MNE refusing a filter or window this dataset cannot have
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise DataError(
            f"moabb:{target}: MOABB cannot preprocess it this way ({reason}); change --fmin, "
            "--fmax, --tmin, --tmax or --resample"
        ) from None
    if len(y) == 0:
        raise DataError(f"moabb:{target}: no motor-imagery trials for subject(s) {ids}")
    trial_subjects = meta["subject"].astype(str).to_numpy()
    sessions = meta["session"].astype(str).to_numpy()
    names = np.unique(np.asarray(y).astype(str))
    labels = np.searchsorted(names, np.asarray(y).astype(str))
    test = moabb_split(sessions, trial_subjects, labels)
    signals = np.asarray(x, dtype=np.float64)
    data = from_arrays(
        (signals[~test], labels[~test]),
        (signals[test], labels[test]),
        name=f"moabb:{target}",
        class_names=[str(n) for n in names],
        subjects=(trial_subjects[~test], trial_subjects[test]),
    )
    return replace(
        data, sampling_rate=float(options["resample"]),
        band=(float(options["fmin"]), float(options["fmax"])),
    )  # fmt: skip
