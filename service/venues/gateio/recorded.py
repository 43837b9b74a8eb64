"""Gate's real recordings (:mod:`..recorded`): its futures capture and its recorded USDT
``contracts`` listing."""

from __future__ import annotations

from pathlib import Path

from ..base import Instrument
from ..recorded import Recorded, rest_bodies
from .instruments import GateContract, parse_contracts


def markets(captures: Path) -> dict[str, Instrument]:
    (rows,) = rest_bodies(captures, "GATEIO_FUTURES.0.txt")
    out: dict[str, Instrument] = {c.symbol: c for c in parse_contracts(rows, "usdt")}
    for name, base in (("BTC_USD", "BTC"), ("ETC_USD", "ETC")):  # BTC-settled, not listed
        out[name] = GateContract("gateio", name, base, "USD", linear=False, settle="btc")
    return out


RECORDED = Recorded("gateio_futures.jsonl", markets)
