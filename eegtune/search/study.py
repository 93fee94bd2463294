"""eegtune's Optuna studies: creating and checking them, stored evaluations, trial rows.

Opening storages lives in :mod:`eegtune.search.storages`.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from eegtune.errors import StudyError
from eegtune.names import PARAMS
from eegtune.search.storages import failure_reason, retry_races

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

__all__ = [
    "COLUMNS",
    "EVALUATION_DATA_KEY",
    "EVALUATION_KEY",
    "METRIC_NAME",
    "StudyKeys",
    "best_by_activation",
    "check_data",
    "completed_trials",
    "create_or_check_study",
    "load_evaluation",
    "load_study",
    "save_evaluation",
    "save_seed",
    "load_seeds",
    "quiet_optuna",
    "remember_classes",
    "trial_id",
    "trial_row",
]

logger = logging.getLogger(__name__)

EVALUATION_KEY = "evaluation"
"""Prefix of the study user attributes ``evaluation <label>``: one readable line per evaluated
configuration (what the dashboard shows); the full results are the system attribute below."""
EVALUATION_DATA_KEY = "eegtune:evaluation"
METRIC_NAME = "validation accuracy"


def quiet_optuna() -> None:
    """Keep Optuna's per-trial log lines out of eegtune's own progress display."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)


def load_study(storage: BaseStorage, name: str, **kwargs: Any) -> optuna.Study:
    """Load an existing study, or raise :class:`StudyError` listing the ones that exist."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage, **kwargs)
    except KeyError:
        names = optuna.study.get_all_study_names(storage)
        listing = ", ".join(names) if names else "none"
        raise StudyError(f"no study named {name!r} in this storage (studies: {listing})") from None


@dataclass(frozen=True)
class StudyKeys:
    """What a study remembers so that every trial and every later worker does the same job."""

    model: str
    dataset: str
    split_seed: int
    val_fraction: float
    objective: str = "best"  # what studies made before the choice was stored used
    subjects: list[str] = field(default_factory=list)  # all subjects when empty
    preprocessing: dict[str, float | None] = field(default_factory=dict)  # moabb: only
    data: dict[str, Any] = field(default_factory=dict)  # Dataset.fingerprint(); {}: unknown


def create_or_check_study(
    storage: BaseStorage, name: str, keys: StudyKeys
) -> tuple[optuna.Study, StudyKeys]:
    """Create the study, or load it and check that it was made for the same job.

    Returns:
        The study and the keys to use: a study keeps its validation split, so a request for
        another split gets the stored one back (with a warning).

    Raises:
        StudyError: the storage failed, or the study was made for another model or dataset.
    """
    import optuna

    try:
        study = retry_races(
            lambda: optuna.create_study(
                storage=storage, study_name=name, direction="maximize", load_if_exists=True
            )
        )
    except Exception as exc:  # a storage that broke after it answered
        raise StudyError(f"cannot create study {name!r}: {failure_reason(exc)}") from None
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise StudyError(f"study {name!r} minimises; it was not made by eegtune")
    if study.metric_names is None:  # the dashboard's name for the objective
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([METRIC_NAME])
    stored = _finished_keys(study)
    if stored is None:  # a new study: remember the keys, "model" last (it marks them complete)
        for key, value in vars(keys).items():
            if key != "model":
                study.set_user_attr(key, value)
        study.set_user_attr("model", keys.model)
        return study, keys
    if (stored.get("model"), stored.get("dataset")) != (keys.model, keys.dataset):
        raise StudyError(
            f"study {name!r} was made for model {stored.get('model')} on "
            f"{stored.get('dataset')}; choose another --study name"
        )
    for key, flag in (("subjects", "--subject"), ("preprocessing", "preprocessing options")):
        before, now = stored.get(key) or type(getattr(keys, key))(), getattr(keys, key)
        if before != now:
            raise StudyError(
                f"study {name!r} was made with {key} {_shown(before)}, not {_shown(now)}; "
                f"give the same {flag} or choose another --study name"
            )
    stored_data = stored.get("data") or {}
    if stored_data and keys.data:
        check_data(name, stored_data, keys.data)
    elif keys.data:  # made before studies remembered their data, or by compare's first step
        study.set_user_attr("data", keys.data)
    kept = replace(
        keys,
        split_seed=int(stored["split_seed"]),
        val_fraction=float(stored["val_fraction"]),
        objective=str(stored.get("objective", "best")),
    )
    if kept != keys:
        logger.warning(
            "study %r keeps its validation split (split seed %s, fraction %s) and objective %s",
            name,
            kept.split_seed,
            kept.val_fraction,
            kept.objective,
        )
    return study, kept


def check_data(name: str, stored: dict[str, Any], now: dict[str, Any]) -> None:
    """Refuse data other than the study was made on, naming what changed.

    Raises:
        StudyError: shapes, classes or content differ from the stored fingerprint.
    """

    def shape(value: Any) -> str:
        return "x".join(str(n) for n in value or [])

    for key, what, show in (
        ("train", "training set shape", shape),
        ("test", "test set shape", shape),
        ("classes", "classes", lambda v: ", ".join(map(str, v or []))),
    ):
        if stored.get(key) != now.get(key):
            raise StudyError(
                f"study {name!r} was made on data with {what} {show(stored.get(key))}, not "
                f"{show(now.get(key))}: the data changed; give the same data or choose "
                "another --study name"
            )
    if stored.get("hash") != now.get("hash"):
        raise StudyError(
            f"study {name!r} was made on other data (same shapes and classes, different "
            "values); give the same data or choose another --study name"
        )


INIT_WAIT_S = 30.0
"""How long to wait for another process that is writing a new study's keys."""


def _finished_keys(study: optuna.Study, wait: float | None = None) -> dict[str, Any] | None:
    """The study's stored keys, once complete; None for a study nobody has claimed.

    The creator writes ``model`` last. Keys without ``model`` are another process's creation
    in progress: wait for it; a creator that died half-way (after ``wait`` seconds) leaves the
    study to whoever comes next.
    """
    deadline = time.monotonic() + (INIT_WAIT_S if wait is None else wait)
    while True:
        stored = study.user_attrs
        if stored.get("model") is not None:
            return stored
        if not any(stored.get(k) is not None for k in StudyKeys.__dataclass_fields__):
            return None
        if time.monotonic() >= deadline:
            logger.warning("study %r was left half-created; completing it", study.study_name)
            return None
        time.sleep(0.1)


def _shown(value: list[str] | dict[str, float | None]) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
    return ", ".join(value) or "all"


def remember_classes(study: optuna.Study, classes: tuple[str, ...]) -> None:
    """Store the class names (the label of class 0, 1, ...) for reports, once."""
    if study.user_attrs.get("classes") is None:
        study.set_user_attr("classes", list(classes))


SEED_KEY = "eegtune:seed"
"""Prefix of the study system attributes ``eegtune:seed <label> <seed>``: one record per
configuration and seed, written the moment that seed is tested. Concurrent ``evaluate`` or
``compare`` runs write different keys, so none loses another's results, and an interrupted
run keeps every finished seed."""


def save_seed(
    storage: BaseStorage, study: optuna.Study, label: str, seed: int, record: dict[str, Any]
) -> None:
    """Store one tested seed of configuration ``label`` (see :data:`SEED_KEY`)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    storage.set_study_system_attr(study_id, f"{SEED_KEY} {label} {seed}", record)


def load_seeds(storage: BaseStorage, study: optuna.Study) -> dict[str, dict[int, dict[str, Any]]]:
    """Every stored seed record, by label and seed."""
    study_id = storage.get_study_id_from_name(study.study_name)
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for key, record in storage.get_study_system_attrs(study_id).items():
        label, _, seed = key[len(SEED_KEY) + 1 :].rpartition(" ")
        if key.startswith(SEED_KEY + " ") and seed.isdigit() and isinstance(record, dict):
            out.setdefault(label, {})[int(seed)] = record
    return out


def save_evaluation(
    storage: BaseStorage, study: optuna.Study, results: dict[str, dict[str, Any]]
) -> None:
    """Store ``evaluate``'s full results (a system attribute) and a readable line per label
    (the user attribute the dashboard shows). Labels stored meanwhile by a concurrent run
    are kept (read again just before writing; the seed records hold them in any case)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    current = storage.get_study_system_attrs(study_id).get(EVALUATION_DATA_KEY)
    merged = {**(current if isinstance(current, dict) else {}), **results}
    storage.set_study_system_attr(study_id, EVALUATION_DATA_KEY, merged)
    for label, r in results.items():
        study.set_user_attr(
            f"{EVALUATION_KEY} {label}",
            f"test accuracy {100 * r['mean']:.2f}% ± {100 * r['std']:.2f} over "
            f"{len(r['test_acc'])} seed(s); trial {r['trial']}, {r['epochs']} epochs",
        )


def load_evaluation(storage: BaseStorage, study: optuna.Study) -> dict[str, dict[str, Any]]:
    """``evaluate``'s full results per label ({} before any); reads the older layout too,
    where the user attribute held the full results."""
    study_id = storage.get_study_id_from_name(study.study_name)
    full = storage.get_study_system_attrs(study_id).get(EVALUATION_DATA_KEY)
    if isinstance(full, dict):
        return dict(full)
    legacy = study.user_attrs.get(EVALUATION_KEY) or {}
    return {k: v for k, v in legacy.items() if isinstance(v, dict)}


def trial_id(storage: BaseStorage, study: optuna.Study, number: int) -> int:
    """The storage's id of trial ``number`` (public storage API, no private attributes)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, number)


def completed_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's completed trials with a value, best first (ties: lower number first)."""
    from optuna.trial import TrialState

    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None
    ]
    return sorted(done, key=lambda t: (-(t.value or 0.0), t.number))


def best_by_activation(ranked: Sequence[FrozenTrial]) -> dict[str, FrozenTrial]:
    """The first (best) trial of each activation in ``ranked``, a best-first list."""
    best: dict[str, FrozenTrial] = {}
    for trial in ranked:
        best.setdefault(str(trial.params.get("activation")), trial)
    return best


#: Columns of a trial row: the export schema of ``eegtune report`` and the CLI's trial tables.
COLUMNS = (
    "study",
    "model",
    "trial",
    "value",
    "activation",
    "dropout",
    "lr",
    "batch_size",
    "weight_decay",
    "best_epoch",
    "epochs_trained",
    "duration_s",
    "device",
    "n_params",
)


def trial_row(study_name: str, model: str, trial: FrozenTrial) -> dict[str, Any]:
    """One trial as a flat row with the :data:`COLUMNS` keys."""
    params = trial.params
    return {
        "study": study_name,
        "model": model,
        "trial": trial.number,
        "value": trial.value,
        **{k: params.get(k) for k in PARAMS},
        "best_epoch": trial.user_attrs.get("best_epoch"),
        "epochs_trained": trial.user_attrs.get("epochs_trained"),
        "duration_s": round(trial.duration.total_seconds(), 3) if trial.duration else None,
        "device": trial.user_attrs.get("device"),
        "n_params": trial.user_attrs.get("n_params"),
    }
