"""The Deribit wire player for ``deleverage evaluate``. Deribit pushes its tickers and, per
contract, its liquidation trades (a complete tape; a trade flagged ``MT`` liquidated both
sides: two events) followed by one ordinary trade."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import ClassVar, Final

from ...simulate.market import LiquidationPrint, SymbolSpec
from ...simulate.scenario import Scenario
from ..base import Instrument, Parser
from ..player import WirePlayer
from .frames import INTERVAL as DERIBIT_INTERVAL
from .frames import instruments as deribit_instruments
from .simulator import wire as deribit_wire
from .venue import Deribit, DeribitParser

DERIBIT_FUNDING_WINDOW_S: Final = 8 * 3600.0
"""Deribit's ``funding_8h``: the trailing average of the rate over 8 h (kept by the player as
an exponential average, as the loopback server does)."""


class DeribitPlayer(WirePlayer):
    venue: ClassVar[str] = Deribit.id
    parser_class: ClassVar[type[Parser]] = DeribitParser
    specs: ClassVar[tuple[SymbolSpec, ...]] = deribit_wire.DERIBIT_SPECS

    def __init__(
        self, scenario: Scenario, seed: int, assets: Sequence[str], all_contracts: bool = False
    ) -> None:
        self._listing = deribit_wire.load_listing()
        super().__init__(scenario, seed, assets, all_contracts)
        self.contracts = deribit_wire.contracts(self._listing, self.market.symbols)
        self._funding_8h = {s: self.market.quote(s).funding_rate_8h for s in self.contracts}
        self._trade_id = 300_000_000
        self._seq = dict.fromkeys(self.contracts, 100_000)
        self._last_ms: int | None = None

    def _instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        out: dict[str, Instrument] = {}
        for body in self._listing.values():
            out.update((i.symbol, i) for i in deribit_instruments(body) if i.symbol in symbols)
        return out

    def _ids(self, name: str) -> tuple[int, int]:
        self._trade_id += 1
        self._seq[name] += 1
        return self._trade_id, self._seq[name]

    def _frames(self, now_ms: int, prints: list[LiquidationPrint], quotes_due: bool) -> list[str]:
        dt_s = 0.0 if self._last_ms is None else (now_ms - self._last_ms) / 1000
        self._last_ms = now_ms
        weight = min(1.0, dt_s / DERIBIT_FUNDING_WINDOW_S)
        out: list[str] = []
        for name, c in self.contracts.items():
            q = self.market.quote(name)
            self._funding_8h[name] += (q.funding_rate_8h - self._funding_8h[name]) * weight
            if quotes_due:
                data = deribit_wire.ticker_data(q, c, now_ms, self._funding_8h[name])
                channel = f"ticker.{name}.{DERIBIT_INTERVAL}"
                out.append(deribit_wire.notification(channel, data))
        per_contract: defaultdict[str, list[LiquidationPrint]] = defaultdict(list)
        for p in sorted(prints, key=lambda p: p.ts_ms):
            per_contract[p.symbol].append(p)
        for name, ps in per_contract.items():
            c, q = self.contracts[name], self.market.quote(name)
            rows = [deribit_wire.trade_row(p, c, *self._ids(name), q.index) for p in ps]
            rows.append(deribit_wire.plain_trade_row(q, c, now_ms, *self._ids(name)))
            out.append(deribit_wire.notification(f"trades.{name}.{DERIBIT_INTERVAL}", rows))
        return out
