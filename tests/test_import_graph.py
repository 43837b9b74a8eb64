"""The service's import graph: no cycle among its packages, and the settings are a leaf.

The graph is read from the source (``ast``), not from an import: every ``import`` and
``from ... import`` under ``service/``, relative ones resolved, including those inside
functions (a lazy import is still a dependency: it only hides it). Imports under
``if TYPE_CHECKING:`` are left out: they never run, and they are how a type may name a
higher layer's class. Nodes are the packages (``service.alerts``, ``service.store``...)
and the top-level modules (``service.config``, ``service.events``...).

A plain test rather than import-linter: it needs no new dependency, runs with the other
tests (and so in CI), and says in its failure which file and line make the cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVICE = REPO / "service"

SETTINGS = {
    "service.config",
    "service.config_alerts",
    "service.config_sources",
    "service.config_types",
}
"""The settings layer (:mod:`service.config` and what it is made of)."""
VOCABULARY = {
    "service", "service.ccxt_lazy", "service.errors", "service.events", "service.redact",
    "service.scores", "service.shard",
}  # fmt: skip
"""What the settings may use besides themselves: values every layer shares, importing nothing
else of the service (and ``service.ccxt_lazy``, the import hook ``service`` installs, which
loads no ccxt)."""
HEAVY = {"ccxt", "httpx", "aiomqtt", "fastapi", "starlette", "uvicorn", "websockets", "picows",
         "structlog"}  # fmt: skip
"""Libraries the settings must not load (the start-up checks that need ccxt are
:mod:`service.preflight`'s)."""


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int

    def __str__(self) -> str:
        path = _modules()[self.source].relative_to(REPO)
        return f"{self.source} -> {self.target} ({path}:{self.line})"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SERVICE.rglob("*.py"))}


def _type_checking_only(tree: ast.Module) -> set[ast.AST]:
    """The import statements under ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    hidden: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", None)
            if name == "TYPE_CHECKING":
                hidden.update(n for stmt in node.body for n in ast.walk(stmt))
    return hidden


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level == 0:
        base = node.module or ""
    else:
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        parts = package.split(".")
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    for alias in node.names:
        # ``from . import keys`` imports the module service.store.keys
        sub = f"{base}.{alias.name}"
        yield sub if sub in _modules() else base


@cache
def imports() -> list[Import]:
    """Every import of a service module by a service module (not under TYPE_CHECKING)."""
    found = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        hidden = _type_checking_only(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and node not in hidden:
                found += [
                    Import(module, target, node.lineno)
                    for target in _targets(module, path, node)
                    if target == "service" or target.startswith("service.")
                ]
    return found


def node_of(module: str) -> str:
    """The package (or top-level module) a module belongs to: ``service.store.keys`` is
    ``service.store``."""
    return ".".join(module.split(".")[:2])


def cycles(edges: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def package_edges() -> dict[str, dict[str, list[Import]]]:
    edges: dict[str, dict[str, list[Import]]] = {}
    for imp in imports():
        a, b = node_of(imp.source), node_of(imp.target)
        if a != b:
            edges.setdefault(a, {}).setdefault(b, []).append(imp)
    return edges


def test_the_graph_sees_the_imports_it_should() -> None:
    # a guard on the walker itself: relative, parent-relative and lazy imports all resolve
    seen = {(i.source, i.target) for i in imports()}
    assert ("service.store.writer", "service.backoff") in seen  # from ..backoff import
    assert ("service.detect.runner", "service.scores") in seen
    assert ("service.preflight", "service.venues.ccxt_polled") in seen
    assert ("service.config", "service.config_types") in seen
    assert len(_modules()) > 100


def test_no_import_cycle_among_the_service_packages() -> None:
    edges = package_edges()
    report = []
    for component in cycles(edges):
        report.append(" <-> ".join(component))
        for a in component:
            for b, why in sorted(edges.get(a, {}).items()):
                if b in component:
                    report.append(
                        f"    {a} -> {b}: {why[0]}" + (f" (+{len(why) - 1})" * (len(why) > 1))
                    )
    assert not report, "import cycles among the service's packages:\n" + "\n".join(report)


def test_the_cycle_finder_finds_a_cycle() -> None:
    imp = Import("service.a", "service.b", 1)
    edges = {"a": {"b": [imp]}, "b": {"c": [imp]}, "c": {"a": [imp]}, "d": {"a": [imp]}}
    assert cycles(edges) == [["a", "b", "c"]]


def _closure(start: set[str]) -> set[str]:
    by_source: dict[str, set[str]] = {}
    for imp in imports():
        by_source.setdefault(imp.source, set()).add(imp.target)
    seen: set[str] = set()
    todo = list(start)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parent = module.rpartition(".")[0]
        todo += [*by_source.get(module, ()), *([parent] if parent else [])]  # a parent runs first
    return seen


def test_the_settings_import_only_the_settings_and_the_vocabulary() -> None:
    outside = _closure(SETTINGS) - SETTINGS - VOCABULARY
    culprits = [
        str(i) for i in imports() if i.source in SETTINGS | VOCABULARY and i.target in outside
    ]
    assert not outside, "the settings reach beyond their leaf set:\n" + "\n".join(culprits)


def test_importing_the_settings_loads_no_other_service_module_and_nothing_heavy() -> None:
    # the same rule, observed: what `import service.config` really leaves in sys.modules
    code = "import sys, service.config; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    service = {m for m in loaded if m == "service" or m.startswith("service.")}
    assert service <= SETTINGS | VOCABULARY, sorted(service - SETTINGS - VOCABULARY)
    assert not {m.partition(".")[0] for m in loaded} & HEAVY
