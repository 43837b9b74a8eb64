"""The Bybit wire player for ``deleverage evaluate``: snapshot-then-delta tickers, and a
reconnect gets a snapshot of every ticker. Its ADL alerts are polled as the stress poller
polls them (``GET /v5/market/adlAlert``, every :data:`ADL_POLL_S`: :func:`.stress.plan`):
a symbol whose asset the scenario auto-deleverages has its PnL drawdown past the trigger
(``ACTIVE``), the others a twentieth of the way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Final

import msgspec

from ...events import AdlRisk
from ...simulate.market import LiquidationPrint, SymbolSpec
from ...simulate.scenario import Scenario
from ..base import Instrument, Parser, ParseStats
from ..player import WirePlayer
from .simulator import wire as bybit_wire
from .stress import parse_adl_alert
from .venue import VENUE, BybitParser, parse_instruments

ADL_POLL_S: Final = 60.0
"""The stress poller's ADL alerts interval (:func:`.stress.plan`, ``alerts_every_s``)."""
TRIGGER_RATIO: Final = -0.3
"""The docs' ``insurancePnlRatio``: ADL once a symbol's 8 h PnL drawdown passes it."""


class BybitPlayer(WirePlayer):
    venue: ClassVar[str] = VENUE
    parser_class: ClassVar[type[Parser]] = BybitParser
    specs: ClassVar[tuple[SymbolSpec, ...]] = bybit_wire.BYBIT_SPECS

    def __init__(
        self, scenario: Scenario, seed: int, assets: Sequence[str], all_contracts: bool = False
    ) -> None:
        self._listings = {c: bybit_wire.load_instruments(c) for c in bybit_wire.CATEGORIES}
        super().__init__(scenario, seed, assets, all_contracts)
        perpetuals = bybit_wire.contracts(self._listings)
        self.books = {
            s: bybit_wire.TickerBook(perpetuals[s], 1_000_000 * (i + 1))
            for i, s in enumerate(self.market.symbols)
        }
        self._snapshot_due = set(self.books)
        self._next_adl_ms = 0
        self.stress_stats = ParseStats()

    def _instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        out: dict[str, Instrument] = {}
        for body in self._listings.values():
            listed, _ = parse_instruments(body)
            out.update((i.symbol, i) for i in listed if i.symbol in symbols)
        return out

    def _reconnected(self, now_ms: int) -> None:
        self._snapshot_due = set(self.books)

    def _adl(self, now_ms: int) -> list[AdlRisk]:
        if now_ms < self._next_adl_ms:
            return []
        self._next_adl_ms = now_ms + int(ADL_POLL_S * 1000)
        phase, rows = self.market.now.phase, []
        for symbol in self.market.symbols:
            adl = phase.drift(self.market.spec(symbol).base).adl
            rows.append(
                {
                    "coin": "USDT", "symbol": symbol, "balance": "90000000",
                    "maxBalance": "90000000", "insurancePnlRatio": f"{TRIGGER_RATIO}",
                    "pnlRatio": f"{TRIGGER_RATIO * (1.2 if adl else 0.05):.6f}",
                    "adlTriggerThreshold": "10000", "adlStopRatio": "-0.25",
                }
            )  # fmt: skip
        result = {"updatedTime": str(now_ms - now_ms % 60_000), "list": rows}
        body = msgspec.json.encode({"retCode": 0, "retMsg": "OK", "result": result})
        events = parse_adl_alert(body, self.instruments, now_ms, self.stress_stats)
        return [e for e in events if type(e) is AdlRisk]

    def _frames(self, now_ms: int, prints: list[LiquidationPrint], quotes_due: bool) -> list[str]:
        out: list[str] = []
        if quotes_due:
            for symbol, book in self.books.items():
                delta = book.update(self.market.quote(symbol), now_ms)
                if symbol in self._snapshot_due:
                    self._snapshot_due.discard(symbol)
                    out.append(
                        bybit_wire.ticker_frame("snapshot", book.fields, book.cs, now_ms, symbol)
                    )
                elif delta:
                    out.append(bybit_wire.ticker_frame("delta", delta, book.cs, now_ms, symbol))
        by_symbol: dict[str, list[LiquidationPrint]] = {}
        for p in prints:
            by_symbol.setdefault(p.symbol, []).append(p)
        for symbol, ps in by_symbol.items():
            contract = self.books[symbol].contract
            rows = [bybit_wire.liquidation_row(p, contract) for p in ps]
            out.append(bybit_wire.liquidation_frame(symbol, rows, now_ms))
        return out
