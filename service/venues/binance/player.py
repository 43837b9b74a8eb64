"""The Binance wire players (USDⓈ-M and COIN-M) for ``deleverage evaluate``: the simulator's
encoders feed the real parsers. Binance sends one liquidation per symbol per second and has
open interest over REST only (polled here every :data:`OI_POLL_S`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import ClassVar, Final

from ...events import Event
from ...simulate.market import DEFAULT_SPECS, LiquidationPrint, SymbolSpec
from ...simulate.scenario import Scenario
from ..base import Instrument, Parser
from ..player import WirePlayer
from .coinm import VENUE as COINM_VENUE
from .coinm import BinanceCoinmParser
from .coinm import parse_open_interest as coinm_open_interest
from .simulator import usdm_wire as bwire
from .simulator.coinm import COINM_SPECS
from .simulator.coinm_wire import COINM
from .usdm import VENUE as USDM_VENUE
from .usdm import BinanceUsdmParser, parse_open_interest

OI_POLL_S: Final = 10.0
"""Binance open interest is REST-only: each symbol is polled this often (a configured subset
of symbols; with every symbol the collector's weight budget stretches it to about a minute)."""


class BinanceUsdmPlayer(WirePlayer):
    venue: ClassVar[str] = USDM_VENUE
    parser_class: ClassVar[type[Parser]] = BinanceUsdmParser
    specs: ClassVar[tuple[SymbolSpec, ...]] = DEFAULT_SPECS
    product: ClassVar[bwire.Product] = bwire.USDM
    four_hour: ClassVar[tuple[str, ...]] = bwire.FOUR_HOUR_SYMBOLS

    def __init__(
        self, scenario: Scenario, seed: int, assets: Sequence[str], all_contracts: bool = False
    ) -> None:
        self._info = json.loads(bwire.load_exchange_info(self.product))
        super().__init__(scenario, seed, assets, all_contracts)
        self.contracts = bwire.contracts(self._info, self.market.symbols, self.four_hour)
        self.throttle = bwire.ForceOrderThrottle()
        self._next_poll_ms = 0

    def _instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        rows = {s["symbol"]: s for s in self._info["symbols"]}
        return {
            sym: Instrument(
                self.venue,
                sym,
                rows[sym]["baseAsset"],
                rows[sym]["quoteAsset"],
                linear=self.product is bwire.USDM,
                contract_size=float(rows[sym].get("contractSize", 1.0)),
                funding_interval_h=4.0 if sym in self.four_hour else 8.0,
            )
            for sym in symbols
        }

    def _mark_frames(self, now_ms: int) -> list[str]:
        update = self.product.mark_price_update
        rows = [
            bwire.encode(update(q, self.contracts[q.symbol], now_ms)) for q in self.market.quotes()
        ]
        return [bwire.frame("!markPrice@arr@1s", "[" + ",".join(rows) + "]", True)]

    def _frames(self, now_ms: int, prints: list[LiquidationPrint], quotes_due: bool) -> list[str]:
        self.throttle.offer(prints)
        out = self._mark_frames(now_ms) if quotes_due else []
        for p in self.throttle.due(now_ms):
            data = bwire.encode(self.product.force_order(p, self.contracts[p.symbol], now_ms))
            out.append(bwire.frame("!forceOrder@arr", data, True))
        return out

    def _polled(self, now_ms: int) -> list[Event]:
        if now_ms < self._next_poll_ms:
            return []
        self._next_poll_ms = now_ms + int(OI_POLL_S * 1000)
        out: list[Event] = []
        for sym, c in self.contracts.items():
            mark = self.parser.last_mark.get(sym)
            if mark is None:
                continue  # the collector values OI at the last mark: it waits for one
            body = bwire.encode(self.product.open_interest(self.market.quote(sym), c, now_ms))
            out.append(self._parse_oi(body, self.instruments[sym], mark, now_ms))
        return out

    def _parse_oi(self, body: str, inst: Instrument, mark: float, now_ms: int) -> Event:
        return parse_open_interest(body, inst, mark, now_ms)


class BinanceCoinmPlayer(BinanceUsdmPlayer):
    venue: ClassVar[str] = COINM_VENUE
    parser_class: ClassVar[type[Parser]] = BinanceCoinmParser
    specs: ClassVar[tuple[SymbolSpec, ...]] = COINM_SPECS
    product: ClassVar[bwire.Product] = COINM
    four_hour: ClassVar[tuple[str, ...]] = ()

    def _mark_frames(self, now_ms: int) -> list[str]:
        """``<pair>@markPrice@1s``: one array per pair (COIN-M has no all-market stream)."""
        by_pair: dict[str, list[str]] = {}
        for q in self.market.quotes():
            c = self.contracts[q.symbol]
            row = bwire.encode(self.product.mark_price_update(q, c, now_ms))
            by_pair.setdefault(c.pair, []).append(row)
        return [
            bwire.frame(f"{pair.lower()}@markPrice@1s", "[" + ",".join(rows) + "]", True)
            for pair, rows in by_pair.items()
        ]

    def _parse_oi(self, body: str, inst: Instrument, mark: float, now_ms: int) -> Event:
        return coinm_open_interest(body, inst, mark, now_ms)
