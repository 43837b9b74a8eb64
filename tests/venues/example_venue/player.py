"""The example venue's wire player for ``deleverage evaluate``."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import ClassVar

from service.simulate.market import LiquidationPrint, SymbolSpec
from service.simulate.scenario import Scenario
from service.venues.base import Instrument, Parser
from service.venues.player import WirePlayer

from .simulator import wire
from .venue import VENUE, ExampleParser, parse_instruments


class ExamplePlayer(WirePlayer):
    venue: ClassVar[str] = VENUE
    parser_class: ClassVar[type[Parser]] = ExampleParser
    specs: ClassVar[tuple[SymbolSpec, ...]] = wire.EXAMPLE_SPECS

    def __init__(
        self, scenario: Scenario, seed: int, assets: Sequence[str], all_contracts: bool = False
    ) -> None:
        super().__init__(scenario, seed, assets, all_contracts)
        self._ids = itertools.count(1)

    def _instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        listed = parse_instruments(wire.instruments(self.specs))
        return {s: i for s, i in listed.items() if s in symbols}

    def _frames(self, now_ms: int, prints: list[LiquidationPrint], quotes_due: bool) -> list[str]:
        out = [wire.ticker(self.market.quotes(), now_ms)] if quotes_due else []
        if prints:
            rows = [wire.liquidation_row(p, next(self._ids)) for p in prints]
            out.append(wire.liquidations(rows, now_ms))
        return out
