"""A local Gate futures server on loopback: the real v4 websocket and REST protocol, fake market.

Websocket (``ws_base_url`` = ``ws://<host>:<port>/v4/ws``): ``/v4/ws/usdt`` and
``/v4/ws/btc`` (other paths: 404). Each answers ``subscribe``/``unsubscribe`` of
``futures.tickers``, ``futures.book_ticker``, ``futures.trades``, ``futures.obu`` and
``futures.public_liquidates`` and the ``futures.ping`` request as the venue does (see
:mod:`.wire` and :mod:`.book_wire`):

* ``futures.tickers``: every ``push_interval_s`` one ``update`` per subscribed simulated
  contract (no snapshot at subscription, as the venue);
* ``futures.book_ticker``: every ``push_interval_s`` the best bid and ask of each subscribed
  contract (the venue's: on every change);
* ``futures.trades``: every second, per subscribed contract, the second's liquidation fills
  and the calm tape, signed by the taker;
* ``futures.obu`` (``ob.<contract>.50`` or ``.400``): the whole book to each new subscriber,
  then every ``book_interval_s`` the levels that changed (``U``/``u`` chained);
  :meth:`book_gap` skips an update (the next one shows a gap). The books and the top thin
  and widen with the market's quote, so a deleveraging phase shows in them;
* ``futures.public_liquidates`` (``!all`` or contracts): in the current format
  (``liquidation_format="aggregated"``) every liquidation of a contract over
  ``liquidation_interval_s`` in one array, pushed early at 20; in the ``"legacy"`` format
  (before 2026-08-20) at most one per contract and interval, ``time`` in seconds, the rest
  never sent. Sizes are whole signed contracts, as text when the client's handshake carried
  ``X-Gate-Size-Decimal: 1``.

REST: see :mod:`.rest`. Test hooks (from :class:`~service.simulate.server.VenueServer`):
:meth:`drop_connections`, :meth:`stall` (liquidations meanwhile wait), :attr:`clients`;
ground truth: :meth:`mark`, :meth:`oi_base`, :attr:`prints` (every liquidation of the
market), :attr:`pushed` (those sent to at least one subscriber), :meth:`row`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final, Literal, Unpack

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.http11 import Request, Response

from ....simulate.asgi_server import AsgiServer
from ....simulate.clock import wall_ms
from ....simulate.market import LiquidationPrint
from ....simulate.scenario import DEFAULT_SCENARIO, Scenario
from ....simulate.server import MarketOptions, SessionClient, VenueServer
from . import book_wire, wire
from .rest import GateRest

WS_PREFIX: Final = "/v4/ws/"
TRADE_INTERVAL_S: Final = 1.0
"""``futures.trades`` pushes: the venue's are real time; one batch a second keeps the simulated
tape cheap (the collector sums it per second anyway)."""


@dataclass(slots=True, eq=False)
class _Client(SessionClient[wire.Session]):
    decimal_sizes: bool


def _settle(path: str) -> str | None:
    settle = path.split("?")[0].removeprefix(WS_PREFIX)
    return settle if settle in wire.SETTLES else None


class GateSimulator(VenueServer[_Client]):
    """Gate futures on loopback. ``async with GateSimulator() as sim: ...``."""

    SPECS = wire.GATE_SPECS
    TEMPLATE = "DOGE_USDT"

    def __init__(
        self,
        scenario: Scenario | str = DEFAULT_SCENARIO,
        *,
        push_interval_s: float = 0.5,
        book_interval_s: float = 0.1,
        liquidation_interval_s: float = 1.0,
        liquidation_format: Literal["aggregated", "legacy"] = "aggregated",
        list_only_simulated: bool = False,
        **market: Unpack[MarketOptions],
    ) -> None:
        """``market``: the market's keywords (:class:`~service.simulate.server.MarketOptions`).
        ``list_only_simulated``: the contract lists hold only the simulated contracts."""
        super().__init__(scenario, specs=wire.GATE_SPECS, ws_path="/v4/ws", **market)
        listings = {s: self._grow(wire.load_contracts(s), "name") for s in wire.SETTLES}
        collected = wire.contracts(listings)
        self.contracts = {s: collected[s] for s in self.market.symbols if s in collected}
        if list_only_simulated:
            listings = {
                s: [r for r in rows if r["name"] in self.contracts] for s, rows in listings.items()
            }
        self.listed = {s: frozenset(r["name"] for r in rows) for s, rows in listings.items()}
        self.rest = GateRest(listings, market=self.market, contracts=self.contracts)
        self.books = {s: wire.TickerBook(c) for s, c in self.contracts.items()}
        self.push_interval_s = push_interval_s
        self.book_interval_s = book_interval_s
        """``futures.obu`` updates (the venue's: 100 ms at 400 levels, 20 ms at 50)."""
        self.depth_books: dict[tuple[str, int], book_wire.DepthBook] = {}
        """The ``futures.obu`` streams subscribed at least once, by contract and depth."""
        self._fills: defaultdict[str, list[LiquidationPrint]] = defaultdict(list)
        """Liquidations not yet printed on ``futures.trades``."""
        self._trade_id = 1
        self.liquidation_interval_s = liquidation_interval_s
        self.legacy = liquidation_format == "legacy"
        self.pushed: list[LiquidationPrint] = []
        """Liquidations sent to at least one subscriber."""
        self._pending: defaultdict[str, list[LiquidationPrint]] = defaultdict(list)
        self.clock.add_listener(self._offer)
        self._http = AsgiServer(self.rest.app)

    def _loops(self) -> list[Coroutine[Any, Any, None]]:
        return [
            self._on_grid(self.push_interval_s, self._push_tickers),
            self._on_grid(self.book_interval_s, self._push_books),
            self._on_grid(TRADE_INTERVAL_S, self._push_trades),
            self._on_grid(self.liquidation_interval_s, self._flush_liquidations),
        ]

    def row(self, p: LiquidationPrint, *, decimal_sizes: bool = False) -> dict[str, Any]:
        """The row that carries ``p`` (when it was sent)."""
        c = self.contracts[p.symbol]
        return wire.liquidation_row(p, c, decimal_sizes=decimal_sizes, legacy=self.legacy)

    def wire_ids(self, p: LiquidationPrint) -> list[tuple[str, str]]:
        """No id on the wire: time (in ms; the legacy rows give seconds), size and price, as
        sent to a client that asks for decimal sizes, as the collector does."""
        row = self.row(p, decimal_sizes=True)
        ts = row["time"] if row["time"] > 10**11 else row["time"] * 1000
        return [(p.symbol, f"{ts}:{row['size']}:{row['price']}")]

    def unsent(self) -> list[LiquidationPrint]:
        """Liquidations waiting for the next flush (not sent yet)."""
        return [p for batch in self._pending.values() for p in batch]

    # -- websocket -------------------------------------------------------------------------

    def _check_path(self, conn: ServerConnection, request: Request) -> Response | None:
        if _settle(request.path) is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        request = conn.request
        settle = _settle(request.path if request else "/")
        if settle is None:  # pragma: no cover - refused by _check_path
            return
        decimal = request is not None and request.headers.get("X-Gate-Size-Decimal") == "1"
        client = _Client(conn, wire.Session(settle, self.listed[settle]), decimal)
        with self._tracked(client):
            async for message in conn:
                for reply in client.session.handle(message, wall_ms()):
                    await conn.send(reply)
                for stream in client.session.new_books:
                    self._send_full_book(client, stream)

    def _push_tickers(self, ts: int) -> None:
        """``futures.tickers`` and ``futures.book_ticker`` of the subscribed contracts."""
        for name, book in self.books.items():
            to = [c.conn for c in self._clients if name in c.session.tickers]
            if to:
                ticker = book.ticker(self.market.quote(name))
                broadcast(to, wire.frame(wire.TICKERS, "update", [ticker], ts))
            to = [c.conn for c in self._clients if name in c.session.book_tickers]
            if to:
                top = book_wire.book_ticker(self.market.quote(name), book.contract, ts, ts)
                broadcast(to, wire.frame(wire.BOOK_TICKER, "update", top, ts))

    # -- futures.obu -------------------------------------------------------------------------

    def _send_full_book(self, client: _Client, stream: str) -> None:
        """The stream's whole book now (its other subscribers get the update to it first,
        so none of them sees a gap); a stream the venue does not serve gets nothing."""
        parsed = wire.parse_stream(stream)
        contract = self.contracts.get(parsed[0]) if parsed else None
        if parsed is None or contract is None or contract.settle != client.session.settle:
            return  # acknowledged, never served (as the venue)
        book = self.depth_books.get(parsed)
        ts = wall_ms()
        if book is None:
            book = self.depth_books[parsed] = book_wire.DepthBook(contract, parsed[1])
            book.update(self.market.quote(contract.name))
        else:
            self._advance_book(book, ts)
        broadcast([client.conn], book.full(ts))
        client.session.books_sent.add(stream)

    def _advance_book(self, book: book_wire.DepthBook, ts: int) -> None:
        stream = book.stream
        to = [c.conn for c in self._clients
              if stream in c.session.books_sent and stream in c.session.books]  # fmt: skip
        changed = book.update(self.market.quote(book.contract.name))
        if changed is not None and to:
            broadcast(to, book.delta(ts, *changed))

    def _push_books(self, ts: int) -> None:
        """The subscribed books' updates (a book nobody follows is not moved)."""
        for book in self.depth_books.values():
            stream = book.stream
            if any(stream in c.session.books for c in self._clients):
                self._advance_book(book, ts)

    def book_gap(self, symbol: str) -> None:
        """Skip an update of ``symbol``'s books: its subscribers' next update has a gap."""
        for (name, _), book in self.depth_books.items():
            if name == symbol:
                book.u += 1

    def _push_trades(self, ts: int) -> None:
        """The last second's trades of each contract, to its ``futures.trades`` subscribers."""
        fills, self._fills = self._fills, defaultdict(list)
        for name, contract in self.contracts.items():
            to = [c for c in self._clients if name in c.session.trades]
            if not to:
                continue
            mine = sorted(fills.get(name, ()), key=lambda p: p.ts_ms)
            q = self.market.quote(name)
            count = 0
            for decimal in (False, True):
                conns = [c.conn for c in to if c.decimal_sizes is decimal]
                if conns:
                    rows = book_wire.trade_rows(
                        q, contract, ts, mine, self._trade_id, decimal_sizes=decimal
                    )
                    count = len(rows)
                    broadcast(conns, wire.frame(wire.TRADES, "update", rows, ts))
            self._trade_id += count

    def _offer(self, prints: list[LiquidationPrint]) -> None:
        for p in prints:
            if p.symbol not in self.contracts:
                continue
            self._fills[p.symbol].append(p)
            batch = self._pending[p.symbol]
            batch.append(p)
            if not self.legacy and len(batch) >= wire.BATCH_MAX and not self.stalled:
                self._pending[p.symbol] = []
                self._push(p.symbol, batch, wall_ms())  # a full batch goes at once

    def _flush_liquidations(self, _tick_ms: int) -> None:
        if not self._pending:
            return
        now, pending = wall_ms(), self._pending  # rows carry their send time, not the grid's
        self._pending = defaultdict(list)
        for name, prints in pending.items():
            kept = wire.legacy_sample(prints) if self.legacy else prints
            for i in range(0, len(kept), wire.BATCH_MAX):
                self._push(name, kept[i : i + wire.BATCH_MAX], now)

    def _push(self, name: str, prints: list[LiquidationPrint], now: int) -> None:
        settle = self.contracts[name].settle
        to = [c for c in self._clients if c.session.settle == settle]
        to = [c for c in to if c.session.wants_liquidations(name)]
        if not to:
            return  # nobody subscribed: not sent (they stay in the ground truth)
        for decimal in (False, True):
            conns = [c.conn for c in to if c.decimal_sizes is decimal]
            if conns:
                rows = [self.row(p, decimal_sizes=decimal) for p in prints]
                broadcast(conns, wire.frame(wire.LIQUIDATES, "update", rows, now))
        self.pushed.extend(prints)
