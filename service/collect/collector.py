"""One venue's collector: metadata, the websocket session, REST polls and health.

The collector is venue-independent: everything venue-specific comes from its
:class:`~service.venues.base.Venue`. It runs these tasks:

* the connection supervisor: opens the websocket (picows' implementation of the
  ``websockets`` asyncio API: the same connection, close and error semantics, with the
  frames parsed in Cython), subscribes, feeds every frame through
  the venue's parser (which never raises: a bad frame is counted and dropped, see
  :meth:`~service.venues.base.Parser.parse`), the event check
  (:class:`~service.validate.Boundary`) and the deduplicator into the
  :class:`~service.store.writer.EventSink`; a frame larger than the venue's
  ``max_frame_bytes`` closes the connection (counted as ``too_big``), which reconnects;
  reconnects with :class:`~.backoff.Backoff`; a watchdog closes a connection that delivers
  nothing for ``watchdog_s``; before the venue's own 24 h cut, a second connection is
  opened and the first is closed only once the second delivers (make-before-break), so no
  frame is lost and the deduplicator drops the overlap;
* the open-interest poller, for venues that only give it over REST, paced inside the
  configured share of the venue's request-weight budget;
* the metadata refresher (instrument list, contract sizes, funding intervals);
* the passive drift check (:mod:`.drift`): every ``drift_check_s``, the channels silent for
  longer than their documented rate allows and the fields that differ from what the parser
  knows, into the health snapshot;
* the health publisher: a snapshot to Redis every second;
* for a venue that reads order books, the depth ranking (:mod:`.depth`): which instruments'
  books to follow, re-taken every ``depth.rerank_s``; a book whose updates have a gap is
  resubscribed on its connection (:attr:`~service.venues.base.Parser.resync`), or, on a
  venue whose snapshots come over REST (Binance), fetched and handed to that connection's
  parser.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import ccxt.async_support as ccxt_async
import redis.asyncio as aioredis
import structlog
from picows import WSCloseCode, WSError
from picows.websockets import ClientConnection, connect
from picows.websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    WebSocketException,
)
from redis.exceptions import RedisError

from ..aio import checkpoint, reap, stopping
from ..backoff import Backoff
from ..config import CollectSettings
from ..errors import DATA_ERRORS
from ..events import (
    KIND_OF,
    BookTop,
    Event,
    Kind,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Side,
    StressEvent,
    decode,
)
from ..store import keys
from ..store.writer import EventSink
from ..validate import Boundary
from ..venues import SHAPES
from ..venues.base import Connection, Instrument, Parser, Venue, now_ms, ping_text
from ..venues.dedup import Deduplicator
from .depth import rank
from .drift import DriftMonitor
from .health import VenueHealth, write_health

log = structlog.get_logger(__name__)
CLOSE_TIMEOUT_S = 1.0
"""How long a closing handshake may take: a lost or stalled connection is replaced at once,
not after websockets' default 10 s."""

#: What a lost connection looks like; anything else is a bug and is left to crash loudly
#: (picows' own errors, ``WSError``, may come from below its websockets API).
CONNECTION_ERRORS = (OSError, TimeoutError, WebSocketException, InvalidHandshake, WSError)
REST_ERRORS = (
    ccxt_async.BaseError, OSError, TimeoutError, ValueError, KeyError, TypeError, ArithmeticError
)  # fmt: skip
"""A REST call that failed, or answered something we could not read (msgspec's and json's
decode errors are ValueErrors; a number too large for a float is an OverflowError): counted
and retried, never fatal to the collector."""
TOO_BIG = "too_big"
"""The parse-error reason of a frame over the venue's ``max_frame_bytes`` (the connection
is closed with 1009 by the websocket client, and reconnects)."""
QUIET_PING_S = 20.0
"""Protocol ping interval, and pong timeout, of a quiet connection (``Connection.quiet``:
the liquidations' lane, which the data watchdog does not watch)."""
ROTATION_RETRY_S = 60.0
HANDOVER_READ_S = 5.0
"""How long a lane handing over waits for the pong that says it has read everything the
venue sent it before the successor's subscription (:meth:`VenueCollector._read_until_pong`):
a lane reads on while the rest of the collector is behind, so its pong takes a round trip."""
HANDOVER_GRACE_S = 1.0
"""How long a lane handing over reads on after its pong: a venue whose gateway answers pings
itself may still have frames for it inside."""
FIRST_RANK_S = 5.0
"""The first depth ranking waits this long for the open interest (a ticker snapshot on
subscribe brings every symbol's), and is retried as often until some is known."""
MAX_PONG_LEN = 256


def _text(frame: str | bytes) -> str:
    return frame if isinstance(frame, str) else frame.decode("utf-8", "replace")


_BACKGROUND: set[asyncio.Task[Any]] = set()
"""Handshakes and closes finishing after their caller was cancelled (:func:`open_websocket`,
:func:`closing`): held here until they end."""


def _in_background(task: asyncio.Task[Any]) -> None:
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


async def open_websocket(url: str, **options: Any) -> ClientConnection:
    """picows' ``connect``, safe to cancel during the handshake. picows aborts a cancelled
    handshake's transport only on its TLS path: on a plain one the socket stayed open and
    unread (picows pauses reading once its queue is full), so the venue's sends to it
    blocked; seen as a simulator that never stopped after a collector stopped while a
    rotation's successor was opening. Here the handshake runs as a task of its own: a caller
    cancelled meanwhile leaves it to finish or fail by itself (within ``open_timeout``), and
    a connection that opens then is closed at once (:func:`closing`'s way)."""

    async def handshake() -> ClientConnection:
        return await connect(url, **options)

    opening = asyncio.ensure_future(handshake())
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        _in_background(opening)
        opening.add_done_callback(_close_if_opened)
        raise


def _close_if_opened(task: asyncio.Task[ClientConnection]) -> None:
    if not task.cancelled() and task.exception() is None:
        _in_background(asyncio.ensure_future(task.result().close()))


@contextlib.asynccontextmanager
async def closing(ws: ClientConnection) -> AsyncIterator[ClientConnection]:
    """``ws``, closed on the way out whatever interrupts the close. picows' ``close`` sends
    the close frame and waits for the venue's (aborting the socket after ``close_timeout``);
    cancelled during that wait (a collector stopped again while it was closing), it left
    the socket open and unread, like a cancelled handshake (:func:`open_websocket`). Here
    the close runs as a task of its own, which a cancellation does not interrupt."""
    try:
        yield ws
    finally:
        closer = asyncio.ensure_future(ws.close())
        try:
            await asyncio.shield(closer)
        except asyncio.CancelledError:
            _in_background(closer)
            raise


class _Handover(asyncio.Event):
    """A rotation's successor sets it once it delivers; the session it replaces sets
    :attr:`taken` when it hands over to it (the successor is then the caller's)."""

    taken = False


class _ClosedHere(Exception):
    """A connection this collector closed itself (its subscription changed on a venue that
    does not rotate, or it is no longer needed): no loss, no reconnect to count."""


@dataclass(slots=True)
class _Liveness:
    """One connection's watchdog state."""

    last_frame: float
    stale: bool = False
    waiting: bool = False
    """True while the session waits for Redis and reads nothing."""


class VenueCollector:
    """Collects one venue. Call :meth:`run`; cancel the task to stop."""

    def __init__(
        self,
        venue: Venue,
        settings: CollectSettings,
        sink: EventSink,
        redis: aioredis.Redis,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.venue = venue
        self.settings = settings
        self.sink = sink
        self.redis = redis
        self.clock = clock
        self.health = VenueHealth(
            venue=venue.id,
            ws_url=venue.ws_url,
            rest_url=venue.rest_url,
            liquidations_sampled=venue.liquidations_sampled,
        )
        self.markets: dict[str, Instrument] = {}
        self.parser: Parser | None = None
        self.dedup = Deduplicator()
        self.dedup.counts = self.health.duplicates
        self.boundary = Boundary(venue.id, self.health.events_invalid)
        self.latest: dict[str, dict[Kind, Event]] = {}
        self.liquidation_totals: Counter[tuple[str, Side]] = Counter()
        self.liquidation_notional: defaultdict[tuple[str, Side], float] = defaultdict(float)
        self._connected: dict[str, bool | None] = {}
        """Each connection asked for: up, down, or ``None`` while it opens for the first time
        beside a venue that was up (a new depth set's, a new listing's): not a loss, so it
        does not make the venue unhealthy unless that first attempt fails."""
        self._open: dict[str, tuple[tuple[str, ...], ClientConnection]] = {}
        self._resubscribe: set[str] = set()
        """Open connections whose subscription changed, to rotate to one with the new
        subscription (make-before-break) at their next frame."""
        self._closing: dict[ClientConnection, str] = {}
        """Connections this collector is closing itself, with why."""
        self._tg: asyncio.TaskGroup | None = None
        self._snapshots: set[tuple[int, str]] = set()
        self._snapshot_turn = asyncio.Semaphore(1)
        """Book snapshots over REST are fetched one at a time: a session that opens asks for
        every book's at once, and queued together in the venue's rate limiter (Binance's at
        ``limit=1000``: 1 s each in ccxt's) they held the venue's other calls, the
        open-interest polls, past their timeout."""
        """Book snapshots being fetched over REST, by session parser and symbol."""
        self.ready = asyncio.Event()
        """Set once metadata is loaded and the first events were handed to the sink."""
        self.stress_sink: Callable[[list[StressEvent]], None] | None = None
        """Where the stress events the venue pushes on its websocket go (Bybit's ADL
        alerts): the stress writer's ``put``, set by the runtime where the venue's stress
        polling runs; ``None``: they are dropped."""
        shape = SHAPES.get(venue.id)
        self.drift = DriftMonitor(venue.id, shape) if shape is not None else None

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        await self._load_markets_until_done()
        await self._remember_stored()
        checkpoint()  # a stop during that read, which redis-py may have swallowed (see there)
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            if self.venue.depth_levels:
                self.venue.depth_symbols = self._depth_choice()
                tg.create_task(self._follow_depth(), name=f"{self.venue.id}:depth")
            self._follow_connections()
            tg.create_task(self._refresh_markets(), name=f"{self.venue.id}:metadata")
            tg.create_task(self._publish_health(), name=f"{self.venue.id}:health")
            if self.drift is not None:
                tg.create_task(self._watch_drift(self.drift), name=f"{self.venue.id}:drift")
            if self.venue.oi_over_rest:
                tg.create_task(self._poll_open_interest(), name=f"{self.venue.id}:oi")

    def flush(self) -> None:
        """Hand over what the parser still holds (the traded volume of seconds not closed
        yet), before the sink drains at a stop or a replacement: nothing counted is lost."""
        if self.parser is not None:
            now = now_ms()
            self._accept(self.parser.flush_volumes(now), now, parsed=True)

    async def close(self) -> None:
        self.health.connected = False
        await self._write_health()
        await self.venue.close()

    # -- metadata ----------------------------------------------------------------------------

    async def _load_markets_until_done(self) -> None:
        backoff = Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s)
        while True:
            checkpoint()
            try:
                self._set_markets(await self.venue.load_markets(self.settings.rest_timeout_s))
                return
            except REST_ERRORS as exc:
                self.health.last_error = f"metadata: {exc}"
                log.warning("metadata load failed", venue=self.venue.id, error=str(exc)[:200])
                await self._write_health()
                await asyncio.sleep(backoff.next_delay())

    async def _remember_stored(self) -> None:
        """Seed the deduplicator with the newest mark, funding and open interest of each of
        our instruments in Redis (their latest hashes): a restarted collector (or shard) does
        not store again what it stored before the restart. Liquidations need nothing here: the
        store checks their identities itself. Best effort: without Redis, nothing is seeded."""
        wanted = self._parser().wanted
        symbols = sorted(self.markets if wanted is None else wanted)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for symbol in symbols:
                    pipe.hgetall(keys.latest(self.venue.id, symbol))
                rows = await pipe.execute(raise_on_error=False)
        except RedisError as exc:
            log.warning("could not read what was stored", venue=self.venue.id, error=str(exc))
            return
        stored: list[Event] = []
        for row in rows:
            if isinstance(row, Exception) or not row:
                continue  # a key of the wrong type: the store reports it where it reads it
            for kind, raw in row.items():
                if kind == Kind.LIQUIDATION.value.encode():
                    continue
                try:
                    stored.append(decode(raw))
                except DATA_ERRORS:
                    continue
        self.dedup.remember([e for e in stored if e.venue == self.venue.id])

    def _set_markets(self, markets: dict[str, Instrument]) -> None:
        self.markets = markets
        wanted = self.venue.wanted(markets)
        if self.parser is None:
            self.parser = self.venue.new_parser(markets, wanted)
            self.parser.stats.errors = self.health.parse_errors
            self.parser.stats.duplicates = self.health.duplicates
        else:
            self.parser.markets, self.parser.wanted = markets, wanted
        self.health.instruments = len(markets)
        self.health.subscribed_symbols = None if wanted is None else len(wanted)

    async def _refresh_markets(self) -> None:
        while True:
            checkpoint()
            await asyncio.sleep(self.venue.settings.metadata_refresh_s)
            try:
                self._set_markets(await self.venue.load_markets(self.settings.rest_timeout_s))
            except REST_ERRORS as exc:  # keep the cached metadata; try again next period
                log.warning("metadata refresh failed", venue=self.venue.id, error=str(exc)[:200])
                continue
            self._follow_connections()

    def _follow_connections(self) -> None:
        """Start a supervisor for each connection the metadata now asks for; rotate open
        connections whose subscription changed to a successor with the new one (a venue that
        does not rotate: closed and opened again at once); close those no longer asked for
        (their supervisor retires, see :meth:`_supervise`): an order book connection whose
        category left the depth set. None of these is a reconnect (:class:`_ClosedHere`)."""
        assert self._tg is not None
        if self._parser().wanted == set():
            return  # a shard that owns none of this venue's instruments: nothing to connect
        asked = self.venue.connections(self.markets)
        names = {conn.name for conn in asked}
        for name, (_, ws) in list(self._open.items()):
            if name not in names:
                log.info("connection no longer needed; closing", venue=self.venue.id,
                         connection=name)  # fmt: skip
                self._close_here(ws, "unsubscribed")
        for conn in asked:
            if conn.name not in self._connected:
                self._connected[conn.name] = None if self.health.connected else False
                self._tg.create_task(
                    self._supervise(conn.name), name=f"{self.venue.id}:{conn.name}"
                )
            elif (open_ := self._open.get(conn.name)) is not None and open_[0] != conn.subscribe:
                if self.venue.rotates:  # a successor with the new subscription, then this one
                    if conn.name not in self._resubscribe:
                        log.info("subscription changed; rotating", venue=self.venue.id,
                                 connection=conn.name)  # fmt: skip
                    self._resubscribe.add(conn.name)
                else:
                    log.info("subscription changed; reconnecting", venue=self.venue.id,
                             connection=conn.name)  # fmt: skip
                    self._close_here(open_[1], "resubscribe")

    def _close_here(self, ws: ClientConnection, reason: str) -> None:
        """Close ``ws`` ourselves: its session ends with :class:`_ClosedHere`."""
        assert self._tg is not None
        self._closing[ws] = reason
        self._tg.create_task(ws.close(code=1000, reason=reason))

    def _depth_choice(self) -> frozenset[str]:
        """The symbols whose books to follow now: the configured ``depth.symbols`` that we
        collect, else the open-interest ranking (:func:`.depth.rank`) from the current set."""
        depth, wanted = self.venue.settings.depth, self._parser().wanted
        if depth.symbols is not None:
            return frozenset(
                s for s in depth.symbols if s in self.markets and (wanted is None or s in wanted)
            )
        oi_usd: dict[str, float] = {}
        for symbol, per in self.latest.items():
            oi = per.get(Kind.OPEN_INTEREST)
            if isinstance(oi, OpenInterest) and symbol in self.markets:
                oi_usd[symbol] = oi.oi_usd
        return rank(oi_usd, self.venue.depth_symbols, depth.top_n, depth.hysteresis)

    async def _follow_depth(self) -> None:
        """Re-take :meth:`_depth_choice` every ``depth.rerank_s`` (every
        :data:`FIRST_RANK_S` while it is empty); a change rotates the depth connections to
        their new subscription (:meth:`_follow_connections`; theirs are the only subscriptions
        it changes)."""
        while True:
            checkpoint()
            venue = self.venue
            empty = not venue.depth_symbols
            await asyncio.sleep(FIRST_RANK_S if empty else venue.settings.depth.rerank_s)
            chosen = self._depth_choice()
            if chosen != venue.depth_symbols:
                log.info(
                    "depth set changed", venue=venue.id,
                    added=sorted(chosen - venue.depth_symbols),
                    removed=sorted(venue.depth_symbols - chosen),
                )  # fmt: skip
                venue.depth_symbols = chosen
                self._follow_connections()

    async def _resync(self, ws: ClientConnection, parser: Parser, conn: Connection) -> None:
        """Ask the venue, on the connection that delivered the gap, for fresh snapshots of
        the books the parser dropped (it counted why), of the symbols still in the depth set
        (a straggling delta of one that left it asks for nothing)."""
        followed = self.venue.depth_symbols
        symbols = sorted(s for s in parser.resync if s in followed)
        parser.resync = set()
        if not symbols:
            return
        if self.venue.snapshots_over_rest:
            assert self._tg is not None
            for symbol in symbols:
                key = (id(parser), symbol)
                if key not in self._snapshots:  # one fetch at a time per book
                    self._snapshots.add(key)
                    self._tg.create_task(self._book_snapshot(parser, symbol, key))
            return
        log.info("order books resubscribed", venue=self.venue.id, connection=conn.name,
                 symbols=symbols[:20])  # fmt: skip
        for message in self.venue.resubscribe(symbols):
            await ws.send(message)

    async def _book_snapshot(self, parser: Parser, symbol: str, key: tuple[int, str]) -> None:
        """Fetch ``symbol``'s book snapshot over REST and hand it to the session's ``parser``
        (it applies the updates it buffered meanwhile). A failed fetch is counted in the
        health's ``rest_failures`` (``book_snapshot``) and logged: the parser asks again
        while updates come. A session that ended meanwhile gets it too, harmlessly (its parser is
        dropped with it)."""
        try:  # (the timeout counts from its turn)
            async with self._snapshot_turn, asyncio.timeout(self.settings.rest_timeout_s):
                payload = await self.venue.fetch_book_snapshot(symbol)
        except REST_ERRORS as exc:
            self.health.rest_failures["book_snapshot"] += 1
            log.warning("order book snapshot failed", venue=self.venue.id, symbol=symbol,
                        error=str(exc)[:200])  # fmt: skip
            return
        finally:
            self._snapshots.discard(key)
        recv = now_ms()
        self._accept(parser.book_snapshot(symbol, payload, recv), recv, parsed=True)

    # -- websocket ---------------------------------------------------------------------------

    def _connection(self, name: str) -> Connection:
        """The named connection as the current metadata defines it (re-read at each connect,
        so a reconnect picks up a refreshed instrument list)."""
        for conn in self.venue.connections(self.markets):
            if conn.name == name:
                return conn
        raise LookupError(f"{self.venue.id}: no connection {name!r} any more")

    def _set_connected(self, name: str, up: bool) -> None:
        self._connected[name] = up
        self._judge_connected()

    def _judge_connected(self) -> None:
        """The venue is connected while one of its connections is up and none is down (one
        opening for the first time beside them does not count: see ``_connected``); since
        when, once it becomes so (not at a rotation's open, nor a new connection's)."""
        states = self._connected.values()
        connected = False not in states and True in states
        if connected and not self.health.connected:
            self.health.connected_since_ms = now_ms()
        self.health.connected = connected

    async def _supervise(self, name: str) -> None:
        backoff = Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s)
        while True:
            checkpoint()
            started = self.clock()
            try:
                successor = await self._session(name, None)
                while successor is not None:
                    if stopping():  # a stop the handover swallowed: the successor ends too
                        await reap(successor)
                        raise asyncio.CancelledError
                    successor = await successor
            except LookupError:  # the refreshed metadata no longer asks for this connection
                log.info("connection retired", venue=self.venue.id, connection=name)
                self._connected.pop(name, None)
                self._judge_connected()
                return
            except _ClosedHere as exc:  # at once, with what the metadata asks for now
                log.info("connection closed here; opening it again", venue=self.venue.id,
                         connection=name, reason=str(exc))  # fmt: skip
                if self.clock() - started >= self.settings.stable_session_s:
                    backoff.reset()
                continue
            except CONNECTION_ERRORS as exc:
                if _too_big(exc):
                    self.health.parse_errors[TOO_BIG] += 1
                self.health.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning(
                    "connection lost", venue=self.venue.id, connection=name,
                    error=self.health.last_error,
                )  # fmt: skip
            self._set_connected(name, False)
            self.health.reconnects_total += 1
            if self.clock() - started >= self.settings.stable_session_s:
                backoff.reset()
            delay = backoff.next_delay()
            log.info("reconnecting", venue=self.venue.id, connection=name, in_s=round(delay, 2))
            await asyncio.sleep(delay)

    async def _session(self, name: str, ready: _Handover | None) -> asyncio.Task[Any] | None:
        """Run one connection until it ends. Returns the successor connection's task when it
        handed over to one (rotation); raises when the connection was lost.

        A successor handed over is the caller's only once this returns: if closing the old
        connection is interrupted (the collector stopping, a close that fails), the successor
        is cancelled here, or it would run on unowned (seen as a collector that did not stop:
        its successor connection still reading, 1 stop in about 10 during rotations)."""
        handed: list[asyncio.Task[Any]] = []
        try:
            return await self._run_connection(name, ready, handed)
        except BaseException:
            for task in handed:
                task.cancel()
            raise

    async def _run_connection(
        self, name: str, ready: _Handover | None, handed: list[asyncio.Task[Any]]
    ) -> asyncio.Task[Any] | None:
        """:meth:`_session`'s connection; a successor it hands over is put in ``handed``
        first."""
        conn = self._connection(name)
        ping_s = QUIET_PING_S if conn.quiet else self.settings.ws_ping_s
        fresh = await open_websocket(
            conn.url, open_timeout=self.settings.open_timeout_s,
            max_size=self.venue.max_frame_bytes,
            compression=None, close_timeout=CLOSE_TIMEOUT_S,
            ping_interval=ping_s, ping_timeout=ping_s,
            additional_headers=dict(conn.headers) or None,  # picows takes a mapping only
        )  # fmt: skip
        async with closing(fresh) as ws:
            for message in conn.subscribe:
                await ws.send(message)
            opened = self.clock()
            live = _Liveness(opened)
            self._on_connected(conn)
            self._open[name] = (conn.subscribe, ws)
            deadline = opened + self.settings.max_connection_age_s
            if not self.venue.rotates:
                deadline = math.inf
            successor: asyncio.Task[Any] | None = None
            successor_ready = _Handover()
            watchdog = asyncio.create_task(self._watchdog(ws, live, conn))
            try:
                pong, recv, parser = conn.pong, ws.recv, self._parser()
                if conn.own_parser:
                    parser = self.venue.session_parser(parser)
                while True:
                    # Bytes, not str: the parsers decode JSON from bytes, so a text frame is
                    # not decoded from UTF-8 first (invalid UTF-8 is the parser's counted
                    # drop, like any unreadable frame, not a 1007 close).
                    try:
                        frame = await recv(decode=False)
                    except ConnectionClosedOK:
                        break  # a normal close (1000/1001): what `async for` would end on
                    if pong is None or len(frame) > MAX_PONG_LEN or pong not in _text(frame):
                        live.last_frame = self.clock()  # data, not the answer to our ping
                    if (self._on_frame(frame, parser) or conn.quiet) and ready is not None:
                        ready.set()  # it delivers (a quiet one: it answered its subscription)
                    if parser.resync:
                        await self._resync(ws, parser, conn)
                    sink = self.sink
                    if sink.backlogged and (not conn.quiet or sink.urgent_backlogged):
                        # Redis is behind: read no faster. The liquidations' lane reads on
                        # until the liquidations alone fill the bound: they are few, written
                        # first (the sink's urgent queue), and a lane that waited would have
                        # its pongs unread (its keep-alive would close it).
                        live.waiting = True
                        await sink.wait_for_room()
                        live.waiting = False
                        live.last_frame = self.clock()
                    if successor is None:
                        # A successor not yet handed over does not rotate itself: its own
                        # successor would be handed to it, not to the session waiting for it,
                        # which would see it end and leave that one running unowned.
                        if (ready is None or ready.taken) and self._rotation_due(
                            name, conn, deadline
                        ):
                            log.info("rotating connection", venue=self.venue.id, connection=name)
                            successor = asyncio.create_task(self._session(name, successor_ready))
                    elif successor_ready.is_set():
                        successor_ready.taken = True
                        handed.append(successor)
                        if conn.quiet:
                            await self._read_until_pong(ws, parser, conn)
                        return successor  # the new connection delivers: close this one
                    elif successor.done():
                        log.warning(
                            "rotation failed; keeping the current connection",
                            venue=self.venue.id,
                            error=repr(successor.exception()),
                        )
                        successor = None
                        deadline = self.clock() + ROTATION_RETRY_S
                if successor is not None:  # the venue closed this one mid-rotation
                    successor_ready.taken = True
                    handed.append(successor)
                    return successor
            except CONNECTION_ERRORS:
                if successor is None:
                    raise
                successor_ready.taken = True  # died mid-rotation: it takes over
                handed.append(successor)
                return successor
            finally:
                if self._open.get(name, (None, None))[1] is ws:
                    del self._open[name]
                closed_here = self._closing.pop(ws, None)
                # The watchdog, and a successor cancelled or failed before handing over, in
                # one wait: a stop that lands during it ends this task, not the wait alone.
                ending = [watchdog]
                if successor is not None and not successor_ready.taken:
                    ending.append(successor)
                await reap(*ending, allow=CONNECTION_ERRORS)
            if live.stale:
                raise TimeoutError(f"no data for {self.settings.watchdog_s} s")
            if closed_here is not None:
                raise _ClosedHere(closed_here)
            raise ConnectionResetError(f"closed by the venue: {ws.close_code} {ws.close_reason}")

    def _rotation_due(self, name: str, conn: Connection, deadline: float) -> bool:
        """Whether the session of ``conn`` rotates now: its age, or a change of its
        subscription (:attr:`_resubscribe`, checked against what the metadata asks for now:
        a flag raised while a successor was opening, or before a reconnect, may be stale)."""
        due = self.clock() >= deadline
        if name in self._resubscribe:
            self._resubscribe.discard(name)
            with contextlib.suppress(LookupError):  # (not asked for: _follow_connections)
                due = due or self._connection(name).subscribe != conn.subscribe
        return due

    async def _read_until_pong(
        self, ws: ClientConnection, parser: Parser, conn: Connection
    ) -> None:
        """A lane handing over to its successor reads what the venue sent it before the
        successor's subscription took effect: those liquidations went to this connection
        alone, and some may still be on their way when the successor's answer is read
        (two sockets, two queues at the venue). A protocol ping is answered after every
        frame the venue had written to this connection before it, so once the pong is in,
        those are in picows' queue; a venue whose gateway answers pings itself may still
        hold some inside it, so the lane reads on for :data:`HANDOVER_GRACE_S` after the
        pong, then it is closed. What the venue sent it meanwhile went to the successor too
        (the deduplicator drops the second copy). At most :data:`HANDOVER_READ_S` in all: a
        pong that does not come is logged, and the handover goes on."""
        started = self.clock()
        try:
            pong: asyncio.Future[Any] = asyncio.ensure_future(await ws.ping())  # (a future)
        except CONNECTION_ERRORS:
            return  # closed meanwhile: nothing more can be read from it
        until = started + HANDOVER_READ_S
        pong_at: float | None = None
        read = 0
        try:
            while True:
                checkpoint()
                if pong_at is None and pong.done():
                    pong_at = self.clock()
                    until = min(until, pong_at + HANDOVER_GRACE_S)
                left = until - self.clock()
                if left <= 0:
                    break
                recv: asyncio.Future[Any] = asyncio.ensure_future(ws.recv(decode=False))
                try:
                    waits = {recv} if pong_at is not None else {recv, pong}
                    await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if not recv.done():  # (a frame not taken yet stays in picows' queue)
                        await reap(recv, allow=CONNECTION_ERRORS)
                if recv.cancelled():
                    continue  # the pong came, or the time is up
                try:
                    frame = recv.result()
                except CONNECTION_ERRORS:
                    break  # the venue closed it: what it sent before is read
                read += 1
                self._on_frame(frame, parser)
        finally:
            if not pong.done():
                pong.cancel()
        if pong.cancelled() or pong.exception() is not None:  # (retrieved: not logged by asyncio)
            log.warning("handover: the old lane's pong did not come; closing it",
                        venue=self.venue.id, connection=conn.name, frames_read=read,
                        after_s=HANDOVER_READ_S)  # fmt: skip
        else:
            log.info("handover: the old lane read until its pong", venue=self.venue.id,
                     connection=conn.name, frames_read=read,
                     ms=round(1000 * (self.clock() - started)))  # fmt: skip

    def _on_connected(self, conn: Connection) -> None:
        self._set_connected(conn.name, True)
        log.info("connected", venue=self.venue.id, connection=conn.name, url=conn.url)

    async def _watchdog(self, ws: ClientConnection, live: _Liveness, conn: Connection) -> None:
        """Closes a connection that delivered nothing for ``watchdog_s``; sends the venue's
        application-level ping when it wants one."""
        limit = self.settings.watchdog_s
        tick = min(1.0, limit / 4, conn.ping_interval_s or 1.0)
        next_ping = self.clock() + (conn.ping_interval_s or 0.0)
        while True:
            checkpoint()
            await asyncio.sleep(tick)
            if conn.ping is not None and self.clock() >= next_ping:
                try:
                    await ws.send(ping_text(conn) or "")
                except CONNECTION_ERRORS:
                    return  # the session sees the closed connection itself
                next_ping = self.clock() + (conn.ping_interval_s or limit)
            if live.waiting or conn.quiet:
                # Silent because we are not reading (Redis is behind), not the venue; or a
                # quiet connection, whose liveness is its protocol pings' (Connection.quiet).
                continue
            if self.clock() - live.last_frame > limit:
                live.stale = True
                log.warning("feed stalled; reconnecting", venue=self.venue.id, after_s=limit)
                await ws.close(code=1001, reason="stale feed")
                return

    def _on_frame(self, frame: str | bytes, parser: Parser) -> bool:
        """Parse (with the session's ``parser``), check, deduplicate and hand over one frame;
        True when it carried events, new or already delivered by another connection: the
        connection delivers (a rotation's successor is ready to take over). Never raises on
        what the venue sent (the parser counts and drops it)."""
        recv = now_ms()
        self.health.messages_total += 1
        self.health.last_message_ms = recv
        drift = self.drift
        if drift is not None:  # DriftMonitor.observe, inlined: a comparison a frame
            drift.frames += 1
            if drift.frames >= drift.next_sample:
                drift.inspect(frame)
        events = parser.parse(frame, recv)
        if parser.stress:
            stress = parser.take_stress()
            if self.stress_sink is not None:
                self.stress_sink(stress)
        self._accept(events, recv, parsed=True)
        return bool(events)

    def _accept(self, events: list[Event], recv: int, *, parsed: bool = False) -> bool:
        """The storage boundary of every event, websocket or REST: drops (and counts in
        ``health.events_invalid``) those that fail :func:`service.validate.check` at
        ``recv`` (``parsed``: only its time checks, the parser applied the others), then
        those already seen, and hands the rest to the sink. True when some were handed
        over."""
        events = self.dedup.filter(self.boundary.keep(events, recv, parsed=parsed))
        if not events:
            return False
        self.health.events_total += len(events)
        self.health.last_event_ms = recv
        latest = self.latest
        late = late_liquidation = -1  # the largest delays of this frame, ms (-1: none)
        for ev in events:
            per = latest.get(ev.symbol)
            if per is None:
                per = latest[ev.symbol] = {}
            if type(ev) is Liquidation:
                per[Kind.LIQUIDATION] = ev
                self.liquidation_totals[(ev.symbol, ev.side)] += 1
                self.liquidation_notional[(ev.symbol, ev.side)] += ev.notional_usd
                if recv - ev.ts_ms > late_liquidation:
                    late_liquidation = recv - ev.ts_ms
            else:
                per[KIND_OF[type(ev)]] = ev
                if (type(ev) is MarkPrice or type(ev) is BookTop) and recv - ev.ts_ms > late:
                    late = recv - ev.ts_ms
        if parsed:  # a frame's events: how far behind the venue it was read
            if late >= 0:
                self.health.delay.note(recv, late)
            if late_liquidation >= 0:
                self.health.liquidation_delay.note(recv, late_liquidation)
        self.sink.put_nowait(events)
        self.ready.set()
        return True

    def _parser(self) -> Parser:
        assert self.parser is not None, "metadata is loaded before any connection"
        return self.parser

    # -- REST polls --------------------------------------------------------------------------

    async def _poll_open_interest(self) -> None:
        pace = 60.0 / self.venue.settings.oi_poll_weight_per_minute
        fetch = self.venue.fetch_open_interest
        while True:
            checkpoint()
            parser = self._parser()
            symbols = sorted(s for s in self.markets if parser.wanted is None or s in parser.wanted)
            polled = 0
            for symbol in symbols:
                checkpoint()
                mark = parser.last_mark.get(symbol)
                inst = self.markets.get(symbol)
                if mark is None or inst is None:
                    continue  # valued at the mark price: wait for the first mark
                started = self.clock()
                polled += 1
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
                    async with asyncio.timeout(self.settings.rest_timeout_s):
                        event = await fetch(inst, mark)
                except REST_ERRORS as exc:
                    self.health.oi_poll_failures_total += 1
                    if (
                        self.health.oi_poll_failures_total in (1, 10, 100)
                        or self.health.oi_poll_failures_total % 1000 == 0
                    ):
                        log.warning(
                            "open-interest poll failed",
                            venue=self.venue.id,
                            symbol=symbol,
                            error=str(exc)[:200],
                            failures=self.health.oi_poll_failures_total,
                        )
                else:
                    self.health.oi_polls_total += 1
                    self._accept([event], event.recv_ms)
                await asyncio.sleep(max(0.0, pace - (self.clock() - started)))
            if not polled:
                await asyncio.sleep(1.0)

    # -- drift -------------------------------------------------------------------------------

    async def _watch_drift(self, monitor: DriftMonitor) -> None:
        while True:
            checkpoint()
            await asyncio.sleep(self.settings.drift_check_s)
            self.check_drift(monitor, now_ms())

    def check_drift(self, monitor: DriftMonitor, now: int) -> None:
        """One passive drift check (:mod:`.drift`), into the health snapshot."""
        last: dict[Kind, int] = {}
        for per in self.latest.values():
            for kind, ev in per.items():
                last[kind] = max(last.get(kind, 0), ev.recv_ms)
        since = self.health.connected_since_ms if self.health.connected else None
        found = monitor.evaluate(now, last, since)
        if found != self.health.drift:
            for d in found:
                log.warning("protocol drift suspected", venue=self.venue.id, channel=d.channel,
                            reason=d.reason, detail=d.detail)  # fmt: skip
        self.health.drift, self.health.drift_checked_ms = found, now

    # -- health ------------------------------------------------------------------------------

    async def _publish_health(self) -> None:
        while True:
            checkpoint()
            await self._write_health()
            await asyncio.sleep(1.0)

    async def _write_health(self) -> None:
        await write_health(self.redis, self.health)


def _too_big(exc: BaseException) -> bool:
    """Whether the connection was closed because the venue sent a frame over ``max_size``."""
    return isinstance(exc, ConnectionClosed) and (
        exc.sent is not None and exc.sent.code == WSCloseCode.MESSAGE_TOO_BIG
    )
