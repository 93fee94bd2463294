"""Storages, samplers, pruners, and creating or loading eegtune's Optuna studies.

Storage strings:

- none: the journal file ``studies/eegtune.journal`` (or ``$EEGTUNE_STORAGE``);
- ``sqlite:///path.db``, ``postgresql://...``, ``mysql://...``: Optuna's RDB storage
  (``mysql://`` uses PyMySQL and ``postgresql://`` psycopg 3, or psycopg2 where only that is
  installed, unless a driver is named);
- ``redis://host:port/db``: a journal kept in Redis;
- anything else: a journal file path.
"""

from __future__ import annotations

import logging
import os
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from eegtune.errors import EegtuneError
from eegtune.names import PARAMS

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

__all__ = [
    "COLUMNS",
    "DEFAULT_STORAGE",
    "EVALUATION_DATA_KEY",
    "EVALUATION_KEY",
    "METRIC_NAME",
    "StudyError",
    "StudyKeys",
    "best_by_activation",
    "completed_trials",
    "create_or_check_study",
    "describe_storage",
    "failure_reason",
    "is_storage_error",
    "load_evaluation",
    "load_study",
    "save_evaluation",
    "open_storage",
    "quiet_optuna",
    "retry_races",
    "storage_url",
    "trial_id",
    "trial_row",
]

logger = logging.getLogger(__name__)

DEFAULT_STORAGE = "studies/eegtune.journal"
EVALUATION_KEY = "evaluation"
"""Prefix of the study user attributes ``evaluation <label>``: one readable line per evaluated
configuration (what the dashboard shows); the full results are the system attribute below."""
EVALUATION_DATA_KEY = "eegtune:evaluation"
METRIC_NAME = "validation accuracy"
RDB_PREFIXES = ("sqlite:", "postgresql", "postgres:", "mysql", "mariadb")


class StudyError(EegtuneError):
    """A storage cannot be reached, or a study is missing or incompatible."""


def storage_url(spec: str | None) -> str:
    """Normalise a ``--storage`` value (None: ``$EEGTUNE_STORAGE`` or the default journal)."""
    spec = (spec or os.environ.get("EEGTUNE_STORAGE") or DEFAULT_STORAGE).strip()
    if spec.startswith(("postgres://", "postgresql://")):
        # SQLAlchemy's default driver for a bare postgresql:// changed (psycopg2 in 2.0,
        # psycopg 3 in 2.1): name the one that is installed.
        spec = f"postgresql+{_postgres_driver()}://" + spec.split("://", 1)[1]
    if spec.startswith(("mysql://", "mariadb://")):
        spec = "mysql+pymysql://" + spec.split("://", 1)[1]
    return spec


def _postgres_driver() -> str:
    from importlib.util import find_spec

    return "psycopg2" if find_spec("psycopg") is None and find_spec("psycopg2") else "psycopg"


def describe_storage(spec: str | None) -> str:
    """A ``--storage`` value as messages show it: normalised, without a password."""
    return _describe(storage_url(spec))


def _describe(url: str) -> str:
    """The URL without a password, for messages."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


def open_storage(spec: str | None, *, create: bool = True) -> BaseStorage:
    """Open an Optuna storage for a ``--storage`` value, checking that it answers.

    Args:
        spec: The storage string (see the module docstring).
        create: Whether a journal file may be created. With False a missing file is an error
            (commands that only read never create a storage).

    Raises:
        StudyError: with one line saying what could not be reached and what to do.
    """
    import optuna

    url = storage_url(spec)
    shown = _describe(url)
    if url.startswith(RDB_PREFIXES):
        if url.startswith("sqlite:///"):
            db = Path(url[len("sqlite:///") :])
            if not create and not db.exists():
                raise StudyError(f"storage {shown}: database file not found")
            if not db.parent.is_dir():
                raise StudyError(f"storage {shown}: folder {db.parent} does not exist")
        try:
            return retry_races(
                lambda: optuna.storages.RDBStorage(
                    url, engine_kwargs=_engine_kwargs(url), skip_compatibility_check=False
                )
            )
        except ImportError as exc:
            raise StudyError(
                f"storage {shown}: database driver missing ({exc.name or exc}); install it, "
                "e.g. pip install 'eegtune[postgres]' or 'eegtune[mysql]'"
            ) from None
        except Exception as exc:  # sqlalchemy raises many types; all mean "cannot use it"
            reason = failure_reason(exc)
            if url.startswith("sqlite"):
                raise StudyError(
                    f"cannot open storage {shown}: {reason}; check the file's path and permissions"
                ) from None
            raise StudyError(
                f"cannot reach storage {shown}: {reason}; check that the database server "
                "runs and the URL is right"
            ) from None
    if url.startswith("redis://") or url.startswith("rediss://"):
        from optuna.storages.journal import JournalRedisBackend

        try:
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=5).ping()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.JournalStorage(JournalRedisBackend(url))
        except ImportError:
            raise StudyError(
                f"storage {shown}: the redis package is missing; pip install 'eegtune[redis]'"
            ) from None
        except Exception as exc:
            raise StudyError(
                f"cannot reach storage {shown}: {exc}; check that Redis runs and the URL is right"
            ) from None
    if "://" in url:
        raise StudyError(
            f"storage {shown}: unknown scheme; use sqlite:///, postgresql://, mysql://, "
            "redis:// or a journal file path"
        )
    path = Path(url)
    if path.is_dir():
        raise StudyError(f"storage {shown}: is a folder; give a journal file path")
    if not path.exists():
        if not create:
            raise StudyError(f"storage {shown}: journal file not found; run `eegtune search` first")
        if url == DEFAULT_STORAGE:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.parent.is_dir():
            raise StudyError(f"storage {shown}: folder {path.parent} does not exist")
    from optuna.storages.journal import JournalFileBackend

    try:
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except OSError as exc:
        raise StudyError(f"storage {shown}: cannot open journal file ({exc.strerror})") from None


T = TypeVar("T")

_RACE_MARKS = ("already exists", "unique constraint", "duplicate", "database is locked")


def retry_races(create: Callable[[], T], attempts: int = 30) -> T:
    """Call ``create`` (a storage or study creation), retrying when it lost a race with
    another process creating the same schema or study at the same moment."""
    for attempt in range(attempts):
        try:
            return create()
        except Exception as exc:
            text = failure_reason(exc).lower()
            if attempt == attempts - 1 or not any(mark in text for mark in _RACE_MARKS):
                raise
            logger.debug("storage creation raced with another process (%s); retrying", text)
            time.sleep(0.05 + 0.25 * random.random())
    raise AssertionError("unreachable")


def failure_reason(exc: BaseException) -> str:
    """What really went wrong in a storage error, in one line.

    Optuna wraps a database error in ``StorageInternalError`` ("invalid data in the commit"),
    which hides a lost connection: the first line of the innermost database error is shown
    instead.
    """
    inner: BaseException = exc
    seen = {id(exc)}
    while True:
        nxt = inner.__cause__ or inner.__context__
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(nxt))
        inner = nxt
    original = getattr(inner, "orig", None) or inner
    text = str(original).strip()
    return text.splitlines()[0] if text else type(original).__name__


def is_storage_error(exc: BaseException) -> bool:
    """Whether an exception comes from the storage (a database or Redis going away, a disk)."""
    import optuna

    if isinstance(exc, OSError | optuna.exceptions.StorageInternalError):
        return True
    return type(exc).__module__.split(".")[0] in (
        "sqlalchemy",
        "redis",
        "psycopg",
        "psycopg2",
        "pymysql",
    )


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    connect_timeout = {"connect_timeout": 10}
    return {"pool_pre_ping": True, "connect_args": connect_timeout}


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
    stored = study.user_attrs
    if all(stored.get(k) is None for k in StudyKeys.__dataclass_fields__):
        for key, value in vars(keys).items():
            study.set_user_attr(key, value)
        return study, keys
    if (stored.get("model"), stored.get("dataset")) != (keys.model, keys.dataset):
        raise StudyError(
            f"study {name!r} was made for model {stored.get('model')} on "
            f"{stored.get('dataset')}; choose another --study name"
        )
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


def save_evaluation(
    storage: BaseStorage, study: optuna.Study, results: dict[str, dict[str, Any]]
) -> None:
    """Store ``evaluate``'s full results (a system attribute) and a readable line per label
    (the user attribute the dashboard shows)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    storage.set_study_system_attr(study_id, EVALUATION_DATA_KEY, results)
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
