"""Exceptions the user can cause; the CLI turns each into one line and a non-zero exit."""

from __future__ import annotations

__all__ = [
    "ReportError",
    "CompareError",
    "EvaluateError",
    "ExportError",
    "WorkerError",
    "SpaceError",
    "SearchError",
    "ServeError",
    "ConfigError",
    "DataError",
    "EegtuneError",
    "OutputError",
    "StorageError",
    "StudyError",
]


class EegtuneError(Exception):
    """Base class of errors caused by user input or the environment, not by a bug.

    The message is one line; ``details`` are extra lines the CLI shows indented below it
    (for example each download mirror tried and what it answered).
    """

    exit_code: int = 2

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = list(details or [])


class DataError(EegtuneError):
    """A dataset file is missing, unreadable or malformed, or could not be fetched."""


class ConfigError(EegtuneError, ValueError):
    """An option value is invalid: unknown model, activation or device, a bad range."""


class StudyError(EegtuneError):
    """A storage cannot be reached, or a study is missing or incompatible."""


class StorageError(StudyError):
    """A storage file is damaged or is not a storage at all."""


class OutputError(EegtuneError):
    """An output folder (``--out``, ``--models-dir``) is full, read-only or not a folder."""


class SearchError(EegtuneError):
    """The search cannot start, or had to stop (for example after many failures in a row)."""

    exit_code = 1


class SpaceError(EegtuneError):
    """A search-space file is missing, unreadable or describes an invalid space."""


class WorkerError(EegtuneError):
    """A worker process stopped with an error of its own (its message and exit code)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class EvaluateError(EegtuneError):
    """Nothing to evaluate: no study, or no completed trial."""


class CompareError(EegtuneError):
    """The comparison cannot run as asked."""


class ReportError(EegtuneError):
    """Nothing to report: no study, an empty study, or only failed trials."""


class ExportError(EegtuneError):
    """Static images cannot be made: kaleido, or the Chrome/Chromium it drives, is missing."""


class ServeError(EegtuneError):
    """The dashboard cannot listen on the address and port asked for."""
