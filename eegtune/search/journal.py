"""Journal files that stay readable after a full disk, a power loss or a truncated copy.

An Optuna journal is one JSON record per line. A write cut short (no space left, the machine
lost power, a copy cut off) leaves an incomplete last line. Optuna skips it when reading, but
its next append lands on the same line and makes one record of two halves: from then on every
read of the file fails and every study in it is lost. Here:

- :func:`check_journal` runs whenever eegtune opens a journal file. It refuses a file that is
  not a journal at all (a SQLite database, an npz, zeros, other text), refuses a file damaged
  in the middle (naming the record, appending nothing), and drops an incomplete last record,
  under the journal's own lock, with a warning.
- :class:`SafeJournalFileBackend` appends like Optuna's backend but, under the same lock,
  drops an incomplete last record first and cuts off its own partial write when the write
  fails, so that a search stopped by a full disk leaves a file the next run can use.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eegtune.errors import StorageError

if TYPE_CHECKING:
    from optuna.storages.journal._file import BaseJournalFileLock

__all__ = ["check_journal", "open_journal_backend"]

logger = logging.getLogger(__name__)

_NOT_JOURNAL = (
    (b"SQLite format 3\x00", "a SQLite database; give it as sqlite:///{path}"),
    (b"PK\x03\x04", "a zip or npz archive, not an Optuna journal"),
    (b"\x93NUMPY", "a NumPy .npy file, not an Optuna journal"),
)


def _tail_start(data: bytes) -> int:
    """Offset where the incomplete last record begins (``len(data)`` when there is none)."""
    if not data or data.endswith(b"\n"):
        return len(data)
    return data.rfind(b"\n") + 1


def _record_problem(line: bytes) -> str | None:
    try:
        record = json.loads(line)
    except UnicodeDecodeError:
        return "it holds bytes that are not UTF-8 text"
    except json.JSONDecodeError as exc:
        return f"it is not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(record, dict) or "op_code" not in record:
        return "it is not an Optuna journal record"
    return None


def check_journal(path: Path, lock: BaseJournalFileLock) -> None:
    """Check the journal file at ``path`` before it is used; repair an incomplete last record.

    Raises:
        StorageError: the file is not a journal, or a record before the last is damaged
            (one line naming the record and how to repair; nothing is written).
    """
    with path.open("rb") as f:
        data = f.read()
    if not data:
        return
    for magic, what in _NOT_JOURNAL:
        if data.startswith(magic):
            raise StorageError(f"storage {path}: is {what.format(path=path)}")
    if b"\x00" in data[:4096] and not data[:4096].strip(b"\x00"):
        raise StorageError(f"storage {path}: is zero-filled, not an Optuna journal")
    lines = data[: _tail_start(data)].split(b"\n")[:-1]
    for number, line in enumerate(lines, start=1):
        problem = _record_problem(line)
        if problem is None:
            continue
        if number == 1:
            raise StorageError(
                f"storage {path}: is not an Optuna journal (its first line: {problem}); "
                "give another file, or a URL such as sqlite:///FILE for a database"
            )
        raise StorageError(
            f"journal {path} is damaged at record {number} of {len(lines)}: {problem}; nothing "
            f"was written to it. Keep a copy, then keep the records before it: head -n "
            f"{number - 1} {path} > repaired.journal (the later records are lost)"
        )
    tail = data[_tail_start(data) :]
    if tail and not (tail.startswith(b'{"') or b'{"'.startswith(tail)):
        raise StorageError(
            f"storage {path}: is not an Optuna journal (it ends in {len(tail)} bytes that are "
            "no journal record); give another file, or a URL such as sqlite:///FILE"
        )
    if tail:
        _drop_incomplete_tail(path, lock)


def _drop_incomplete_tail(path: Path, lock: BaseJournalFileLock) -> None:
    """Cut an incomplete last record off ``path`` while holding the journal's lock (a file
    that cannot be written, a read-only copy for example, keeps it: Optuna ignores it)."""
    try:
        lock.acquire()
    except OSError as exc:
        logger.warning(
            "journal %s ends in an incomplete record that cannot be dropped (%s); it is ignored",
            path,
            exc.strerror,
        )
        return
    try:
        with path.open("r+b") as f:
            data = f.read()  # read again under the lock: a writer may have completed it
            start = _tail_start(data)
            if start == len(data):
                return
            try:
                f.truncate(start)
            except OSError as exc:
                logger.warning(
                    "journal %s ends in an incomplete record (%d bytes) that cannot be "
                    "dropped (%s); it is ignored",
                    path,
                    len(data) - start,
                    exc.strerror,
                )
                return
    finally:
        lock.release()
    logger.warning(
        "journal %s ended in an incomplete record (%d bytes: a full disk, a crash or a "
        "truncated copy); dropped it, the %d records before it are intact",
        path,
        len(data) - start,
        data[:start].count(b"\n"),
    )


@functools.cache
def _safe_backend_class() -> type:
    from optuna.storages.journal import JournalFileBackend

    class _SafeJournalFileBackend(JournalFileBackend):
        """Optuna's journal file backend whose appends never leave a partial record."""

        def __init__(self, file_path: str, lock: BaseJournalFileLock) -> None:
            super().__init__(file_path, lock_obj=lock)
            self._path, self._append_lock = Path(file_path), lock

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
            self._append_lock.acquire()
            try:
                with self._path.open("r+b", buffering=0) as f:  # unbuffered: see below
                    end = f.seek(0, os.SEEK_END)
                    if end:
                        f.seek(end - 1)
                        if f.read(1) != b"\n":  # someone's write was cut short
                            f.seek(0)
                            end = _tail_start(f.readall())
                            f.truncate(end)
                            logger.warning(
                                "journal %s ended in an incomplete record; dropped it", self._path
                            )
                    f.seek(end)
                    try:
                        view = memoryview(text.encode("utf-8"))
                        while view:
                            view = view[f.write(view) or 0 :]
                        os.fsync(f.fileno())
                    except BaseException:  # a full disk, or a signal between two writes
                        f.truncate(end)  # needs no space, and nothing is left in a buffer
                        raise
            finally:
                self._append_lock.release()

    return _SafeJournalFileBackend


def open_journal_backend(path: Path) -> Any:
    """A checked journal file backend for ``path`` (created empty when missing)."""
    from optuna.storages.journal import JournalFileSymlinkLock

    if not path.exists():
        path.touch()
    lock = JournalFileSymlinkLock(str(path))
    check_journal(path, lock)
    return _safe_backend_class()(str(path), lock)
