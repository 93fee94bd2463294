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

from eegtune.data.sources import DataSource
from eegtune.errors import StudyError
from eegtune.names import DEFAULT_OBJECTIVE, LAB_DATASET, PARAMS, objective_title
from eegtune.search.storages import failure_reason, retry_races

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

__all__ = [
    "COLUMNS",
    "EVALUATION_DATA_KEY",
    "EVALUATION_KEY",
    "SPEC_KEYS",
    "StudySpec",
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
    "trial_source",
]

logger = logging.getLogger(__name__)

EVALUATION_KEY = "evaluation"
"""Prefix of the study user attributes ``evaluation <label>``: one readable line per evaluated
configuration (what the dashboard shows); the full results are the system attribute below."""
EVALUATION_DATA_KEY = "eegtune:evaluation"


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


SPEC_KEYS = (
    "dataset", "subjects", "preprocessing", "split_seed", "val_fraction", "folds", "objective",
    "data", "model",
)  # fmt: skip
"""The study user attributes :class:`StudySpec` writes, in this order: ``model`` last, so that
its presence marks the keys complete (see :func:`_finished_keys`)."""


@dataclass(frozen=True)
class StudySpec:
    """What a study is: the network, the data, the validation split and the objective.

    Stored as the study's user attributes (:meth:`to_attrs`) and read back from them
    (:meth:`from_attrs`), so that every trial, every later worker, ``evaluate`` and ``report``
    do the same job on the same data. The only place where these attributes are named.
    """

    model: str
    source: DataSource
    split_seed: int = 0
    val_fraction: float = 0.2
    objective: str = DEFAULT_OBJECTIVE
    data: dict[str, Any] = field(default_factory=dict)  # Dataset.fingerprint(); {}: unknown
    folds: int = 1  # 1: one hold-out of val_fraction; K >= 2: K stratified folds

    def describe_split(self) -> str:
        """What trials are scored on: ``5 stratified folds of the training set (split seed 0)``
        or ``a 20% hold-out of the training set (split seed 0)``."""
        seed = f"(split seed {self.split_seed})"
        if self.folds > 1:
            return f"{self.folds} stratified folds of the training set {seed}"
        return f"a {self.val_fraction:.0%} hold-out of the training set {seed}"

    def to_attrs(self) -> dict[str, Any]:
        """The study user attributes, in :data:`SPEC_KEYS` order."""
        values = {
            **self.source.attrs(),
            "split_seed": self.split_seed,
            "val_fraction": self.val_fraction,
            "folds": self.folds,
            "objective": self.objective,
            "data": dict(self.data),
            "model": self.model,
        }
        return {key: values[key] for key in SPEC_KEYS}

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> StudySpec:
        """The spec a study remembers. Studies made before a key existed get what they used
        then: the lab's dataset, all subjects, the best-epoch objective, no fingerprint."""
        return cls(
            model=str(attrs.get("model", "")),
            source=DataSource.from_attrs(attrs, LAB_DATASET),
            split_seed=int(attrs.get("split_seed", 0)),
            val_fraction=float(attrs.get("val_fraction", 0.2)),
            folds=int(attrs.get("folds", 1)),
            objective=str(attrs.get("objective", "best")),
            data=dict(attrs.get("data") or {}),
        )


def create_or_check_study(
    storage: BaseStorage,
    name: str,
    spec: StudySpec,
    explicit: frozenset[str] = frozenset(),
    suggest: str | None = None,
) -> tuple[optuna.Study, StudySpec]:
    """Create the study, or load it and check that it was made for the same job.

    Args:
        explicit: Keys of ``spec`` the user gave (``split_seed``, ``val_fraction``,
            ``objective``); those must agree with the study's, the others are the study's.
        suggest: A study name to offer when this one was made for other data.

    Returns:
        The study and the spec to use: a study keeps its validation split and objective.

    Raises:
        StudyError: the storage failed, the study was made for another model or dataset, or
            an explicit option conflicts with what the study was made with.
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
            study.set_metric_names([objective_title(spec.objective)])
    attrs = _finished_keys(study)
    if attrs is None:  # a new study: remember the spec ("model" last: it marks it complete)
        for key, value in spec.to_attrs().items():
            study.set_user_attr(key, value)
        return study, spec
    stored = StudySpec.from_attrs(attrs)
    if (stored.model, stored.source.dataset) != (spec.model, spec.source.dataset):
        other = suggest if suggest and suggest != name else f"{name}-{spec.source.dataset}"
        raise StudyError(
            f"study {name!r} was made for model {stored.model} on {stored.source.dataset}, not "
            f"{spec.model} on {spec.source.dataset}; search with --study {other} instead"
        )
    flags = {"split_seed": "--split-seed", "val_fraction": "--val-fraction",
             "objective": "--objective", "folds": "--folds"}  # fmt: skip
    for key in sorted(explicit):
        before, now = getattr(stored, key), getattr(spec, key)
        if before != now:
            raise StudyError(
                f"study {name!r} was made with {flags[key]} {before}, not {now}; drop "
                f"{flags[key]} to continue it, or choose another --study name"
            )
    for key, flag in (("subjects", "--subject"), ("preprocessing", "preprocessing options")):
        before, now = getattr(stored.source, key), getattr(spec.source, key)
        if before != now:
            raise StudyError(
                f"study {name!r} was made with {key} {_shown(key, before)}, not "
                f"{_shown(key, now)}; give the same {flag} or choose another --study name"
            )
    if stored.data and spec.data:
        check_data(name, stored.data, spec.data)
    elif spec.data:  # made before studies remembered their data, or by compare's first step
        study.set_user_attr("data", spec.data)
    kept = replace(
        spec,
        split_seed=stored.split_seed,
        val_fraction=stored.val_fraction,
        folds=stored.folds,
        objective=stored.objective,
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
        if not any(stored.get(k) is not None for k in SPEC_KEYS):
            return None
        if time.monotonic() >= deadline:
            logger.warning("study %r was left half-created; completing it", study.study_name)
            return None
        time.sleep(0.1)


def _shown(key: str, value: tuple[Any, ...]) -> str:
    """Subjects (``1, 2``, or ``all``) or preprocessing (``fmin=4.0, ...``, or ``none``)."""
    if key == "preprocessing":
        return ", ".join(f"{k}={v}" for k, v in value) or "none"
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
            f"test accuracy {100 * r['mean']:.2f}% (sd {100 * r['std']:.2f}) over "
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
    "source",
)


def trial_source(trial: FrozenTrial) -> str:
    """Where a trial's configuration came from: ``lab's settings`` (compare's baseline),
    ``portfolio N`` (the network's first design, :mod:`eegtune.search.portfolio`), ``warm start
    from STUDY`` or ``sampler``."""
    attrs = trial.user_attrs
    if attrs.get("baseline"):
        return "lab's settings"
    if attrs.get("portfolio") is not None:
        return f"portfolio {int(attrs['portfolio']) + 1}"
    if attrs.get("warm_start"):
        return f"warm start from {attrs['warm_start']}"
    return "sampler"


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
        "source": trial_source(trial),
    }
