"""Download the BCI IIIb files from pinned public mirrors, verified before they land.

Each file streams into a hidden temporary file in the data folder, its size and git blob SHA-1
are checked against :data:`eegtune.data.FILES`, and only then is it renamed into place.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from eegtune.data.bciiiib import (
    FILES,
    READ_CHUNK,
    FileSpec,
    ProgressHook,
    git_blob_sha1,
    load_bci_iiib,
    missing_files,
)
from eegtune.data.dataset import Dataset
from eegtune.errors import DataError
from eegtune.files import atomic_write

__all__ = ["MIRRORS", "fetch_bci_iiib", "load_bci_iiib_or_fetch"]

logger = logging.getLogger(__name__)

#: Public copies at pinned commits, tried in order. ``{name}`` is the file name.
MIRRORS: tuple[str, ...] = (
    "https://raw.githubusercontent.com/2021-DL-Training-Program/EEG_classification/"
    "7a87c2a14091697a8f2db958b78f963ad50da98c/{name}",
    "https://raw.githubusercontent.com/secondlevel/EEG-classification/"
    "b40e2da677fc59b7c809e4c8db323dcb00247105/{name}",
    "https://raw.githubusercontent.com/ZeinyLing/LAB2/"
    "551d8da3a154b3c5d43e7f08752aa5a1b95a0b28/data_LAB2/{name}",
    "https://raw.githubusercontent.com/oscar1234456/NYCU_DLP2021_Lab2_EEG-Classification/"
    "c025ba626f966a46f0bb9413bf7d0a46fca31227/{name}",
)


def _mirrors_from_env() -> tuple[str, ...]:
    raw = os.environ.get("EEGTUNE_MIRRORS", "").strip()
    return tuple(m.strip() for m in raw.split(",") if m.strip()) or MIRRORS


def _download(url: str, dest: Path, name: str, timeout: float, hook: ProgressHook | None) -> None:
    """Stream ``url`` into ``dest``; raise OSError or ValueError when it breaks off."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (https mirrors)
        total_header = response.headers.get("Content-Length")
        total = int(total_header) if total_header and total_header.isdigit() else None
        done = 0
        with dest.open("wb") as out:
            while chunk := response.read(READ_CHUNK):
                out.write(chunk)
                done += len(chunk)
                if hook is not None:
                    hook(name, done, total)
    if total is not None and done != total:
        raise ValueError(f"connection closed after {done} of {total} bytes")


def _download_verified(
    url: str, name: str, spec: FileSpec, timeout: float, hook: ProgressHook | None, dest: Path
) -> None:
    """Download into ``dest`` and check size and git blob SHA-1 (ValueError on a mismatch)."""
    _download(url, dest, name, timeout, hook)
    size = dest.stat().st_size
    if size != spec.size:
        raise ValueError(f"{size} bytes, expected {spec.size}")
    digest = git_blob_sha1(dest)
    if digest != spec.git_sha1:
        raise ValueError(f"git SHA-1 {digest}, expected {spec.git_sha1}")


def fetch_bci_iiib(
    data_dir: Path | str,
    *,
    mirrors: Sequence[str] | None = None,
    files: dict[str, FileSpec] | None = None,
    timeout: float = 30.0,
    progress: ProgressHook | None = None,
) -> list[Path]:
    """Download the dataset files that are missing from ``data_dir``.

    Each file is streamed into a hidden temporary file inside ``data_dir``, its byte size and
    git blob SHA-1 are checked, and only then is it moved into place atomically. Mirrors are
    tried in order; a partial or mismatching download is deleted and never lands.

    Args:
        data_dir: Folder that receives the files (created if needed).
        mirrors: URL templates with ``{name}``; default: ``$EEGTUNE_MIRRORS`` (comma-separated)
            or :data:`MIRRORS`.
        files: Expected files and fingerprints; default: :data:`FILES`.
        timeout: Socket timeout per request, in seconds.
        progress: Optional download progress hook.

    Returns:
        The paths that were downloaded (files already present are left alone).

    Raises:
        DataError: when a file could not be had from any mirror.
    """
    data_dir = Path(data_dir)
    mirrors = tuple(mirrors) if mirrors is not None else _mirrors_from_env()
    files = files if files is not None else FILES
    created_dir = not data_dir.exists()
    fetched: list[Path] = []
    for name, spec in files.items():
        target = data_dir / name
        if target.exists():
            continue
        if data_dir.exists() and not data_dir.is_dir():
            raise DataError(f"{data_dir}: is a file, expected a folder for the dataset files")
        data_dir.mkdir(parents=True, exist_ok=True)
        problems: list[str] = []
        for template in mirrors:
            url = template.format(name=name)
            try:
                atomic_write(
                    target, partial(_download_verified, url, name, spec, timeout, progress)
                )
            except urllib.error.HTTPError as exc:
                problems.append(f"{url}: HTTP {exc.code} {exc.reason}")
                continue
            except (OSError, ValueError) as exc:
                problems.append(f"{url}: {getattr(exc, 'reason', exc)}")
                continue
            fetched.append(target)
            logger.info("fetched %s from %s", name, url)
            break
        else:
            if created_dir and not any(data_dir.iterdir()):
                data_dir.rmdir()
            raise DataError(
                f"could not download {name} (no network?): run `eegtune data fetch` when "
                "online, copy the files by hand (see data/README.md), or try --dataset synthetic",
                details=[
                    f"data folder: {data_dir}",
                    "mirrors tried:",
                    *(f"  {p}" for p in problems),
                ],
            )
    return fetched


def load_bci_iiib_or_fetch(
    data_dir: Path, *, offline: bool = False, progress: ProgressHook | None = None
) -> Dataset:
    """The ``bci-iiib`` dataset loader: fetch missing files (unless ``offline``), then load.

    Raises:
        DataError: a file is missing in offline mode, cannot be fetched, or is malformed.
    """
    absent = missing_files(data_dir)
    if absent and offline:
        raise DataError(
            f"{data_dir / absent[0]}: file not found and offline mode is on; "
            f"run `eegtune data fetch --data-dir {data_dir}`, copy the files there "
            "(see data/README.md), or try --dataset synthetic"
        )
    if absent:
        fetch_bci_iiib(data_dir, progress=progress)
    return load_bci_iiib(data_dir)
