"""Deribit's real recordings (:mod:`..recorded`): its capture and its recorded ``get_instruments``
listing."""

from __future__ import annotations

from pathlib import Path

from ..base import Instrument
from ..recorded import Recorded, rest_bodies
from .frames import instruments


def markets(captures: Path) -> dict[str, Instrument]:
    bodies = rest_bodies(captures, "DERIBIT.0.txt")
    return {i.symbol: i for body in bodies for i in instruments(body)}


RECORDED = Recorded("deribit.jsonl", markets)
