"""A local OKX v5 server on loopback: the real public websocket and REST protocol, fake market.

Websocket (``ws_base_url`` = ``ws://<host>:<port>/ws/v5/public``; other paths: 404):

* ``subscribe``/``unsubscribe`` with many args, one ack per arg, OKX's error frames (see
  :mod:`.wire`); at most 480 requests per connection per hour (then 60014); a request
  over 64 KB closes the connection (1009);
* the text ``ping`` is answered with the text ``pong``; a connection with nothing
  subscribed for ``idle_timeout_s``, or pushed nothing for ``idle_timeout_s`` (pongs count),
  is closed with 4004 "No data received in 30s", as the venue does;
* ``mark-price`` every ``push_interval_s`` (the venue: 200 ms while it moves),
  ``open-interest`` every ``oi_interval_s`` (3 s), ``funding-rate`` every
  ``funding_interval_s`` (30-90 s), each per subscribed instId and once at subscription;
* ``liquidation-orders`` (instType ``SWAP``): every ``flush_interval_s`` the liquidations
  since the last push, in one batch (``data[]`` per instrument, ``details[]`` shuffled:
  "not necessarily in chronological order"). OKX publishes a sample: each print is kept
  with probability ``liquidation_sample`` (seeded). On each subscription the last
  ``burst_size`` liquidations pushed are sent again at once, newest first, as OKX does;
* ``tickers`` (per instId): the whole ticker at subscription, then every
  ``ticker_interval_s`` (the venue: at most every 100 ms) when it changed; its best bid and
  ask are the ``books`` best level (:mod:`.liquidity_wire`), so the spread widens and the
  sizes thin as a phase unwinds;
* ``trades`` (per instId): every second, the second's liquidation fills (every one of the
  market's, not only the sampled ones: they all traded) and the market's calm tape, whole
  contracts, ``side`` the taker's; nothing is replayed on subscription;
* ``books`` (per instId): a ``snapshot`` at subscription, then every ``book_interval_s``
  (the venue: 100 ms) an ``update`` of the levels that changed, chained by ``prevSeqId``,
  with the checksum of the best 25 levels a side (:mod:`.book_wire`; ``book_checksums``
  False sends ``0``, as OKX has since 2026-06-23). :meth:`book_gap` skips a ``seqId``: the
  subscribers' next update breaks the chain.

REST: see :mod:`.rest`. Test hooks (from :class:`~service.simulate.server.VenueServer`):
:meth:`drop_connections`, :meth:`stall` (acks and pongs still flow; liquidations wait),
:attr:`clients`; ground truth: :meth:`mark`, :meth:`oi_base`, :attr:`prints` (every
liquidation of the market), :attr:`pushed` (each liquidation sent live, once),
:attr:`replayed` (those sent again in subscription bursts), :meth:`detail` (a print's
``details[]`` row as sent).
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar, Final, Unpack

from websockets.asyncio.server import ServerConnection, broadcast

from ....simulate.asgi_server import AsgiServer
from ....simulate.clock import wall_ms
from ....simulate.market import LiquidationPrint, Quote, SymbolSpec
from ....simulate.scenario import DEFAULT_SCENARIO, Scenario
from ....simulate.server import MarketOptions, SessionClient, VenueServer, text_of
from ....simulate.wirekit import DayRange
from . import book_wire, liquidity_wire, wire
from .rest import OkxRest

WS_PATH: Final = "/ws/v5/public"
IDLE_CLOSE: Final = (4004, "No data received in 30s")
TRADE_INTERVAL_S: Final = 1.0
"""``trades`` pushes: the venue's are real time; one batch a second keeps the simulated market
cheap at thousands of swaps (as the Bybit simulator's ``publicTrade``)."""

OKX_SPECS: Final[tuple[SymbolSpec, ...]] = (
    SymbolSpec("BTC-USDT-SWAP", "BTC", 60_000.0, 25_000.0, 0.01),
    SymbolSpec("ETH-USDT-SWAP", "ETH", 3_000.0, 450_000.0, 0.1),
    SymbolSpec("BTC-USD-SWAP", "BTC", 60_000.0, 9_000.0, 0.001),
    SymbolSpec("ETH-USD-SWAP", "ETH", 3_000.0, 150_000.0, 0.01),
)
"""Two linear (qty step = ``ctVal``: whole contracts) and two inverse swaps of the listing."""
OKX_SYMBOLS: Final = tuple(s.symbol for s in OKX_SPECS)

RowMaker = Callable[[Quote, wire.Contract, int], dict[str, Any]]
ROWS: Final[dict[str, RowMaker]] = {
    "mark-price": wire.mark_price,
    "open-interest": wire.open_interest,
    "funding-rate": wire.funding_rate,
}


@dataclass(slots=True, eq=False)
class _Client(SessionClient[wire.Session]):
    idle_since: float
    """When the connection last had nothing subscribed, or was last sent something."""
    books: set[str] = field(default_factory=set)
    """The instIds whose ``books`` snapshot this connection was sent (updates follow)."""


class OkxSimulator(VenueServer[_Client]):
    """OKX v5 swaps on loopback. ``async with OkxSimulator() as sim: ...``."""

    RESENDS_ON_SUBSCRIBE = True
    SPECS = OKX_SPECS
    TEMPLATE = "ETH-USDT-SWAP"
    FAST: ClassVar[Mapping[str, Any]] = {
        "push_interval_s": 0.1,
        "oi_interval_s": 0.3,
        "funding_interval_s": 0.5,
        "book_interval_s": 0.1,
        "ticker_interval_s": 0.1,
    }

    def __init__(
        self,
        scenario: Scenario | str = DEFAULT_SCENARIO,
        *,
        push_interval_s: float = 0.2,
        oi_interval_s: float = 3.0,
        funding_interval_s: float = 30.0,
        flush_interval_s: float = 0.1,
        idle_timeout_s: float = 30.0,
        liquidation_sample: float = 0.5,
        burst_size: int = 20,
        max_ops_per_hour: int = wire.MAX_OPS_PER_HOUR,
        four_hour_symbols: tuple[str, ...] = wire.FOUR_HOUR_SYMBOLS,
        list_only_simulated: bool = False,
        book_interval_s: float = 0.1,
        book_checksums: bool = True,
        ticker_interval_s: float = 0.1,
        **market: Unpack[MarketOptions],
    ) -> None:
        """``market``: the market's keywords (:class:`~service.simulate.server.MarketOptions`).
        ``list_only_simulated``: the instruments listing holds only the simulated swaps (the
        recorded one lists 166)."""
        super().__init__(scenario, specs=OKX_SPECS, ws_path=WS_PATH, **market)
        listing_text = wire.load_instruments()
        listing = json.loads(listing_text)
        if self.synthetic:
            listing["data"] = self._grow(listing["data"], "instId")
            listing_text = wire.encode(listing)
        self.contracts = wire.contracts(listing, self.market.symbols, four_hour_symbols)
        if not self.contracts:
            raise ValueError(f"none of {self.market.symbols} is an OKX swap of the listing")
        if list_only_simulated:
            listing["data"] = [r for r in listing["data"] if r["instId"] in self.contracts]
            listing_text = wire.encode(listing)
        self._listed = frozenset(r["instId"] for r in listing["data"])
        self.rest = OkxRest(listing_text, market=self.market, contracts=self.contracts)
        self.push_interval_s, self.oi_interval_s = push_interval_s, oi_interval_s
        self.funding_interval_s, self.flush_interval_s = funding_interval_s, flush_interval_s
        self.idle_timeout_s, self.max_ops_per_hour = idle_timeout_s, max_ops_per_hour
        self.liquidation_sample = liquidation_sample
        self.book_interval_s, self.book_checksums = book_interval_s, book_checksums
        self.ticker_interval_s = ticker_interval_s
        self._days = {s: DayRange() for s in self.contracts}
        self._tickers_sent: dict[str, dict[str, Any]] = {}
        """Each swap's ticker row as last pushed (a ticker that did not change is not)."""
        self._fills: defaultdict[str, list[LiquidationPrint]] = defaultdict(list)
        """Liquidations not yet printed on ``trades``."""
        self._trade_id = 0
        self.depth_books: dict[str, book_wire.DepthBook] = {}
        """The ``books`` subscribed at least once, by instId."""
        self.pushed: list[LiquidationPrint] = []
        """Every liquidation sent live (once each, subscribers or not)."""
        self.replayed: list[LiquidationPrint] = []
        self.resent = self.replayed
        """Liquidations sent again in the bursts that follow a subscription."""
        self.bursts = 0
        self._sampler = random.Random(f"okx-sample-{self.seed}")
        self._shuffler = random.Random(f"okx-order-{self.seed}")
        self._pending: list[LiquidationPrint] = []
        self._recent: deque[LiquidationPrint] = deque(maxlen=burst_size)
        self.clock.add_listener(self._sample)
        self._http = AsgiServer(self.rest.app)

    def _ws_options(self) -> dict[str, Any]:
        return {
            "max_size": 2 * wire.MAX_REQUEST_BYTES,
            "ping_interval": None,  # OKX keeps alive with text pings from the client
        }

    def _loops(self) -> list[Coroutine[Any, Any, None]]:
        return [
            self._on_grid(self.push_interval_s, partial(self._push, "mark-price")),
            self._on_grid(self.oi_interval_s, partial(self._push, "open-interest")),
            self._on_grid(self.funding_interval_s, partial(self._push, "funding-rate")),
            self._every(self.flush_interval_s, self._flush_liquidations),
            self._on_grid(self.book_interval_s, self._push_books),
            self._on_grid(self.ticker_interval_s, self._push_tickers),
            self._on_grid(TRADE_INTERVAL_S, self._push_trades),
            self._close_idle(),
        ]

    def detail(self, p: LiquidationPrint) -> dict[str, str]:
        """The ``details[]`` row that carries ``p`` (the same in every push and burst)."""
        return wire.liquidation_detail(p, self.contracts[p.symbol])

    def wire_ids(self, p: LiquidationPrint) -> list[tuple[str, str]]:
        """No id on the wire: the detail's time, order side, position side, size and
        bankruptcy price, as sent (the same in every push and burst)."""
        d = self.detail(p)
        return [(p.symbol, f"{d['ts']}:{d['side']}:{d['posSide']}:{d['sz']}:{d['bkPx']}")]

    # -- websocket -------------------------------------------------------------------------

    async def _handle(self, conn: ServerConnection) -> None:
        session = wire.Session(secrets.token_hex(4), self._listed, self.max_ops_per_hour)
        with self._tracked(_Client(conn, session, time.monotonic())) as client:
            async for message in conn:
                text = text_of(message)
                if text == "ping":
                    await self._reply(client, ["pong"])
                    continue
                if len(text) > wire.MAX_REQUEST_BYTES:
                    await conn.close(1009, "Request message exceeds the maximum frame length")
                    break
                had = bool(session.args)
                replies, added = session.handle(text, time.monotonic())
                await self._reply(client, replies)
                if had and not session.args:  # unsubscribed from everything: 30 s from now
                    client.idle_since = time.monotonic()
                if not self.stalled:
                    self._snapshot(client, added)

    async def _reply(self, client: _Client, frames: list[str]) -> None:
        for f in frames:
            await client.conn.send(f)
        if client.session.args:
            client.idle_since = time.monotonic()

    def _send(self, client: _Client, frame: str) -> None:
        broadcast([client.conn], frame)
        client.idle_since = time.monotonic()

    def _snapshot(self, client: _Client, added: list[wire.Arg]) -> None:
        """What the venue pushes at once on a new subscription: the channel's current value,
        or for liquidations the burst of recent ones."""
        now = wall_ms()
        for a in added:
            channel, key = a
            if channel == book_wire.CHANNEL:
                self._send_book_snapshot(client, key, now)
            elif channel == wire.LIQUIDATIONS:
                if key == wire.INST_TYPE and self._recent:
                    burst = list(reversed(self._recent))
                    data = wire.liquidation_data(burst, self.contracts)
                    self._send(client, wire.push(wire.arg_of(a), data))
                    self.replayed.extend(burst)
                    self.bursts += 1
            elif channel == liquidity_wire.TICKERS and key in self.contracts:
                self._send(client, wire.push(wire.arg_of(a), [self._ticker(key, now)]))
            elif channel == liquidity_wire.TRADES:
                continue  # nothing is replayed: the next print comes when it trades
            elif key in self.contracts:
                c = self.contracts[key]
                row = ROWS[channel](self.market.quote(key), c, now)
                self._send(client, wire.push(wire.arg_of(a), [row]))

    def _send_book_snapshot(self, client: _Client, inst_id: str, ts: int) -> None:
        """The book's state now (its subscribers get the update to it first, so none of them
        sees a break in the chain)."""
        contract = self.contracts.get(inst_id)
        if contract is None:
            return  # listed but not simulated
        client.books.discard(inst_id)  # a resubscription: no update before its snapshot
        book = self.depth_books.get(inst_id)
        if book is None:
            book = self.depth_books[inst_id] = book_wire.DepthBook(contract, self.book_checksums)
            book.update(self.market.quote(inst_id))
        else:
            self._advance_book(book, ts)
        self._send(client, book.snapshot(ts))
        client.books.add(inst_id)

    def _advance_book(self, book: book_wire.DepthBook, ts: int) -> None:
        inst_id = book.contract.inst_id
        a = (book_wire.CHANNEL, inst_id)
        to = [c for c in self._subscribers(a) if inst_id in c.books]
        delta = book.update(self.market.quote(inst_id))
        if delta is not None and to:
            frame = book.frame("update", ts, *delta)
            for client in to:
                self._send(client, frame)

    def _push_books(self, ts: int) -> None:
        """The subscribed books' updates (a book nobody follows is not moved)."""
        for inst_id, book in self.depth_books.items():
            if self._subscribers((book_wire.CHANNEL, inst_id)):
                self._advance_book(book, ts)

    def book_gap(self, inst_id: str) -> None:
        """Skip a ``seqId`` of ``inst_id``'s book: its subscribers' next update names a
        ``prevSeqId`` they never got."""
        self.depth_books[inst_id].seq += 1

    def _subscribers(self, a: wire.Arg) -> list[_Client]:
        return [c for c in self._clients if a in c.session.args]

    def _push(self, channel: str, ts: int) -> None:
        """Push ``channel`` to its subscribers (``ts``: the time on its grid)."""
        make = ROWS[channel]
        for sym, c in self.contracts.items():
            a = (channel, sym)
            if subscribers := self._subscribers(a):
                frame = wire.push(wire.arg_of(a), [make(self.market.quote(sym), c, ts)])
                for client in subscribers:
                    self._send(client, frame)

    def _ticker(self, inst_id: str, ts: int) -> dict[str, Any]:
        return liquidity_wire.ticker_row(
            self.market.quote(inst_id), self.contracts[inst_id], ts, self._days[inst_id]
        )

    def _push_tickers(self, ts: int) -> None:
        """Each subscribed swap's ticker, when it changed since it was last pushed (the venue
        pushes "on a trade or a change of the best bid or ask")."""
        for sym in self.contracts:
            a = (liquidity_wire.TICKERS, sym)
            if not (subscribers := self._subscribers(a)):
                continue
            row = self._ticker(sym, ts)
            last = self._tickers_sent.get(sym)
            if last is not None and {**last, "ts": row["ts"]} == row:
                continue
            self._tickers_sent[sym] = row
            frame = wire.push(wire.arg_of(a), [row])
            for client in subscribers:
                self._send(client, frame)

    def _push_trades(self, ts: int) -> None:
        """The last second's prints of each swap, to its ``trades`` subscribers (prints of a
        swap nobody follows are not sent)."""
        fills, self._fills = self._fills, defaultdict(list)
        for sym, c in self.contracts.items():
            a = (liquidity_wire.TRADES, sym)
            if not (subscribers := self._subscribers(a)):
                continue
            mine = sorted(fills.get(sym, ()), key=lambda p: p.ts_ms)
            rows = liquidity_wire.trade_rows(
                self.market.quote(sym), c, ts, mine, self._trade_id + 1
            )
            self._trade_id += len(rows)
            if rows:
                frame = wire.push(wire.arg_of(a), rows)
                for client in subscribers:
                    self._send(client, frame)

    def _sample(self, prints: list[LiquidationPrint]) -> None:
        """OKX's feed is a sample: keep each of our swaps' prints with a fixed probability.
        Every one of them trades on ``trades``."""
        for p in prints:
            if p.symbol not in self.contracts:
                continue
            self._fills[p.symbol].append(p)
            if self._sampler.random() < self.liquidation_sample:
                self._pending.append(p)

    def _flush_liquidations(self) -> None:
        if not self._pending:
            return
        a = (wire.LIQUIDATIONS, wire.INST_TYPE)
        batch, self._pending = self._pending, []
        self._shuffler.shuffle(batch)  # "not necessarily in chronological order"
        self.pushed.extend(batch)
        self._recent.extend(batch)
        frame = wire.push(wire.arg_of(a), wire.liquidation_data(batch, self.contracts))
        for client in self._subscribers(a):
            self._send(client, frame)

    async def _close_idle(self) -> None:
        """Close (4004) what the venue would: nothing subscribed, or nothing pushed, for
        ``idle_timeout_s``."""
        tick = min(1.0, self.idle_timeout_s / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            idle = [c for c in self._clients if now - c.idle_since > self.idle_timeout_s]
            await asyncio.gather(*(c.conn.close(*IDLE_CLOSE) for c in idle))
