"""Reading npz archives safely: the named arrays, after checking each header against the file."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eegtune.errors import DataError

__all__ = ["read_archive"]


def read_archive(
    path: Path, keys: Sequence[str], hint: str
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The arrays ``keys`` (those present) of the npz archive at ``path``, checked first, and
    the names of every array in it.

    A file that is not a zip archive (a ``.npy`` file, text) and a member whose header claims
    more data than the archive holds (a damaged or forged header, which numpy would try to
    allocate) are refused with one line, before anything large is read.

    Raises:
        DataError: naming the file and what is wrong, ending with ``hint``.
    """
    with path.open("rb") as fh:
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        raise DataError(f"{path}: is a .npy file (one array), not an npz archive; {hint}")
    if not magic.startswith(b"PK"):
        raise DataError(f"{path}: not a readable npz archive (not a zip file); {hint}")
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, np.load(path, allow_pickle=False) as arrays:
        for key in keys:
            if key not in arrays.files:
                continue
            info = archive.getinfo(f"{key}.npy")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                shape, _, dtype = (
                    np.lib.format.read_array_header_1_0(member)
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0(member)
                )
            claimed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if claimed > info.file_size:
                raise DataError(
                    f"{path}: array {key} claims shape {shape} ({claimed:,} bytes) but the file "
                    f"holds {info.file_size:,} bytes: the file is damaged; {hint}"
                )
            out[key] = arrays[key]
        return out, list(arrays.files)
