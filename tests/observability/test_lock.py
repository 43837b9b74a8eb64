"""``requirements.lock`` (``make lock``), what the Docker image installs: every dependency
of ``pyproject.toml`` pinned to one version that its range admits, every pin with its hashes.
A dependency added, or a range changed, without running ``make lock`` fails here."""

from __future__ import annotations

import re
import tomllib

from obs_support import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

LOCK = (REPO / "requirements.lock").read_text()
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)(?: ;[^\\]*)?\s*\\$", re.M)


def _pins() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, version in PIN.findall(LOCK):
        out.setdefault(canonicalize_name(name), []).append(version)
    return out


def test_every_dependency_is_pinned_to_a_version_its_range_admits() -> None:
    pins = _pins()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for text in project["dependencies"]:
        req = Requirement(text)
        versions = pins.get(canonicalize_name(req.name))
        assert versions, f"{req.name} is not in requirements.lock: run `make lock`"
        for v in versions:
            assert req.specifier.contains(Version(v), prereleases=True), (
                f"{req.name}=={v} is outside {req.specifier}: run `make lock`"
            )
    assert "hiredis" in pins  # redis[hiredis]: the extra's packages too


def test_every_pin_carries_its_hashes() -> None:
    blocks = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", LOCK.split("\n", 2)[2])
    assert len(blocks) == sum(len(v) for v in _pins().values()) > 20
    for block in blocks:
        assert "--hash=sha256:" in block, block.splitlines()[0]
