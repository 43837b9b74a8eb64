"""The BitMEX wire player for ``deleverage evaluate``. BitMEX liquidations are the engine's
orders (``insert`` when placed, an ``update`` when half of it fills, ``delete`` after
:data:`BITMEX_ORDER_LIFE_S`); its tables start with a ``partial``, XBTUSD's instrument first
(its mark values the quanto contracts)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, ClassVar, Final

from ...simulate.market import LiquidationPrint, SymbolSpec
from ...simulate.scenario import Scenario
from ..base import Instrument, Parser
from ..player import WirePlayer
from .instruments import instrument as bitmex_instrument
from .simulator import wire as bitmex_wire
from .venue import Bitmex, BitmexParser

BITMEX_FILL_AFTER_S: Final = 0.5
BITMEX_ORDER_LIFE_S: Final = 2.0
BITMEX_FILLED_SHARE: Final = 0.5
"""A liquidation order rests this long before half of it fills, and is gone after its life
(the loopback server's defaults)."""


class BitmexPlayer(WirePlayer):
    venue: ClassVar[str] = Bitmex.id
    parser_class: ClassVar[type[Parser]] = BitmexParser
    specs: ClassVar[tuple[SymbolSpec, ...]] = bitmex_wire.BITMEX_SPECS

    def __init__(
        self, scenario: Scenario, seed: int, assets: Sequence[str], all_contracts: bool = False
    ) -> None:
        self._rows = {r["symbol"]: r for r in bitmex_wire.load_listing()}
        super().__init__(scenario, seed, assets, all_contracts)
        self.contracts = bitmex_wire.contracts(self._rows.values(), self.market.symbols)
        self.books = {s: bitmex_wire.InstrumentBook(c) for s, c in self.contracts.items()}
        self._open: dict[str, bitmex_wire.Order] = {}
        self._partial_due = True

    def _instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        return {s: i for s in symbols if (i := bitmex_instrument(self._rows[s])) is not None}

    def _reconnected(self, now_ms: int) -> None:
        self._partial_due = True

    def _xbt_usd(self) -> float:
        """XBTUSD's mark when simulated, else the listing's."""
        if bitmex_wire.XBT_REFERENCE in self.books:
            return self.market.mark(bitmex_wire.XBT_REFERENCE)
        return float(self._rows[bitmex_wire.XBT_REFERENCE]["markPrice"])

    def _partials(self) -> list[str]:
        """What a new subscription gets: the instrument rows (XBTUSD first), then the open
        liquidation orders of each symbol."""
        ref = bitmex_wire.XBT_REFERENCE
        first = [ref] + [s for s in self.books if s != ref]
        out = [
            bitmex_wire.partial(
                "instrument", s, [self.books[s].row() if s in self.books else self._rows[s]]
            )
            for s in first
        ]
        for s in self.books:
            rows = [o.row() for o in self._open.values() if o.print.symbol == s]
            out.append(bitmex_wire.partial("liquidation", s, rows))
        return out

    def _frames(self, now_ms: int, prints: list[LiquidationPrint], quotes_due: bool) -> list[str]:
        out: list[str] = []
        xbt, now_s = self._xbt_usd(), now_ms / 1000
        if quotes_due or self._partial_due:
            for symbol, book in self.books.items():
                diffs = book.update(self.market.quote(symbol), xbt, now_ms)
                if not self._partial_due:
                    out.extend(bitmex_wire.table("instrument", "update", [d]) for d in diffs)
        if self._partial_due:
            self._partial_due = False
            out.extend(self._partials())
        inserts: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        updates: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        deletes: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        for oid, o in list(self._open.items()):
            age = now_s - o.placed_s
            if age >= BITMEX_ORDER_LIFE_S:
                del self._open[oid]
                deletes[o.print.symbol].append(o.keys())
            elif age >= BITMEX_FILL_AFTER_S and o.leaves_qty == o.contracts and o.contracts > 1:
                o.leaves_qty = o.contracts - max(1, round(o.contracts * BITMEX_FILLED_SHARE))
                updates[o.print.symbol].append(o.keys() | {"leavesQty": o.leaves_qty})
        for p in sorted(prints, key=lambda p: p.ts_ms):
            o = bitmex_wire.new_order(p, self.contracts[p.symbol], xbt, now_s)
            self._open[o.order_id] = o
            inserts[p.symbol].append(o.row())
        for action, rows in (("insert", inserts), ("update", updates), ("delete", deletes)):
            out.extend(bitmex_wire.table("liquidation", action, data) for data in rows.values())
        return out
