"""Optuna storages from a ``--storage`` string, opened so that failures are one clear line.

Storage strings:

- none: the journal file ``studies/eegtune.journal`` (or ``$EEGTUNE_STORAGE``);
- ``sqlite:///path.db``, ``postgresql://...``, ``mysql://...``: Optuna's RDB storage
  (``mysql://`` uses PyMySQL and ``postgresql://`` psycopg 3, or psycopg2 where only that is
  installed, unless a driver is named);
- ``redis://host:port/db``: a journal kept in Redis;
- anything else: a journal file path.

Several processes may create the same storage at the same moment: schema-creation races are
retried (:func:`retry_races`).
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from eegtune.errors import StudyError
from eegtune.search.journal import open_journal_backend

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

__all__ = [
    "close_storage",
    "DEFAULT_STORAGE",
    "describe_storage",
    "failure_reason",
    "is_storage_error",
    "open_storage",
    "redact",
    "retry_races",
    "storage_url",
    "StudyError",
]

logger = logging.getLogger(__name__)

DEFAULT_STORAGE = "studies/eegtune.journal"
RDB_PREFIXES = ("sqlite:", "postgresql", "postgres:", "mysql", "mariadb")


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


def _secrets(url: str) -> list[str]:
    """The password of a storage URL in every form a driver accepts (``user:pw@host``, an
    ``@`` or ``:`` inside it, ``?password=``), with the pieces a driver may echo when it splits
    an unencoded ``@`` differently."""
    from urllib.parse import parse_qsl, unquote

    found: list[str] = []
    if "://" not in url:
        return found
    rest = url.split("://", 1)[1]
    authority, _, query = rest.partition("?")
    netloc = authority.split("/", 1)[0] if authority.count("@") <= 1 else authority
    if "@" in netloc:
        creds = netloc.rsplit("@", 1)[0]
        if ":" in creds:
            found.append(creds.split(":", 1)[1])
    found += [v for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() == "password"]
    pieces = [p for secret in found for p in re.split(r"[@:/]", secret) if len(p) >= 3]
    for secret in found:  # a driver that splits at the first "@" echoes what follows it
        parts = secret.split("@")
        pieces += ["@".join(parts[i:]) for i in range(1, len(parts))]
    return sorted({*found, *(unquote(s) for s in found), *pieces} - {""}, key=len, reverse=True)


def redact(text: str, url: str | None) -> str:
    """``text`` (an error message) with the password of ``url`` replaced by ``***``."""
    for secret in _secrets(storage_url(url)):
        text = text.replace(secret, "***")
    return text


def _describe(url: str) -> str:
    """The URL without a password, for messages, report pages and study attributes."""
    from urllib.parse import parse_qsl, urlencode

    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    rest, mark, query = rest.partition("?")
    if "@" in rest:
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        rest = f"{user}:***@{host}" if ":" in creds else rest
    if mark:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs])
        query = query.replace("%2A%2A%2A", "***")
    return f"{scheme}://{rest}{mark}{query}"


def close_storage(storage: BaseStorage) -> None:
    """Release what an opened storage holds: a database storage's connection pool.

    A journal file or Redis journal keeps no connection between operations; nothing to do.
    """
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


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
                f"storage {shown}: database driver missing "
                f"({redact(str(exc.name or exc), url)}); install it, "
                "e.g. pip install 'eegtune[postgres]' or 'eegtune[mysql]'"
            ) from None
        except Exception as exc:  # sqlalchemy raises many types; all mean "cannot use it"
            reason = redact(failure_reason(exc), url)
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
                f"cannot reach storage {shown}: {redact(str(exc), url)}; check that Redis runs "
                "and the URL is right"
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
    try:
        return optuna.storages.JournalStorage(open_journal_backend(path))
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
