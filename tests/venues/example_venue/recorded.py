"""The example venue's recordings: frames written for the tests in the shape its simulator
sends (``captures.jsonl``, beside this file) and its listing (``instruments.json``). A real
venue names its capture in the shared captures directory instead."""

from __future__ import annotations

import json
from pathlib import Path

from service.venues.base import Instrument
from service.venues.recorded import Recorded

from .venue import parse_instruments

HERE = Path(__file__).parent


def markets(captures: Path) -> dict[str, Instrument]:
    return parse_instruments(json.loads((HERE / "instruments.json").read_text(encoding="utf-8")))


RECORDED = Recorded(str(HERE / "captures.jsonl"), markets)
