"""The venues' one registration (``service.venues.SPECS``) and what derives from it: the
registries, the compose file's simulator overlay, the venues table of ``docs/venues.md``, and
the simulators' independence from the parsers they test."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml

import service.venues as venues
from service.venues import PLAYERS, REGISTRY, SHAPES, SIMULATORS, VenueSpec

REPO = Path(__file__).resolve().parents[2]
VENUES_DIR = REPO / "service" / "venues"
COMPOSE_BASE_PORT = 9400
"""``docker-compose.yml``'s ``deleverage simulate --base-port``."""
TABLE_START = (
    "<!-- venues table: generated from service.venues.SPECS (tests/venues/test_specs.py) -->"
)
TABLE_END = "<!-- end of the venues table -->"


def package_of(spec: VenueSpec) -> str:
    """``service/venues/<name>/``, the package the spec's venue lives in."""
    path = Path(sys.modules[spec.venue.__module__].__file__ or "")
    return path.parent.relative_to(REPO).as_posix() + "/"


def venues_table(base_port: int = COMPOSE_BASE_PORT) -> str:
    """The table ``docs/venues.md`` carries between its markers."""
    rows = [
        "| venue id | package | simulator ports (ws, REST) | enabled by default | wire player |",
        "|---|---|---|---|---|",
    ]
    for i, spec in enumerate(venues.SPECS):
        ws, rest = base_port + 2 * i, base_port + 2 * i + 1
        enabled = "yes" if spec.enabled_by_default else "no (retired)"
        rows.append(
            f"| `{spec.id}` | `{package_of(spec)}` | {ws}, {rest} | {enabled} "
            f"| `{spec.player.__name__}` |"
        )
    return "\n".join(rows)


def test_every_registry_derives_from_the_specs_in_their_order() -> None:
    ids = [s.id for s in venues.SPECS]
    assert len(set(ids)) == len(ids)
    for registry in (REGISTRY, SHAPES, SIMULATORS, PLAYERS):
        assert list(registry) == ids
    for spec in venues.SPECS:
        assert REGISTRY[spec.id] is spec.venue
        assert SHAPES[spec.id] is spec.shape
        assert spec.player.venue == spec.id


def test_the_compose_overlay_lists_every_spec_on_its_port() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    command = compose["services"]["simulator"]["command"]
    assert int(command[command.index("--base-port") + 1]) == COMPOSE_BASE_PORT
    overlay = yaml.safe_load(compose["configs"]["simulator-venues"]["content"])["venues"]
    assert list(overlay) == [s.id for s in venues.SPECS]
    for i, spec in enumerate(venues.SPECS):
        ws_port = int(re.findall(r":(\d+)", overlay[spec.id]["ws_url"])[0])
        assert ws_port == COMPOSE_BASE_PORT + 2 * i, spec.id
        assert overlay[spec.id]["rest_url"] == f"http://simulator:{COMPOSE_BASE_PORT + 2 * i + 1}"
    # the comment above the simulator service names the order too
    text = (REPO / "docker-compose.yml").read_text()
    said = re.search(r"in the order ([a-z_, \n#]+?); the simulator-venues", text)
    assert said is not None
    named = [n.strip(" #\n") for n in said.group(1).replace("\n", " ").split(",")]
    assert named == [s.id for s in venues.SPECS]


def test_the_venues_table_of_the_docs_is_the_one_the_specs_give() -> None:
    text = (REPO / "docs" / "venues.md").read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    expected = venues_table()
    assert text[start:end].strip() == expected, "docs/venues.md, paste:\n" + expected


def _imports(path: Path) -> set[str]:
    """The absolute modules a file imports (relative imports resolved)."""
    module = ".".join(path.relative_to(REPO).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    package = package.removesuffix(".__init__")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def test_a_simulator_imports_nothing_of_the_venue_it_simulates() -> None:
    # a second implementation of the protocol, not an echo of the parser
    simulators = sorted(VENUES_DIR.glob("*/simulator/*.py"))
    assert len({p.parent for p in simulators}) == len({package_of(s) for s in venues.SPECS})
    leaks = []
    for path in simulators:
        own = ".".join(path.parent.relative_to(REPO).parts)
        leaks += [
            f"{path.relative_to(REPO)}: {target}"
            for target in _imports(path)
            if target.startswith("service.venues") and not target.startswith(own)
        ]
    assert not leaks, leaks
