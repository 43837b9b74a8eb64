"""Hyperliquid's real recordings (:mod:`..recorded`): its capture; the coins it names (no listing
was recorded)."""

from __future__ import annotations

from pathlib import Path

from ..base import Instrument
from ..recorded import Recorded
from .instruments import parse_meta

COINS = ("BTC", "ETH", "FXS", "MOODENG", "kPEPE")


def markets(captures: Path) -> dict[str, Instrument]:
    universe = [{"name": c, "szDecimals": 2, "maxLeverage": 10} for c in COINS]
    return {i.symbol: i for i in parse_meta({"universe": universe})}


RECORDED = Recorded("hyperliquid.jsonl", markets)
