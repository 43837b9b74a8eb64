"""The Bybit wire player for ``deleverage evaluate``: snapshot-then-delta tickers, and a
reconnect gets a snapshot of every ticker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ...simulate.market import LiquidationPrint, SymbolSpec
from ...simulate.scenario import Scenario
from ..base import Instrument, Parser
from ..player import WirePlayer
from .simulator import wire as bybit_wire
from .venue import VENUE, BybitParser, parse_instruments


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

    def _instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        out: dict[str, Instrument] = {}
        for body in self._listings.values():
            listed, _ = parse_instruments(body)
            out.update((i.symbol, i) for i in listed if i.symbol in symbols)
        return out

    def _reconnected(self, now_ms: int) -> None:
        self._snapshot_due = set(self.books)

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
