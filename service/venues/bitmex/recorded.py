"""BitMEX's real recordings (:mod:`..recorded`): its capture and its recorded ``instrument``
listing."""

from __future__ import annotations

from pathlib import Path

from ..base import Instrument
from ..recorded import Recorded, rest_bodies
from .instruments import instrument


def markets(captures: Path) -> dict[str, Instrument]:
    (rows,) = rest_bodies(captures, "BITMEX.0.txt")
    return {inst.symbol: inst for r in rows if (inst := instrument(r)) is not None}


RECORDED = Recorded("bitmex.jsonl", markets)
