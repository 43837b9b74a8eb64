"""Wire players of the venues added after the first four: Gate, Bitget, Deribit, BitMEX and
Hyperliquid (:data:`.wire.PLAYERS` lists them; their base is :class:`.player.WirePlayer`).

Venue rules that shape the data are kept, as the loopback servers apply them:

* Gate batches a contract's liquidations over a second (20 a frame), in decimal sizes as the
  collector asks with ``X-Gate-Size-Decimal: 1``.
* Bitget sends a snapshot then updates of each ticker, and samples its liquidation feed
  (per second and symbol, the largest long and the largest short).
* Deribit pushes its tickers and, per contract, its liquidation trades (a complete tape; a
  trade flagged ``MT`` liquidated both sides: two events) followed by one ordinary trade.
* BitMEX liquidations are the engine's orders (``insert`` when placed, an ``update`` when
  half of it fills, ``delete`` after :data:`BITMEX_ORDER_LIFE_S`); its tables start with a
  ``partial``, XBTUSD's instrument first (its mark values the quanto contracts).
* Hyperliquid has no liquidation feed: the collector watches the liquidator vaults' fills,
  which show only the backstop liquidations (:data:`HL_BACKSTOP_SHARE` of the prints, drawn
  by a seeded sampler); a new subscription re-sends the vaults' recent fills.
"""

from __future__ import annotations

import random
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Final

from ..simulate import bitget_wire, bitmex_wire, deribit_wire, gateio_wire, hyperliquid_wire
from ..simulate.market import LiquidationPrint, SymbolSpec
from ..simulate.scenario import Scenario
from ..venues import bitget, bitmex, deribit, gateio, hyperliquid
from ..venues._bitget_instruments import parse_contracts as bitget_contracts
from ..venues._bitmex_instruments import instrument as bitmex_instrument
from ..venues._deribit_frames import INTERVAL as DERIBIT_INTERVAL
from ..venues._deribit_frames import instruments as deribit_instruments
from ..venues._gateio_instruments import parse_contracts as gate_contracts
from ..venues._hyperliquid_instruments import parse_meta
from ..venues.base import Instrument, Parser
from .player import WirePlayer

DERIBIT_FUNDING_WINDOW_S: Final = 8 * 3600.0
"""Deribit's ``funding_8h``: the trailing average of the rate over 8 h (kept by the player as
an exponential average, as the loopback server does)."""

BITMEX_FILL_AFTER_S: Final = 0.5
BITMEX_ORDER_LIFE_S: Final = 2.0
BITMEX_FILLED_SHARE: Final = 0.5
"""A liquidation order rests this long before half of it fills, and is gone after its life
(the loopback server's defaults)."""
HL_BACKSTOP_SHARE: Final = 0.3
HL_SNAPSHOT_SIZE: Final = 50
"""The share of prints a liquidator vault takes over, and how many recent fills a new
``userFills`` subscription gets (the loopback server's defaults)."""


def by_second(prints: Iterable[LiquidationPrint]) -> list[list[LiquidationPrint]]:
    """Prints grouped by the second they fall in, in time order (a step may span several
    seconds, a venue batches or samples per second)."""
    out: defaultdict[int, list[LiquidationPrint]] = defaultdict(list)
    for p in prints:
        out[p.ts_ms // 1000].append(p)
    return [out[s] for s in sorted(out)]


class GatePlayer(WirePlayer):
    venue: ClassVar[str] = gateio.Gate.id
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

    def _new_parser(self) -> Parser:
        return gateio.GateParser(self.venue, self.instruments, None)

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


class BitgetPlayer(WirePlayer):
    venue: ClassVar[str] = bitget.Bitget.id
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

    def _new_parser(self) -> Parser:
        return bitget.BitgetParser(self.venue, self.instruments, None)

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


class DeribitPlayer(WirePlayer):
    venue: ClassVar[str] = deribit.Deribit.id
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

    def _new_parser(self) -> Parser:
        return deribit.DeribitParser(self.venue, self.instruments, None)

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


class BitmexPlayer(WirePlayer):
    venue: ClassVar[str] = bitmex.Bitmex.id
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

    def _new_parser(self) -> Parser:
        return bitmex.BitmexParser(self.venue, self.instruments, None)

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


class HyperliquidPlayer(WirePlayer):
    venue: ClassVar[str] = hyperliquid.Hyperliquid.id
    specs: ClassVar[tuple[SymbolSpec, ...]] = hyperliquid_wire.HL_SPECS

    def __init__(
        self, scenario: Scenario, seed: int, assets: Sequence[str], all_contracts: bool = False
    ) -> None:
        self._listed = {a.name: a for a in hyperliquid_wire.LISTING if not a.delisted}
        super().__init__(scenario, seed, assets, all_contracts)
        self.vaults = {
            a: hyperliquid_wire.Vault(a, 10**12 + i * 10**9, 10**11 + i * 10**9)
            for i, a in enumerate(hyperliquid_wire.LIQUIDATORS)
        }
        self._recent = {a: deque[dict[str, Any]](maxlen=HL_SNAPSHOT_SIZE) for a in self.vaults}
        self._chooser = random.Random(f"hyperliquid-backstop-{seed}")
        self._snapshot_due = True

    def _instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        listed = parse_meta(hyperliquid_wire.meta(hyperliquid_wire.LISTING))
        return {i.symbol: i for i in listed if i.symbol in symbols}

    def _new_parser(self) -> Parser:
        return hyperliquid.HyperliquidParser(self.venue, self.instruments, None)

    def _reconnected(self, now_ms: int) -> None:
        self._snapshot_due = True

    def _frames(self, now_ms: int, prints: list[LiquidationPrint], quotes_due: bool) -> list[str]:
        out: list[str] = []
        if quotes_due or self._snapshot_due:
            for coin in self.market.symbols:
                q, a = self.market.quote(coin), self._listed[coin]
                body = hyperliquid_wire.ctx(q, a.sz_decimals, self.market.spec(coin).price)
                out.append(hyperliquid_wire.ctx_push(coin, body))
        if self._snapshot_due:
            self._snapshot_due = False
            for address, recent in self._recent.items():
                fills = list(reversed(recent))
                out.append(hyperliquid_wire.fills_push(address, fills, snapshot=True))
        addresses = sorted(self.vaults)
        pending: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        for p in prints:
            if self._chooser.random() >= HL_BACKSTOP_SHARE:
                continue  # a market liquidation through the book: nobody watches its fills
            vault = self.vaults[self._chooser.choice(addresses)]
            mark = self.market.mark(p.symbol)
            sz_decimals = self._listed[p.symbol].sz_decimals
            pending[vault.address] += hyperliquid_wire.backstop(vault, p, mark, sz_decimals)
        for address, fills in pending.items():
            self._recent[address].extend(fills)
            out.append(hyperliquid_wire.fills_push(address, fills))
        return out
