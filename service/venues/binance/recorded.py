"""Binance's real recordings (:mod:`..recorded`): the USDⓈ-M and COIN-M captures, and their
``exchangeInfo`` listings."""

from __future__ import annotations

from pathlib import Path

from ..base import Instrument
from ..recorded import Recorded, rest_bodies
from .coinm import pair_of


def usdm_markets(captures: Path) -> dict[str, Instrument]:
    (info,) = rest_bodies(captures, "BINANCE_FUTURES.0.txt")
    symbols = [(s["symbol"], s["baseAsset"], s["quoteAsset"]) for s in info["symbols"]]
    symbols.append(("BTCBUSD_210129", "BTC", "BUSD"))  # a delivery contract of the frames
    return {s: Instrument("binance_usdm", s, b, q, linear=True) for s, b, q in symbols}


def coinm_markets(captures: Path) -> dict[str, Instrument]:
    (info,) = rest_bodies(captures, "BINANCE_DELIVERY.0.txt")
    sizes = {row["pair"]: float(row["contractSize"]) for row in info["symbols"]}
    symbols = {row["symbol"] for row in info["symbols"]} | {"BTCUSD_200925", "BTCUSD_201225"}
    return {
        s: Instrument(
            "binance_coinm",
            s,
            pair_of(s).removesuffix("USD"),
            "USD",
            linear=False,
            contract_size=sizes[pair_of(s)],
        )
        for s in symbols
    }


USDM = Recorded("binance_usdm.jsonl", usdm_markets)
COINM = Recorded("binance_coinm.jsonl", coinm_markets)
