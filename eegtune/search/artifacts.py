"""Files attached to studies through Optuna's artifact store (``optuna.artifacts``).

``evaluate`` and ``compare`` attach each retrained seed's weights to the study they belong to,
so that on several machines the weights live with the study, and ``eegtune dashboard`` shows
and serves them (optuna-dashboard's artifact support). The store is a folder: by default
``artifacts/`` beside a journal or SQLite file, ``studies/artifacts`` for a database server;
``--artifacts DIR`` names another (a shared folder, when workers run on several machines).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from eegtune.errors import OutputError
from eegtune.files import safe_name
from eegtune.search.storages import RDB_PREFIXES, storage_url

if TYPE_CHECKING:
    import optuna
    from optuna.artifacts import FileSystemArtifactStore
    from optuna.storages import BaseStorage

__all__ = ["artifacts_dir", "attach_file", "attach_once", "open_artifacts"]

SERVER_DEFAULT = Path("studies/artifacts")


def artifacts_dir(storage: str | None, artifacts: str | Path | None = None) -> Path:
    """The artifact folder of a ``--storage`` value (``artifacts`` when given)."""
    if artifacts is not None:
        return Path(artifacts)
    url = storage_url(storage)
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :]).parent / "artifacts"
    if url.startswith((*RDB_PREFIXES, "redis")):
        return SERVER_DEFAULT
    return Path(url).parent / "artifacts"  # a journal file


def open_artifacts(
    storage: str | None, artifacts: str | Path | None = None
) -> FileSystemArtifactStore:
    """The study storage's artifact store, its folder made if needed.

    Raises:
        OutputError: the folder cannot be made.
    """
    from optuna.artifacts import FileSystemArtifactStore

    folder = artifacts_dir(storage, artifacts)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot make the artifact folder {folder} ({exc.strerror}); choose another "
            "--artifacts folder"
        ) from None
    return FileSystemArtifactStore(folder)


def attach_file(
    store: FileSystemArtifactStore,
    storage: BaseStorage,
    study: optuna.Study,
    path: Path,
    name: str,
) -> str:
    """Upload ``path`` as an artifact of ``study`` shown as ``name``; return its id."""
    import optuna.artifacts

    with tempfile.TemporaryDirectory(prefix="eegtune-artifact-") as folder:
        named = Path(folder) / safe_name(name)  # the dashboard lists an artifact by file name
        shutil.copyfile(path, named)
        return optuna.artifacts.upload_artifact(
            artifact_store=store,
            file_path=str(named),
            study_or_trial=study,
            storage=storage,
            mimetype="application/octet-stream",
        )


def attach_once(
    store: FileSystemArtifactStore,
    storage: BaseStorage,
    study: optuna.Study,
    path: Path,
    name: str,
) -> str | None:
    """Attach ``path`` unless a file with the same content already is; return the new id.

    A report written again from unchanged studies attaches nothing; a changed one is kept
    beside the earlier ones (an artifact cannot be replaced in place).
    """
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    key = f"eegtune:attached:{digest}"
    study_id = storage.get_study_id_from_name(study.study_name)
    if key in storage.get_study_system_attrs(study_id):
        return None
    artifact = attach_file(store, storage, study, path, name)
    storage.set_study_system_attr(study_id, key, artifact)
    return artifact
