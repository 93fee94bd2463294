"""Writing files so that an interruption never leaves a half-written one, with the
permissions the umask gives, at paths that names from a study cannot steer elsewhere."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from eegtune.errors import OutputError

__all__ = ["atomic_write", "atomic_write_text", "check_writable", "safe_name"]

_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
MAX_KEPT = 100
"""Longest name kept as it is: with a chart suffix and :func:`atomic_write`'s temporary
prefix it stays well inside the 255 bytes a file name may have on common file systems."""


def safe_name(name: str) -> str:
    """A file or folder name for ``name`` (a study name, a label) that stays where it is put.

    A name made only of letters, digits, ``_``, ``-`` and ``.`` (not first) is kept as it is.
    Any other name (path separators, ``..``, an absolute path, spaces) has each run of other
    characters replaced by ``_`` and a ``+`` and 8 hex digits of its SHA-256 appended: no kept
    name contains ``+``, and the digest keeps two different names apart. A name longer than
    :data:`MAX_KEPT` characters is shortened the same way, so any study name the storage
    accepts gives file names the file system accepts.
    """
    if _SAFE.fullmatch(name) and len(name) <= MAX_KEPT:
        return name
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._-")[:64] or "_"
    return f"{stem}+{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG)


def _output_error(folder: Path, exc: OSError) -> OutputError:
    why = exc.strerror or str(exc)
    return OutputError(
        f"cannot write to {folder}: {why}; free some space, fix its permissions or choose "
        "another folder"
    )


def check_writable(folder: Path | str) -> None:
    """Make ``folder`` and check that a file can be written in it, before any work is done.

    Raises:
        OutputError: naming the folder (full, read-only, not a folder).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".eegtune-probe.", dir=folder)
        try:
            os.write(fd, b"x" * 4096)  # a full disk refuses data, not always an empty file
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise _output_error(folder, exc) from None


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a hidden temporary file beside ``path``, then rename it into place.

    The rename is atomic on one file system: readers see the old file or the whole new one.
    The temporary file is removed when ``write`` fails or is interrupted.

    Raises:
        OutputError: the folder is full, read-only or cannot be made (naming it).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise _output_error(path.parent, exc) from None
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno not in _OUTPUT_ERRNOS:
            raise  # not the folder's fault (a download that failed, for example)
        raise _output_error(path.parent, exc) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
