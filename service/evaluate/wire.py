"""The venues' wire without sockets: the simulators' pure encoders feed the real parsers.

A :class:`WirePlayer` owns one venue's seeded :class:`~service.simulate.market.Market` (in the
venue's own symbols) and, at each step of simulated time, encodes what the venue would send
with the functions of ``service/simulate/*_wire.py`` (the same ones the loopback servers
use), parses those frames with the venue's real parser, and drops duplicates with the
collector's :class:`~service.collect.dedup.Deduplicator`. Venue rules that shape the data
are kept: Binance's one liquidation per symbol per second and open interest polled over
REST, Bybit's snapshot-then-delta tickers, OKX's sampled liquidation feed.

During an outage frames are made and thrown away; when the venue comes back the player acts
as a reconnecting collector: a new parser, and Bybit's snapshot of every ticker.

A venue joins the evaluation with one subclass of :class:`~.player.WirePlayer` (here, or
in :mod:`.wire_newer` for Gate, Bitget, Deribit, BitMEX and Hyperliquid, whose venue rules
it describes) and one line in :data:`PLAYERS`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import ClassVar, Final

from ..events import Event
from ..simulate import binance_usdm_wire as bwire
from ..simulate import bybit_wire, okx_wire
from ..simulate.binance_coinm import COINM_SPECS
from ..simulate.binance_coinm_wire import COINM
from ..simulate.market import DEFAULT_SPECS, LiquidationPrint, SymbolSpec
from ..simulate.okx import OKX_SPECS
from ..simulate.scenario import Scenario
from ..venues import binance_coinm, binance_usdm, bybit, okx
from ..venues._okx_instruments import instrument as okx_instrument
from ..venues.base import Instrument, Parser
from .player import WirePlayer as WirePlayer  # re-exported
from .wire_newer import BitgetPlayer, BitmexPlayer, DeribitPlayer, GatePlayer, HyperliquidPlayer

OI_POLL_S: Final = 10.0
"""Binance open interest is REST-only: each symbol is polled this often (a configured subset
of symbols; with every symbol the collector's weight budget stretches it to about a minute)."""
OKX_OI_S: Final = 3.0
OKX_FUNDING_S: Final = 30.0
OKX_LIQUIDATION_SAMPLE: Final = 0.5


class BinanceUsdmPlayer(WirePlayer):
    venue: ClassVar[str] = binance_usdm.VENUE
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

    def _new_parser(self) -> Parser:
        return binance_usdm.BinanceUsdmParser(self.venue, self.instruments, None)

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
        return binance_usdm.parse_open_interest(body, inst, mark, now_ms)


class BinanceCoinmPlayer(BinanceUsdmPlayer):
    venue: ClassVar[str] = binance_coinm.VENUE
    specs: ClassVar[tuple[SymbolSpec, ...]] = COINM_SPECS
    product: ClassVar[bwire.Product] = COINM
    four_hour: ClassVar[tuple[str, ...]] = ()

    def _new_parser(self) -> Parser:
        return binance_coinm.BinanceCoinmParser(self.venue, self.instruments, None)

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
        return binance_coinm.parse_open_interest(body, inst, mark, now_ms)


class BybitPlayer(WirePlayer):
    venue: ClassVar[str] = bybit.VENUE
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
            listed, _ = bybit.parse_instruments(body)
            out.update((i.symbol, i) for i in listed if i.symbol in symbols)
        return out

    def _new_parser(self) -> Parser:
        return bybit.BybitParser(self.venue, self.instruments, None)

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


class OkxPlayer(WirePlayer):
    venue: ClassVar[str] = okx.VENUE
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

    def _new_parser(self) -> Parser:
        return okx.OkxParser(self.venue, self.instruments, None)

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


PLAYERS: Final[dict[str, type[WirePlayer]]] = {
    p.venue: p
    for p in (
        BinanceUsdmPlayer,
        BinanceCoinmPlayer,
        BybitPlayer,
        OkxPlayer,
        GatePlayer,
        BitgetPlayer,
        DeribitPlayer,
        BitmexPlayer,
        HyperliquidPlayer,
    )
}
"""Venue id → player: the venues ``deleverage evaluate --venues`` can play."""
