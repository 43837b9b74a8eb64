"""The Bitget wire player for ``deleverage evaluate``. Bitget sends a snapshot then updates
of each ticker, and samples its liquidation feed (per second and symbol, the largest long
and the largest short)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import ClassVar

from ...simulate.market import LiquidationPrint, SymbolSpec
from ...simulate.scenario import Scenario
from ..base import Instrument, Parser
from ..player import WirePlayer, by_second
from .instruments import parse_contracts as bitget_contracts
from .simulator import wire as bitget_wire
from .venue import Bitget, BitgetParser


class BitgetPlayer(WirePlayer):
    venue: ClassVar[str] = Bitget.id
    parser_class: ClassVar[type[Parser]] = BitgetParser
    specs: ClassVar[tuple[SymbolSpec, ...]] = bitget_wire.BITGET_SPECS

    def __init__(
        self, scenario: Scenario, seed: int, assets: Sequence[str], all_contracts: bool = False
    ) -> None:
        self._listings = {pt: bitget_wire.load_contracts(pt) for pt in bitget_wire.PRODUCT_TYPES}
        super().__init__(scenario, seed, assets, all_contracts)
        perpetuals = bitget_wire.contracts(self._listings)
        self.books = {s: bitget_wire.TickerBook(perpetuals[s]) for s in self.market.symbols}
        self._snapshot_due = set(self.books)

    def _instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        out: dict[str, Instrument] = {}
        for product_type, body in self._listings.items():
            listed = bitget_contracts(body, product_type)
            out.update((i.symbol, i) for i in listed if i.symbol in symbols)
        return out

    def _reconnected(self, now_ms: int) -> None:
        self._snapshot_due = set(self.books)

    def _frames(self, now_ms: int, prints: list[LiquidationPrint], quotes_due: bool) -> list[str]:
        out: list[str] = []
        for symbol, book in self.books.items():
            if quotes_due or symbol in self._snapshot_due:
                action = "snapshot" if symbol in self._snapshot_due else "update"
                self._snapshot_due.discard(symbol)
                row = book.row(self.market.quote(symbol), now_ms)
                out.append(bitget_wire.ticker_frame(action, book.contract, row, now_ms))
        for second in by_second(prints):
            per_type: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
            for p in bitget_wire.sample(second):
                c = self.books[p.symbol].contract
                per_type[c.inst_type].append(bitget_wire.liquidation_row(p, c))
            out.extend(
                bitget_wire.liquidation_frame(t, rows, now_ms) for t, rows in per_type.items()
            )
        return out
