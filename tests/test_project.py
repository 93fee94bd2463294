"""Project hygiene: one version, a license that matches, docs that name only files that exist."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import eegtune

ROOT = Path(__file__).resolve().parent.parent


def test_one_source_for_the_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert importlib.metadata.version("eegtune") == eegtune.__version__


def test_license_file_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"file": "LICENSE"}
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_docs_and_code_name_only_files_the_repository_has() -> None:
    pattern = re.compile(
        r"(?<![\w/.])((?:benchmarks|studies|data|eegtune|tests)/[\w/]+\.(?:py|sh|toml|md)"
        r"|[A-Z]+\.md)"
    )
    sources = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "data" / "README.md"]
    sources += sorted((ROOT / "eegtune").rglob("*.py"))
    missing = {
        (source.name, name)
        for source in sources
        for name in pattern.findall(source.read_text())
        if not (ROOT / name).exists() and not (source.parent / name).exists()
    }
    assert not missing, missing


def test_tests_named_in_the_readme_exist() -> None:
    named = set(re.findall(r"`(test_\w+)`", (ROOT / "README.md").read_text()))
    defined = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)", path.read_text(), flags=re.M))
    assert named and not named - defined, named - defined
