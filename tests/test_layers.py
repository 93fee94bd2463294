"""The layer rule, checked: each module imports only from its own layer or the layers below.

Every import of an eegtune module counts, wherever it stands (top of the file, inside a
function, under ``TYPE_CHECKING``), and so do the registry's ``"module:attribute"`` targets,
as edges from the module that loads them. The README's architecture table is checked against
the same layers, so the map cannot drift from the tree.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from eegtune import names

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "eegtune"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cli", ("eegtune.cli", "eegtune.__main__")),
    ("results", ("eegtune.results",)),
    ("search", ("eegtune.search",)),
    ("training", ("eegtune.training", "eegtune.device")),
    ("models and data", ("eegtune.models", "eegtune.data")),
    ("base", ("eegtune.errors", "eegtune.files", "eegtune.names", "eegtune.signals", "eegtune")),
)
"""Top to bottom. A module belongs to the first layer one of whose prefixes it starts with."""

REGISTRY_LOADERS = {
    "eegtune.models.networks": names.NETWORKS,
    "eegtune.search.samplers": {**names.SAMPLERS, **names.PRUNERS},
    "eegtune.data.loading": {**names.DATASETS, **names.DATASET_KINDS},
}
"""Which module calls ``Entry.load()`` on which registry table."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer; add it to LAYERS")


def imports_of(module: str) -> set[str]:
    """The eegtune modules ``module`` imports anywhere, plus the registry targets it loads."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "eegtune":
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names} & MODULES.keys()
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{module}: use absolute imports (line {node.lineno})")
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "eegtune"}
    for entry in REGISTRY_LOADERS.get(module, {}).values():
        found.add(entry.target.partition(":")[0])
    return found - {module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_lies_in_a_layer_and_every_import_names_a_module() -> None:
    for module, targets in GRAPH.items():
        layer_of(module)
        assert targets <= MODULES.keys(), (module, targets - MODULES.keys())


def upward(graph: dict[str, set[str]], module: str) -> list[str]:
    return sorted(t for t in graph[module] if layer_of(t) < layer_of(module))


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` (``[a, b, a]``), or ``[]``."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> list[str]:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return []

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_from_a_layer_above_its_own(module: str) -> None:
    found = upward(GRAPH, module)
    assert not found, f"{module} ({LAYERS[layer_of(module)][0]}) imports upward: {found}"


def test_the_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(GRAPH)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_the_check_sees_an_upward_import_and_a_cycle() -> None:
    # the rule is only worth something if it can fail: feed it an upward edge and a cycle
    raised = {**GRAPH, "eegtune.data.loading": GRAPH["eegtune.data.loading"] | {"eegtune.cli.app"}}
    assert upward(raised, "eegtune.data.loading") == ["eegtune.cli.app"]
    looped = {**GRAPH, "eegtune.errors": {"eegtune.files"}, "eegtune.files": {"eegtune.errors"}}
    assert find_cycle(looped) == ["eegtune.errors", "eegtune.files", "eegtune.errors"]
    registry = imports_of("eegtune.data.loading")
    assert {"eegtune.data.fetch", "eegtune.data.arrays", "eegtune.data.moabb"} <= registry


def readme_architecture() -> dict[str, str]:
    """``module path -> layer`` from the README's architecture table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\w[\w ]*?) \| `([\w/.]+)` \|", section, flags=re.M)
    return {path: layer for layer, path in rows}


def test_the_readme_architecture_table_matches_the_tree_and_the_layers() -> None:
    table = readme_architecture()
    modules = {
        str(p.relative_to(ROOT)): m for m, p in MODULES.items() if not p.name.startswith("__")
    }
    assert set(table) == set(modules), set(table) ^ set(modules)
    for path, layer in table.items():
        assert layer == LAYERS[layer_of(modules[path])][0], (path, layer)


HEAVY = {"torch", "numpy", "optuna", "plotly", "sqlalchemy", "scipy", "moabb", "mne", "wsgiref"}
"""Packages that take a noticeable part of a second to import (wsgiref, the dashboard's
server: 30 ms, a tenth of ``eegtune --help``)."""


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def top_level_imports(module: str) -> tuple[set[str], set[str]]:
    """(eegtune modules, third-party top-level packages) ``module`` imports when it is loaded:
    module-level statements only, outside ``TYPE_CHECKING``."""
    own: set[str] = set()
    other: set[str] = set()

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and not _is_type_checking(node):
                walk(node.body + node.orelse)
            elif isinstance(node, ast.Try):
                walk(node.body + node.orelse + node.finalbody)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                root = node.module.split(".")[0]
                if root == "eegtune":
                    own.add(node.module)
                    own.update({f"{node.module}.{a.name}" for a in node.names} & MODULES.keys())
                else:
                    other.add(root)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    root = alias.name.split(".")[0]
                    (own if root == "eegtune" else other).add(
                        alias.name if root == "eegtune" else root
                    )

    walk(ast.parse(MODULES[module].read_text()).body)
    return own & MODULES.keys(), other


def heavy_modules() -> set[str]:
    """The eegtune modules whose import loads a :data:`HEAVY` package, directly or through
    other eegtune modules."""
    loads = {m: top_level_imports(m) for m in MODULES}
    heavy = {m for m, (_, other) in loads.items() if other & HEAVY}
    grown = True
    while grown:
        more = {m for m, (own, _) in loads.items() if own & heavy} - heavy
        heavy |= more
        grown = bool(more)
    return heavy


def function_level_imports(module: str) -> set[str]:
    """The eegtune modules ``module`` imports inside functions."""
    found: set[str] = set()
    for fn in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    if node.module.split(".")[0] == "eegtune":
                        found.add(node.module)
                elif isinstance(node, ast.Import):
                    found |= {a.name for a in node.names if a.name.split(".")[0] == "eegtune"}
    return found


LIBRARY = ("eegtune.results", "eegtune.search", "eegtune.training", "eegtune.device",
           "eegtune.models", "eegtune.data")  # fmt: skip
"""What the commands call: the CLI may load these inside a command (most load torch, numpy
or optuna, and the rest lead there), so that ``eegtune --help`` loads none of them."""


@pytest.mark.parametrize("module", sorted(MODULES))
def test_own_modules_are_imported_at_the_top_unless_the_cli_defers_the_library(
    module: str,
) -> None:
    """So that the graph shows at the top of each file: a function-level import of an eegtune
    module is allowed only in the command line, and only of the library below it or of a
    module that loads a heavy package."""
    inner = function_level_imports(module)
    if layer_of(module) != 0:
        assert not inner, f"{module} imports eegtune modules inside functions: {sorted(inner)}"
    else:
        deferrable = heavy_modules() | {m for m in MODULES if m.startswith(LIBRARY)}
        light = sorted(inner - deferrable)
        assert not light, f"{module} defers light modules; import them at the top: {light}"


def test_the_cli_loads_no_heavy_module_at_import() -> None:
    loads = {m: top_level_imports(m)[0] for m in MODULES}
    reached, todo = set(), ["eegtune.cli.app"]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo += sorted(loads[module])
    assert not reached & heavy_modules(), sorted(reached & heavy_modules())
    assert "eegtune.training" in heavy_modules()  # the check sees what it is about
