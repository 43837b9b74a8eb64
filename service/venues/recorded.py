"""A venue's real recordings: the frames it was captured sending, and the instruments its
recorded REST listing gives, for the checks that run every registered venue's parser on what
the venue really sent (``tests/venues/test_captures.py``, ``tests/venues/test_fuzz_parsers.py``).

The recordings live outside the repository, in one directory (``../shared/captures`` beside
a checkout, or ``DELEVERAGE_CAPTURES``): a capture file per venue, one JSON object a line
(``{"kind": "frame" | "client_request" | ..., "raw": "<the frame as sent>"}``), and
``rest/<EXCHANGE>.<n>.txt`` with the REST answers (``<url> -> <time>: <json body>`` a line).
A venue of its own (such as the tests' example venue) names an absolute path instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import Instrument


@dataclass(frozen=True)
class Recorded:
    """Where a venue's recordings are, and how its recorded listing reads."""

    capture: str
    """Its capture file: a name in the captures directory, or an absolute path."""
    markets: Callable[[Path], Mapping[str, Instrument]]
    """Its instruments from the recorded REST listing in the captures directory, plus the
    symbols its frames name that were listed later or have expired."""

    def frames(self, captures: Path) -> list[str]:
        """The frames the venue sent in its capture (not the client's requests), in order."""
        lines = (captures / self.capture).read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        return [str(row["raw"]) for row in rows if row["kind"] != "client_request"]


def rest_bodies(captures: Path, name: str, url_part: str = "") -> list[Any]:
    """The JSON bodies of a recorded REST file (``rest/<name>``), of the URLs containing
    ``url_part``."""
    out: list[Any] = []
    for line in (captures / "rest" / name).read_text(encoding="utf-8").splitlines():
        url, sep, rest = line.partition(" -> ")
        if sep and url_part in url:
            out.append(json.loads(rest.split(": ", 1)[1]))
    return out
