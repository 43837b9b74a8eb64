"""A local BitMEX server on loopback: the real realtime websocket and REST protocol, fake market.

Websocket (``ws_base_url`` = ``ws://<host>:<port>/realtime``; other paths: 404): the welcome
on connect; ``subscribe``/``unsubscribe`` to ``instrument[:SYMBOL]`` and
``liquidation[:SYMBOL]`` acked per topic, refusals as BitMEX error frames (see
:mod:`.wire`); the text ``ping`` answered with ``pong``.

* ``instrument``: a ``partial`` with the whole row (the listing's static fields, the market's
  live ones) right after the ack, then every ``push_interval_s`` an ``update`` with what
  changed: prices and funding with a ``timestamp``, open interest on its own without one (as
  the venue sends it). A listed symbol that is not simulated gets its recorded row, and no
  updates.
* ``quote``: a ``partial`` with the symbol's last quote, then an ``insert`` whenever the top of
  its book moved (checked every ``book_interval_s``, 100 ms).
* ``orderBookL2``: a ``partial`` with every level, then ``insert``/``update``/``delete`` rows
  of the levels that changed, every ``book_interval_s`` (:mod:`.book_wire`: shaped from the
  market's quote, so it thins and widens as a phase unwinds). :meth:`book_gap` renames the
  book's levels silently (a test's gap: the next rows name unknown ids).
* ``trade``: a ``partial`` with the symbol's last print, then every second an ``insert`` of
  that second's liquidation fills and calm tape (:func:`.book_wire.trade_rows`).
* ``liquidation``: each liquidation of the market becomes an engine order (``insert``: the
  whole position in contracts at the bankruptcy price, ``side`` the order side); after
  ``fill_after_s`` an ``update`` lowers ``leavesQty`` (part filled), after ``order_life_s`` a
  ``delete`` removes it. The rows of one ``flush_interval_s`` go in one frame per symbol. The
  ``partial`` on subscription lists the orders open then, with what is left of them: a
  reconnect sees again the orders it saw, and those placed meanwhile.

REST: see :mod:`.rest`. Test hooks (from :class:`~service.simulate.server.VenueServer`):
:meth:`drop_connections`, :meth:`stall` (acks and pongs still flow; orders wait),
:attr:`clients`; ground truth: :meth:`mark`, :meth:`oi_base`, :attr:`prints` (every
liquidation of the market), :attr:`placed` (every order inserted, subscribers or not),
:attr:`replayed` (orders sent again in partials), :meth:`order` (a print's order),
:attr:`open_orders`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, Final, Unpack

from websockets.asyncio.server import ServerConnection, broadcast

from ....simulate.asgi_server import AsgiServer
from ....simulate.clock import wall_ms
from ....simulate.market import LiquidationPrint
from ....simulate.scenario import DEFAULT_SCENARIO, Scenario
from ....simulate.server import MarketOptions, SessionClient, VenueServer, text_of
from . import book_wire, wire
from .rest import BitmexRest

WS_PATH: Final = "/realtime"
FILLED_SHARE: Final = 0.5
"""The share of an order filled by its ``update``."""
TRADE_INTERVAL_S: Final = 1.0
"""``trade`` pushes: the venue's are real time; one batch a second keeps the simulated market
cheap."""
BOOK_TABLES: Final = ("quote", "orderBookL2")


_Client = SessionClient[wire.Session]


class BitmexSimulator(VenueServer[_Client]):
    """BitMEX perpetuals on loopback. ``async with BitmexSimulator() as sim: ...``."""

    RESENDS_ON_SUBSCRIBE = True

    def __init__(
        self,
        scenario: Scenario | str = DEFAULT_SCENARIO,
        *,
        push_interval_s: float = 0.5,
        book_interval_s: float = 0.1,
        flush_interval_s: float = 0.1,
        fill_after_s: float = 0.5,
        order_life_s: float = 2.0,
        list_only_simulated: bool = False,
        **market: Unpack[MarketOptions],
    ) -> None:
        """``market``: the market's keywords (:class:`~service.simulate.server.MarketOptions`).
        ``list_only_simulated``: the instrument listing holds only the simulated perpetuals (the
        recorded one lists 35)."""
        super().__init__(scenario, specs=wire.BITMEX_SPECS, ws_path=WS_PATH, **market)
        listing = wire.load_listing()
        self.contracts = wire.contracts(listing, self.market.symbols)
        if not self.contracts:
            raise ValueError(f"none of {self.market.symbols} is a BitMEX perpetual")
        if list_only_simulated:
            listing = [r for r in listing if r["symbol"] in self.contracts]
        self._rows = {r["symbol"]: r for r in listing}
        self._reference_mark = float(self._rows.get(wire.XBT_REFERENCE, {}).get("markPrice", 6e4))
        self.rest = BitmexRest(listing)
        self.push_interval_s, self.flush_interval_s = push_interval_s, flush_interval_s
        self.book_interval_s = book_interval_s
        self.fill_after_s, self.order_life_s = fill_after_s, order_life_s
        self.books = {s: wire.InstrumentBook(c) for s, c in self.contracts.items()}
        self.placed: list[LiquidationPrint] = []
        """Every liquidation inserted as an order (whether anyone was subscribed or not)."""
        self.pushed = self.placed
        """The same list: an order placed while nobody is subscribed is delivered in the next
        subscription's partial while it rests."""
        self.replayed: list[wire.Order] = []
        self.resent: list[LiquidationPrint] = []
        """Orders sent again in the partials of later subscriptions (copies, as sent)."""
        self.orders: dict[LiquidationPrint, wire.Order] = {}
        self._open: dict[str, wire.Order] = {}
        self._pending: list[LiquidationPrint] = []
        self.l2 = {s: book_wire.L2Book(c) for s, c in self.contracts.items()}
        """Each symbol's order book and top (moved only while someone follows either)."""
        self._fills: list[LiquidationPrint] = []
        """Liquidations not yet printed on ``trade``."""
        self._trade_id = 0
        self.last_trade: dict[str, dict[str, Any]] = {}
        """Each symbol's last print: a ``trade`` partial's row."""
        self.clock.add_listener(self._offer)
        self._http = AsgiServer(self.rest.app)

    def _loops(self) -> list[Coroutine[Any, Any, None]]:
        self._tick(wall_ms())  # every book has a state before the first subscriber
        return [
            self._on_grid(self.push_interval_s, self._push_instruments),
            self._every(self.flush_interval_s, self._flush_liquidations),
            self._on_grid(self.book_interval_s, self._push_books),
            self._on_grid(TRADE_INTERVAL_S, self._push_trades),
        ]

    @property
    def open_orders(self) -> list[wire.Order]:
        """The liquidation orders resting in the book now."""
        return list(self._open.values())

    def order(self, p: LiquidationPrint) -> wire.Order:
        """The order that carried ``p``."""
        return self.orders[p]

    def wire_ids(self, p: LiquidationPrint) -> list[tuple[str, str]]:
        """The order's ``orderID``."""
        return [(p.symbol, self.order(p).order_id)]

    def xbt_usd(self) -> float:
        """The XBT price quanto contracts are paid at: XBTUSD's mark when simulated."""
        if wire.XBT_REFERENCE in self.books:
            return self.market.mark(wire.XBT_REFERENCE)
        return self._reference_mark

    # -- websocket -------------------------------------------------------------------------

    async def _handle(self, conn: ServerConnection) -> None:
        session = wire.Session(frozenset(self._rows))
        with self._tracked(_Client(conn, session)):
            await conn.send(wire.welcome(wall_ms()))
            async for message in conn:
                text = text_of(message)
                if text == "ping":
                    await conn.send("pong")
                    continue
                replies, added = session.handle(text)
                for reply in replies:
                    await conn.send(reply)
                for topic in added:  # the partial follows its ack (even while stalled)
                    broadcast([conn], self._partial(topic))
                    session.sent.add(topic)  # (no await between: no change overtakes it)

    def _partial(self, topic: wire.Topic) -> str:
        name, symbol = topic
        symbols = [symbol] if symbol is not None else list(self.contracts)
        if name in BOOK_TABLES:
            ts = wall_ms()
            for s in symbols:
                if s in self.l2:
                    self._advance(s, ts)  # its followers get the change first
            books = [self.l2[s] for s in symbols if s in self.l2]
            if name == "quote":
                return wire.partial(name, symbol, [b.quote for b in books if b.quote])
            return wire.partial(name, symbol, [r for b in books for r in b.rows(ts)])
        if name == "trade":
            rows = [self.last_trade[s] for s in symbols if s in self.last_trade]
            return wire.partial(name, symbol, rows)
        if name == "instrument":
            symbols = [symbol] if symbol is not None else list(self.books)
            rows = [self.books[s].row() if s in self.books else self._rows[s] for s in symbols]
            return wire.partial(name, symbol, rows)
        orders = [o for o in self._open.values() if symbol in (None, o.print.symbol)]
        self.replayed.extend(replace(o) for o in orders)  # as they were sent
        self.resent.extend(o.print for o in orders)
        return wire.partial(name, symbol, [o.row() for o in orders])

    def _send(self, name: str, symbol: str, frame: str) -> None:
        to = [c.conn for c in self._clients if c.session.wants(name, symbol)]
        if to:
            broadcast(to, frame)

    # -- pushes ----------------------------------------------------------------------------

    def _tick(self, ts: int) -> dict[str, list[dict[str, Any]]]:
        xbt = self.xbt_usd()
        out: dict[str, list[dict[str, Any]]] = {}
        for symbol, book in self.books.items():
            out[symbol] = book.update(self.market.quote(symbol), xbt, ts)
        return out

    def _push_instruments(self, ts: int) -> None:
        for symbol, diffs in self._tick(ts).items():
            for diff in diffs:
                self._send("instrument", symbol, wire.table("instrument", "update", [diff]))

    def _offer(self, prints: list[LiquidationPrint]) -> None:
        mine = [p for p in prints if p.symbol in self.contracts]
        self._pending.extend(mine)
        self._fills.extend(mine)

    def _push_books(self, ts: int) -> None:
        """The followed books' changed levels and tops (a book nobody follows stays)."""
        followed = {s for c in self._clients for (name, s) in c.session.sent
                    if name in BOOK_TABLES}  # fmt: skip
        for symbol in self.l2:
            if symbol in followed or None in followed:
                self._advance(symbol, ts)

    def _advance(self, symbol: str, ts: int) -> None:
        """Move ``symbol``'s book to the market: its changed levels to the ``orderBookL2``
        followers, its new top to the ``quote`` ones."""
        book = self.l2[symbol]
        before = book.quote
        changed = book.update(self.market.quote(symbol), self.xbt_usd(), ts)
        for action, rows in (changed or {}).items():
            self._send_synced("orderBookL2", symbol, wire.table("orderBookL2", action, rows))
        if book.quote is not before and book.quote is not None:
            self._send_synced("quote", symbol, wire.table("quote", "insert", [book.quote]))

    def _send_synced(self, name: str, symbol: str, frame: str) -> None:
        to = [c.conn for c in self._clients if c.session.synced(name, symbol)]
        if to:
            broadcast(to, frame)

    def book_gap(self, symbol: str) -> None:
        """Rename ``symbol``'s levels silently: its followers' next rows have a gap."""
        self.l2[symbol].forget_ids()

    def _push_trades(self, ts: int) -> None:
        """The last second's prints of each symbol, to its ``trade`` subscribers."""
        fills, self._fills = self._fills, []
        xbt = self.xbt_usd()
        for symbol, contract in self.contracts.items():
            to = [c.conn for c in self._clients if c.session.synced("trade", symbol)]
            if not to:
                continue
            mine = sorted((p for p in fills if p.symbol == symbol), key=lambda p: p.ts_ms)
            quote = self.market.quote(symbol)
            rows = book_wire.trade_rows(quote, contract, xbt, ts, mine, self._trade_id)
            self._trade_id += len(rows)
            if rows:
                self.last_trade[symbol] = rows[-1]
                broadcast(to, wire.table("trade", "insert", rows))

    def _flush_liquidations(self) -> None:
        now = time.monotonic()
        self._insert(now)
        self._work_off(now)

    def _insert(self, now: float) -> None:
        pending, self._pending = self._pending, []
        xbt = self.xbt_usd()
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for p in sorted(pending, key=lambda p: p.ts_ms):
            o = wire.new_order(p, self.contracts[p.symbol], xbt, now)
            self.orders[p] = self._open[o.order_id] = o
            self.placed.append(p)
            rows[p.symbol].append(o.row())
        self._send_rows("insert", rows)

    def _work_off(self, now: float) -> None:
        """Fill part of the orders older than ``fill_after_s``; remove those older than
        ``order_life_s`` (filled, or the rest taken by the insurance fund)."""
        updates: dict[str, list[dict[str, Any]]] = defaultdict(list)
        deletes: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for oid, o in list(self._open.items()):
            age = now - o.placed_s
            if age >= self.order_life_s:
                del self._open[oid]
                deletes[o.print.symbol].append(o.keys())
            elif age >= self.fill_after_s and o.leaves_qty == o.contracts and o.contracts > 1:
                o.leaves_qty = o.contracts - max(1, round(o.contracts * FILLED_SHARE))
                updates[o.print.symbol].append(o.keys() | {"leavesQty": o.leaves_qty})
        self._send_rows("update", updates)
        self._send_rows("delete", deletes)

    def _send_rows(self, action: str, rows: dict[str, list[dict[str, Any]]]) -> None:
        """One frame per symbol, its rows in order (the venue batches a table's changes)."""
        for symbol, data in rows.items():
            self._send("liquidation", symbol, wire.table("liquidation", action, data))
