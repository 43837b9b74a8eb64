"""OKX's real recordings (:mod:`..recorded`): its capture and its recorded ``instruments``
listing."""

from __future__ import annotations

from pathlib import Path

from ..base import Instrument
from ..recorded import Recorded, rest_bodies
from .instruments import instrument


def markets(captures: Path) -> dict[str, Instrument]:
    rows = {r["instId"]: r for body in rest_bodies(captures, "OKX.0.txt") for r in body["data"]}
    return {i: inst for i, r in rows.items() if (inst := instrument(r)) is not None}


RECORDED = Recorded("okx.jsonl", markets)
