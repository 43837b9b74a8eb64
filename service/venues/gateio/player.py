"""The Gate wire player for ``deleverage evaluate``. Gate batches a contract's liquidations
over a second (20 a frame), in decimal sizes as the collector asks with
``X-Gate-Size-Decimal: 1``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import ClassVar

from ...simulate.market import LiquidationPrint, SymbolSpec
from ...simulate.scenario import Scenario
from ..base import Instrument, Parser
from ..player import WirePlayer, by_second
from .instruments import parse_contracts as gate_contracts
from .simulator import wire as gateio_wire
from .venue import Gate, GateParser


class GatePlayer(WirePlayer):
    venue: ClassVar[str] = Gate.id
    parser_class: ClassVar[type[Parser]] = GateParser
    specs: ClassVar[tuple[SymbolSpec, ...]] = gateio_wire.GATE_SPECS

    def __init__(
        self, scenario: Scenario, seed: int, assets: Sequence[str], all_contracts: bool = False
    ) -> None:
        self._listings = {s: gateio_wire.load_contracts(s) for s in gateio_wire.SETTLES}
        super().__init__(scenario, seed, assets, all_contracts)
        collected = gateio_wire.contracts(self._listings)
        self.books = {s: gateio_wire.TickerBook(collected[s]) for s in self.market.symbols}

    def _instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        out: dict[str, Instrument] = {}
        for settle, rows in self._listings.items():
            out.update((c.symbol, c) for c in gate_contracts(rows, settle) if c.symbol in symbols)
        return out

    def _frames(self, now_ms: int, prints: list[LiquidationPrint], quotes_due: bool) -> list[str]:
        out: list[str] = []
        if quotes_due:
            for name, book in self.books.items():
                ticker = book.ticker(self.market.quote(name))
                out.append(gateio_wire.frame(gateio_wire.TICKERS, "update", [ticker], now_ms))
        for second in by_second(prints):
            per_contract: defaultdict[str, list[LiquidationPrint]] = defaultdict(list)
            for p in second:
                per_contract[p.symbol].append(p)
            for name, ps in per_contract.items():
                c = self.books[name].contract
                for i in range(0, len(ps), gateio_wire.BATCH_MAX):
                    rows = [
                        gateio_wire.liquidation_row(p, c, decimal_sizes=True)
                        for p in ps[i : i + gateio_wire.BATCH_MAX]
                    ]
                    out.append(gateio_wire.frame(gateio_wire.LIQUIDATES, "update", rows, now_ms))
        return out
