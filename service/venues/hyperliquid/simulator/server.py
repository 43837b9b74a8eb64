"""A local Hyperliquid server on loopback: the real websocket and ``/info`` protocol, fake market.

Websocket (``ws_base_url`` = ``ws://<host>:<port>/ws``; other paths: 404), see
:mod:`.wire`:

* one subscription per message, acked on ``subscriptionResponse``, refusals on ``error``;
  ``{"method":"ping"}`` answered ``{"channel":"pong"}``; the server sends no pings; a
  connection sent nothing for ``idle_close_s`` (the venue's 60 s) is closed
  (:data:`IDLE_CLOSE`, counted in :attr:`idle_closes`): one of rare pushes (a vault's fills)
  lives on the pongs to its pings;
* ``activeAssetCtx`` per listed coin: the current context at once on subscribing, then
  every ``push_interval_s`` (no time in the push, as on the venue);
* ``bbo`` per coin: the best bid and ask at once on subscribing, then on the
  ``push_interval_s`` grid when they changed (the venue: "only if the bbo changes on a
  block");
* ``l2Book`` per coin (``nSigFigs`` 2-5 or full precision): the whole book, 20 levels a
  side, at once on subscribing, then every ``push_interval_s`` (the venue: each block at
  least 0.5 s after the last push); :meth:`cross_book` sends one crossed push;
* ``trades`` per coin: every :data:`TRADE_INTERVAL_S`, the liquidations of the interval as
  the liquidated side's taker fills and the calm tape (:mod:`.book_wire`); during a
  deleveraging phase the spread widens and every level thins with the market's quote;
* ``userFills`` per address. Hyperliquid publishes no liquidation feed; the liquidator
  vaults' fills are what a client can watch. Each print of the market is a *backstop*
  liquidation with probability ``backstop_share`` (seeded): a vault of ``liquidators``
  takes the position over (a fill with a ``liquidation`` object) and trades it out at once
  (a fill without one). The other prints are *market* liquidations through the book, whose
  fills belong to users nobody watches: they are in :attr:`prints` only. Fills are pushed
  every ``flush_interval_s`` to the vault's subscribers; a new subscription first gets a
  snapshot (``isSnapshot``) of the vault's last ``snapshot_size`` fills, newest first.

REST: see :mod:`.rest`. Test hooks (from :class:`~service.simulate.server.VenueServer`):
:meth:`drop_connections`, :meth:`stall` (acks and pongs still flow; fills meanwhile are
held and sent afterwards), :attr:`clients`; ground truth: :meth:`mark`, :meth:`oi_base`,
:attr:`prints` (every liquidation of the market), :attr:`pushed` (the backstop prints sent
live, once each), :attr:`replayed` (those sent again in snapshots) and :meth:`fill_of`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import defaultdict, deque
from collections.abc import Coroutine
from typing import Any, Final, Unpack

from websockets.asyncio.server import ServerConnection, broadcast

from ....simulate.asgi_server import AsgiServer
from ....simulate.clock import wall_ms
from ....simulate.market import LiquidationPrint
from ....simulate.scenario import DEFAULT_SCENARIO, Scenario
from ....simulate.server import MarketOptions, SessionClient, VenueServer, text_of
from . import book_wire, wire
from .rest import HyperliquidRest

TID_START = 745_210_434_703_679
TRADE_TID_START = 611_279_506_717_453
TRADE_INTERVAL_S = 1.0
"""``trades`` pushes: the venue's are real time; one batch a second keeps the simulated
market cheap."""
OID_START = 55_030_848_197
IDLE_CLOSE_S: Final = 60.0
"""The venue closes a connection it has sent nothing to for this long
(https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket/
timeouts-and-heartbeats)."""
IDLE_CLOSE: Final = (1000, "idle")
"""The close of an idle connection (the code is not documented, chosen here)."""

_Sent = tuple[dict[str, Any], LiquidationPrint | None]
"""A vault fill, and the backstop print it took over (``None``: the vault's own trade)."""


_Client = SessionClient[wire.Session]


class HyperliquidSimulator(VenueServer[_Client]):
    """Hyperliquid perps on loopback. ``async with HyperliquidSimulator() as sim: ...``."""

    RESENDS_ON_SUBSCRIBE = True
    SPECS = wire.HL_SPECS
    TEMPLATE = "DOGE"

    def __init__(
        self,
        scenario: Scenario | str = DEFAULT_SCENARIO,
        *,
        push_interval_s: float = 0.5,
        flush_interval_s: float = 0.1,
        backstop_share: float = 0.3,
        liquidators: tuple[str, ...] = wire.LIQUIDATORS,
        snapshot_size: int = 50,
        list_only_simulated: bool = False,
        idle_close_s: float = IDLE_CLOSE_S,
        **market: Unpack[MarketOptions],
    ) -> None:
        """``market``: the market's keywords (:class:`~service.simulate.server.MarketOptions`).
        ``list_only_simulated``: ``meta`` lists only the simulated coins (else the sixteen-asset
        listing, one delisted). ``idle_close_s``: the venue's idle cut (shorter for fast
        tests)."""
        super().__init__(scenario, specs=wire.HL_SPECS, ws_path=wire.WS_PATH, **market)
        template = next(a for a in wire.LISTING if a.name == self.TEMPLATE)
        every = (*wire.LISTING, *(dataclasses.replace(template, name=s) for s in self.synthetic))
        listed = {a.name: a for a in every if not a.delisted}
        self.coins = {s: listed[s] for s in self.market.symbols if s in listed}
        if not self.coins:
            raise ValueError(f"none of {self.market.symbols} is a listed Hyperliquid coin")
        self.listing = tuple(a for a in every if not list_only_simulated or a.name in self.coins)
        self._listed = frozenset(a.name for a in self.listing if not a.delisted)
        self.rest = HyperliquidRest(wire.meta(self.listing), self._all_ctxs)
        self.push_interval_s, self.flush_interval_s = push_interval_s, flush_interval_s
        self.backstop_share = backstop_share
        self.vaults = {
            a.lower(): wire.Vault(a.lower(), TID_START + i * 10**9, OID_START + i * 10**9)
            for i, a in enumerate(liquidators)
        }
        self.pushed: list[LiquidationPrint] = []
        """Backstop prints sent live (once each, whether anyone subscribed or not)."""
        self.replayed: list[LiquidationPrint] = []
        self.resent = self.replayed
        """Backstop prints sent again in the snapshots that follow a subscription."""
        self.snapshots = 0
        self.idle_close_s = idle_close_s
        self.idle_closes = 0
        """Connections closed for want of a frame sent to them (:data:`IDLE_CLOSE_S`)."""
        self._sent_at: dict[ServerConnection, float] = {}
        """Per connection, when (monotonic) it was last sent a frame."""
        self._fills: dict[LiquidationPrint, dict[str, Any]] = {}
        self._pending: defaultdict[str, list[_Sent]] = defaultdict(list)
        self._recent: defaultdict[str, deque[_Sent]] = defaultdict(
            lambda: deque(maxlen=snapshot_size)
        )
        self._chooser = random.Random(f"hyperliquid-backstop-{self.seed}")
        self._tops: dict[str, tuple[str, str, str]] = {}
        """Per coin, the best bid and ask last pushed (``bbo`` is sent on change only)."""
        self._books: dict[tuple[str, int | None], book_wire.WholeBook] = {}
        self._traded: defaultdict[str, list[LiquidationPrint]] = defaultdict(list)
        """Prints not yet on ``trades``."""
        self._tid = TRADE_TID_START
        self._crossed: set[str] = set()
        self.clock.add_listener(self._offer)
        self._http = AsgiServer(self.rest.app)

    def _loops(self) -> list[Coroutine[Any, Any, None]]:
        return [
            self._on_grid(self.push_interval_s, self._push_ctxs),
            self._on_grid(self.push_interval_s, self._push_books),
            self._on_grid(TRADE_INTERVAL_S, self._push_trades),
            self._every(self.flush_interval_s, self._flush_fills),
            self._cut_idle(),
        ]

    def fill_of(self, p: LiquidationPrint) -> dict[str, Any]:
        """The vault fill that took backstop print ``p`` over (as sent, every time)."""
        return self._fills[p]

    def wire_ids(self, p: LiquidationPrint) -> list[tuple[str, str]]:
        """The vault fill's trade id (``tid``)."""
        return [(p.symbol, str(self.fill_of(p)["tid"]))]

    def _ctx(self, coin: str) -> dict[str, Any]:
        a = self.coins[coin]
        return wire.ctx(self.market.quote(coin), a.sz_decimals, self.market.spec(coin).price)

    def _all_ctxs(self) -> list[dict[str, Any]]:
        return [
            self._ctx(a.name) if a.name in self.coins else wire.idle_ctx(a) for a in self.listing
        ]

    # -- websocket -------------------------------------------------------------------------

    async def _handle(self, conn: ServerConnection) -> None:
        self._sent_at[conn] = time.monotonic()  # the idle timer starts at the opening
        try:
            with self._tracked(_Client(conn, wire.Session(self._listed))) as client:
                async for message in conn:
                    text = text_of(message)
                    replies, added = client.session.handle(text)
                    for reply in replies:
                        await conn.send(reply)
                        self._sent_at[conn] = time.monotonic()
                    if not self.stalled:
                        self._snapshot(client, added)
        finally:
            self._sent_at.pop(conn, None)

    def cross_book(self, coin: str) -> None:
        """The next ``l2Book`` push of ``coin`` is crossed (its best bid above its best ask):
        a bad push the collector counts and drops; the one after is whole again."""
        self._crossed.add(coin)

    def _book(self, coin: str, sig_figs: int | None) -> book_wire.WholeBook:
        key = (coin, sig_figs)
        if (book := self._books.get(key)) is None:
            book = self._books[key] = book_wire.WholeBook(
                coin, self.coins[coin].sz_decimals, sig_figs
            )
        return book

    def _push(self, to: list[ServerConnection], frame: str) -> None:
        broadcast(to, frame)
        now = time.monotonic()
        for conn in to:
            if conn in self._sent_at:  # still open
                self._sent_at[conn] = now

    async def _cut_idle(self) -> None:
        """Close each connection sent nothing for :attr:`idle_close_s` (a pong counts: the
        ``{"method":"ping"}`` is what keeps a connection of rare pushes open). Not paused by
        :meth:`stall`: the venue's timer knows nothing of it."""
        while True:
            await asyncio.sleep(min(1.0, self.idle_close_s / 4))
            now = time.monotonic()
            for c in list(self._clients):
                if now - self._sent_at.get(c.conn, now) >= self.idle_close_s:
                    self.idle_closes += 1
                    self._sent_at.pop(c.conn, None)
                    await c.conn.close(*IDLE_CLOSE)

    def _snapshot(self, client: _Client, added: list[wire.Sub]) -> None:
        """What the venue sends at once on a new subscription: the coin's context, top of
        book or book, or the user's recent fills (sent synchronously: no live push can
        overtake it)."""
        now = wall_ms()
        for kind, key in added:
            if kind in wire.COIN_CHANNELS:
                if key not in self.coins:
                    continue
                q = self.market.quote(key)
                if kind == "activeAssetCtx":
                    self._push([client.conn], wire.ctx_push(key, self._ctx(key)))
                elif kind == "bbo":
                    top = book_wire.bbo_levels(q, self.coins[key].sz_decimals)
                    self._push([client.conn], book_wire.bbo_push(key, now, top))
                elif kind == "l2Book":
                    book = self._book(key, client.session.sig_figs.get(key))
                    self._push([client.conn], book.push(q, now))
                continue
            recent = list(reversed(self._recent[key]))
            self._push([client.conn], wire.fills_push(key, [f for f, _ in recent], snapshot=True))
            self.replayed.extend(p for _, p in recent if p is not None)
            self.snapshots += 1

    def _subscribers(self, sub: wire.Sub) -> list[ServerConnection]:
        return [c.conn for c in self._clients if sub in c.session.subs]

    def _push_ctxs(self, _tick_ms: int) -> None:
        for coin in self.coins:  # no time in the push, as on the venue
            if to := self._subscribers(("activeAssetCtx", coin)):
                self._push(to, wire.ctx_push(coin, self._ctx(coin)))

    def _push_books(self, ts: int) -> None:
        """Each coin's ``bbo`` to its subscribers when it changed, and each subscribed
        ``l2Book``, whole, to its subscribers."""
        for coin, a in self.coins.items():
            if not (to := self._subscribers(("bbo", coin))):
                continue
            top = book_wire.bbo_levels(self.market.quote(coin), a.sz_decimals)
            if top != self._tops.get(coin):
                self._tops[coin] = top
                self._push(to, book_wire.bbo_push(coin, ts, top))
        wanted: defaultdict[tuple[str, int | None], list[ServerConnection]] = defaultdict(list)
        for c in self._clients:
            for kind, coin in c.session.subs:
                if kind == "l2Book":
                    wanted[(coin, c.session.sig_figs.get(coin))].append(c.conn)
        for (coin, sig_figs), to in wanted.items():
            q = self.market.quote(coin)
            if coin in self._crossed:
                self._crossed.discard(coin)
                frame = book_wire.crossed_push(coin, ts, q, self.coins[coin].sz_decimals)
            else:
                frame = self._book(coin, sig_figs).push(q, ts)
            self._push(to, frame)

    def _push_trades(self, ts: int) -> None:
        """The interval's trades of each coin, to its ``trades`` subscribers."""
        traded, self._traded = self._traded, defaultdict(list)
        for coin, a in self.coins.items():
            if to := self._subscribers(("trades", coin)):
                mine = sorted(traded.get(coin, ()), key=lambda p: p.ts_ms)
                q = self.market.quote(coin)
                rows = book_wire.trade_rows(q, coin, a.sz_decimals, ts, mine, self._tid)
                self._tid += len(rows)
                if rows:
                    self._push(to, book_wire.trades_push(rows))

    def _offer(self, prints: list[LiquidationPrint]) -> None:
        """Each print of our coins trades (``trades``: every liquidation goes through the
        book or is unwound there) and is a backstop with probability ``backstop_share``: a
        vault's takeover and unwind fills wait for the next flush."""
        for p in prints:
            if p.symbol in self.coins:
                self._traded[p.symbol].append(p)
        if not self.vaults:
            return
        addresses = sorted(self.vaults)
        for p in prints:
            if p.symbol not in self.coins or self._chooser.random() >= self.backstop_share:
                continue
            vault = self.vaults[self._chooser.choice(addresses)]
            mark = self.market.mark(p.symbol)
            takeover, unwind = wire.backstop(vault, p, mark, self.coins[p.symbol].sz_decimals)
            self._fills[p] = takeover
            self._pending[vault.address] += [(takeover, p), (unwind, None)]

    def _flush_fills(self) -> None:
        pending, self._pending = self._pending, defaultdict(list)
        for address, batch in pending.items():
            self.pushed.extend(p for _, p in batch if p is not None)
            self._recent[address].extend(batch)
            if to := self._subscribers(("userFills", address)):
                self._push(to, wire.fills_push(address, [f for f, _ in batch]))
