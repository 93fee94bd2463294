"""Shared fixtures (the helpers they use are in tests/helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eegtune.data.synthetic import make_synthetic
from tests.helpers import (
    FileServer,
    make_lab_dir,
)


@pytest.fixture(scope="session")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention folder of four valid lab-format files."""
    return make_lab_dir(tmp_path_factory.mktemp("lab"))


@pytest.fixture
def lab_copy(tmp_path: Path, lab_dir: Path) -> Path:
    """A private copy of the lab folder that a test may damage."""
    target = tmp_path / "data"
    target.mkdir()
    for f in lab_dir.iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    return target


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def tiny_data():
    return make_synthetic(n_train=160, n_test=20, seed=0)


@pytest.fixture(autouse=True)
def _runs_outside_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`eegtune train` keeps every run in a folder; in tests (and their subprocesses) that
    folder is the test's own, never the checkout's studies/runs."""
    monkeypatch.setenv("EEGTUNE_RUNS_DIR", str(tmp_path / "runs"))
