"""Loading any dataset by name or :class:`~eegtune.data.sources.DataSource`, through the registry.

The loaders themselves (``bci-iiib``, ``synthetic``, ``npz:DIR``, ``moabb:NAME``) are named in
:data:`eegtune.names.DATASETS` and ``DATASET_KINDS`` and imported only when used.
"""

from __future__ import annotations

import os
from pathlib import Path

from eegtune.data.bciiiib import ProgressHook
from eegtune.data.dataset import Dataset
from eegtune.data.sources import DataSource, parse_source
from eegtune.errors import ConfigError, DataError
from eegtune.names import DATASET_KINDS, DATASETS

__all__ = ["load_dataset", "offline_from_env"]


def offline_from_env() -> bool:
    """Whether ``$EEGTUNE_OFFLINE`` asks never to download (set and not ``0``)."""
    return os.environ.get("EEGTUNE_OFFLINE", "") not in ("", "0")


def load_dataset(
    name: str | DataSource,
    data_dir: Path | str = "data",
    *,
    offline: bool | None = None,
    progress: ProgressHook | None = None,
) -> Dataset:
    """Load a dataset by name, or a :class:`~eegtune.data.sources.DataSource` with its subjects.

    Args:
        name: ``bci-iiib`` (fetched first when files are missing), ``synthetic``, ``npz:DIR``
            or ``moabb:NAME`` (see :data:`eegtune.names.DATASETS` and ``DATASET_KINDS``).
        data_dir: Folder with the BCI IIIb files.
        offline: Never download; default: :func:`offline_from_env`.
        progress: Download progress hook.
    """
    try:
        source = name if isinstance(name, DataSource) else parse_source(name)
    except ConfigError as exc:
        raise DataError(str(exc)) from None
    kind = DATASET_KINDS.get(source.kind)
    if kind is not None:  # npz:DIR or moabb:NAME
        loaded: Dataset = kind.load()(source.target, source.subjects, source.options)
        return loaded.restrict(source.subjects)
    entry = DATASETS.get(source.dataset)
    if entry is None:
        raise DataError(f"unknown dataset {source.dataset!r}; choose one of: {', '.join(DATASETS)}")
    offline = offline_from_env() if offline is None else offline
    dataset: Dataset = entry.load()(Path(data_dir), offline=offline, progress=progress)
    return dataset.restrict(source.subjects)
