"""Bybit's real recordings (:mod:`..recorded`): its capture; the symbols it names, by their suffix
(no listing was recorded)."""

from __future__ import annotations

from pathlib import Path

from ..base import Instrument
from ..recorded import Recorded

LINEAR = ("BTCUSDT", "ROSEUSDT", "PIPPINUSDT", "GALAUSDT", "LINKUSDT", "XLMUSDT", "LTCUSDT")
INVERSE = ("BTCUSD", "ETHUSD", "XRPUSD", "EOSUSD")


def markets(captures: Path) -> dict[str, Instrument]:
    out = {s: Instrument("bybit", s, s.removesuffix("USDT"), "USDT", True) for s in LINEAR}
    out |= {s: Instrument("bybit", s, s.removesuffix("USD"), "USD", False) for s in INVERSE}
    return out


RECORDED = Recorded("bybit.jsonl", markets)
