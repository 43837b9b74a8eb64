"""The OKX wire player for ``deleverage evaluate``: a sampled liquidation feed, open interest
and funding pushed less often than marks."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import ClassVar, Final

from ...simulate.market import LiquidationPrint, SymbolSpec
from ...simulate.scenario import Scenario
from ..base import Instrument, Parser
from ..player import WirePlayer
from .instruments import instrument as okx_instrument
from .simulator import wire as okx_wire
from .simulator.server import OKX_SPECS
from .venue import VENUE, OkxParser

OKX_OI_S: Final = 3.0
OKX_FUNDING_S: Final = 30.0
OKX_LIQUIDATION_SAMPLE: Final = 0.5


class OkxPlayer(WirePlayer):
    venue: ClassVar[str] = VENUE
    parser_class: ClassVar[type[Parser]] = OkxParser
    specs: ClassVar[tuple[SymbolSpec, ...]] = OKX_SPECS

    def __init__(
        self, scenario: Scenario, seed: int, assets: Sequence[str], all_contracts: bool = False
    ) -> None:
        self._listing = json.loads(okx_wire.load_instruments())
        super().__init__(scenario, seed, assets, all_contracts)
        self.contracts = okx_wire.contracts(
            self._listing, self.market.symbols, okx_wire.FOUR_HOUR_SYMBOLS
        )
        self._sampler = random.Random(f"okx-sample-{seed}")
        self._next_ms = {"open-interest": 0, "funding-rate": 0}

    def _instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        rows = {r["instId"]: r for r in self._listing["data"]}
        return {s: i for s in symbols if (i := okx_instrument(rows[s])) is not None}

    def _reconnected(self, now_ms: int) -> None:
        self._next_ms = dict.fromkeys(self._next_ms, now_ms)  # pushed once on subscription

    def _channel(self, channel: str, now_ms: int) -> list[str]:
        make = {
            "mark-price": okx_wire.mark_price,
            "open-interest": okx_wire.open_interest,
            "funding-rate": okx_wire.funding_rate,
        }[channel]
        return [
            okx_wire.push(
                okx_wire.arg_of((channel, sym)), [make(self.market.quote(sym), c, now_ms)]
            )
            for sym, c in self.contracts.items()
        ]

    def _frames(self, now_ms: int, prints: list[LiquidationPrint], quotes_due: bool) -> list[str]:
        out: list[str] = []
        if quotes_due:
            out.extend(self._channel("mark-price", now_ms))
            for channel, every_s in (("open-interest", OKX_OI_S), ("funding-rate", OKX_FUNDING_S)):
                if now_ms >= self._next_ms[channel]:
                    self._next_ms[channel] = now_ms + int(every_s * 1000)
                    out.extend(self._channel(channel, now_ms))
        sampled = [p for p in prints if self._sampler.random() < OKX_LIQUIDATION_SAMPLE]
        if sampled:
            arg = okx_wire.arg_of((okx_wire.LIQUIDATIONS, okx_wire.INST_TYPE))
            out.append(okx_wire.push(arg, okx_wire.liquidation_data(sampled, self.contracts)))
        return out
