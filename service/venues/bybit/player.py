"""The Bybit wire player for ``deleverage evaluate``: snapshot-then-delta tickers, and a
reconnect gets a snapshot of every ticker. Its ADL state reaches the model as the service
gets it: the ``adlAlert.{coin}`` frames every step (the venue pushes them every second;
the parser hands on what changed) and the REST ``adlAlert`` polled every
:data:`ADL_POLL_S` (:func:`.stress.plan`), both from the simulator's
:mod:`.simulator.stress_wire`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Final

import msgspec

from ...events import AdlRisk
from ...simulate.market import LiquidationPrint, SymbolSpec
from ...simulate.scenario import Scenario
from ..base import Instrument, Parser, ParseStats
from ..player import WirePlayer
from .simulator import book_wire, stress_wire
from .simulator import wire as bybit_wire
from .stress import ALERTS_EVERY_S, parse_adl_alert
from .venue import VENUE, BybitParser, parse_instruments

ADL_POLL_S: Final = ALERTS_EVERY_S
"""The stress poller's ADL alerts interval (:func:`.stress.plan`)."""
DEPTH_LEVELS: Final = 200
"""The depth the collector follows by default (``depth.levels``): 200 levels of the
simulator's grid reach 3 % of mid, so the 1 % band is complete."""


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
        self.contracts = {s: book.contract for s, book in self.books.items()}
        self.pool_of = {
            s: pool
            for pool in stress_wire.pools(self.market, self.contracts).values()
            for s in pool.symbols
        }
        self._next_adl_ms = 0
        self.stress_stats = ParseStats()
        self.depth_books: dict[str, book_wire.DepthBook] = {}
        self._depth_snapshot_due: set[str] = set()

    def follow_depth(self) -> bool:
        self.depth_books = {
            s: book_wire.DepthBook(book.contract, DEPTH_LEVELS) for s, book in self.books.items()
        }
        self._depth_snapshot_due = set(self.depth_books)
        return True

    def _instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        out: dict[str, Instrument] = {}
        for body in self._listings.values():
            listed, _ = parse_instruments(body)
            out.update((i.symbol, i) for i in listed if i.symbol in symbols)
        return out

    def _reconnected(self, now_ms: int) -> None:
        self._snapshot_due = set(self.books)
        self._depth_snapshot_due = set(self.depth_books)

    def _adl(self, now_ms: int) -> list[AdlRisk]:
        out = [e for e in self.parser.take_stress() if type(e) is AdlRisk]
        if now_ms < self._next_adl_ms:
            return out
        self._next_adl_ms = now_ms + int(ADL_POLL_S * 1000)
        result = stress_wire.adl_alert(self.market, self.contracts, self.pool_of, now_ms)
        body = msgspec.json.encode({"retCode": 0, "retMsg": "OK", "result": result})
        polled = parse_adl_alert(body, self.instruments, now_ms, self.stress_stats)
        return [*out, *(e for e in polled if type(e) is AdlRisk)]

    def _frames(self, now_ms: int, prints: list[LiquidationPrint], quotes_due: bool) -> list[str]:
        out: list[str] = []
        if quotes_due:
            frames = stress_wire.adl_alert_frames(self.market, self.contracts, self.pool_of, now_ms)
            out.extend(frames.values())
            for symbol, book in self.books.items():
                delta = book.update(self.market.quote(symbol), now_ms)
                if symbol in self._snapshot_due:
                    self._snapshot_due.discard(symbol)
                    out.append(
                        bybit_wire.ticker_frame("snapshot", book.fields, book.cs, now_ms, symbol)
                    )
                elif delta:
                    out.append(bybit_wire.ticker_frame("delta", delta, book.cs, now_ms, symbol))
            out.extend(self._depth_frames(now_ms))
        by_symbol: dict[str, list[LiquidationPrint]] = {}
        for p in prints:
            by_symbol.setdefault(p.symbol, []).append(p)
        for symbol, ps in by_symbol.items():
            contract = self.books[symbol].contract
            rows = [bybit_wire.liquidation_row(p, contract) for p in ps]
            out.append(bybit_wire.liquidation_frame(symbol, rows, now_ms))
        return out

    def _depth_frames(self, now_ms: int) -> list[str]:
        """A snapshot of each followed book to a new connection, then the levels that
        changed (a book that did not move sends nothing, as the venue's)."""
        out: list[str] = []
        for symbol, book in self.depth_books.items():
            delta = book.update(self.market.quote(symbol))
            if symbol in self._depth_snapshot_due:
                self._depth_snapshot_due.discard(symbol)
                out.append(book.snapshot(now_ms))
            elif delta is not None:
                out.append(book.frame("delta", now_ms, *delta))
        return out
