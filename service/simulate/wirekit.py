"""What every venue simulator's encoder shares: compact JSON text, and the recorded listings
kept beside it (``<venue>/simulator/data/``).

The venues' own wire formats stay in their packages (``service/venues/<name>/simulator/wire.py``);
this module knows nothing of any venue.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import msgspec

_encode = msgspec.json.Encoder().encode


def encode(obj: Any) -> str:
    """``obj`` as compact JSON text, as the venues send it."""
    return _encode(obj).decode()


def recorded_text(package: str, name: str) -> str:
    """The text of the data file ``name`` of ``package`` (a simulator's ``data/...json``)."""
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def recorded(package: str, name: str) -> Any:
    """The data file ``name`` of ``package``, decoded from JSON."""
    return json.loads(recorded_text(package, name))
