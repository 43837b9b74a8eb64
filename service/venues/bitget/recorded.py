"""Bitget's real recordings (:mod:`..recorded`): its capture and its recorded ``contracts``
listing."""

from __future__ import annotations

from pathlib import Path

from ..base import Instrument
from ..recorded import Recorded, rest_bodies

LISTED_LATER = ("STORJUSDT", "APEUSDT", "IPUSDT")
"""Symbols the frames name that were listed after the listing was recorded."""


def markets(captures: Path) -> dict[str, Instrument]:
    out: dict[str, Instrument] = {}
    for body in rest_bodies(captures, "BITGET.0.txt", "/mix/v1/market/contracts"):
        for r in body["data"]:
            symbol = r["symbol"].split("_")[0]
            out[symbol] = Instrument("bitget", symbol, r["baseCoin"], r["quoteCoin"], True)
    for symbol in LISTED_LATER:
        out[symbol] = Instrument("bitget", symbol, symbol.removesuffix("USDT"), "USDT", True)
    return out


RECORDED = Recorded("bitget.jsonl", markets)
