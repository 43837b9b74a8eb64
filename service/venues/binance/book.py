"""Binance futures' local order books: the diff stream ``<symbol>@depth@500ms`` kept against a
REST snapshot, the venue's documented procedure ("How to manage a local order book
correctly", https://developers.binance.com/docs/derivatives/usds-margined-futures/
websocket-market-streams/How-to-manage-a-local-order-book-correctly and its COIN-M twin,
checked 2026-12-06), reporting :class:`~service.events.BookDepth` at most once a second.

Why the diff stream and not the partial ``@depth20``: 20 levels of BTCUSDT span a few ticks
(a few basis points), far inside the 0.5/1/2 % bands; the diff stream over a 1000-level
snapshot (``GET /fapi/v1/depth?limit=1000``, ``/dapi/v1/depth`` on COIN-M, weight 20) reaches
1-2 % of mid. Why ``@500ms`` and not ``@100ms``: a book is reported once a second, and a
diff carries the levels' latest sizes (absolute, not increments), so five pushes a second
cost five times the frames for no more information.

The procedure, as this module applies it per symbol:

1. Diffs that arrive while the symbol has no book (the connection opened, or the book was
   dropped) are buffered (at most :data:`MAX_PENDING`, oldest dropped: the snapshot they
   wait for is newer anyway) and a snapshot is asked for (:attr:`Parser.resync
   <service.venues.base.Parser.resync>`; the collector fetches it over REST and hands it to
   :meth:`DepthBooks.snapshot`), at most every :data:`RESYNC_EVERY_MS`.
2. On the snapshot: buffered diffs with ``u < lastUpdateId`` are dropped; the first one
   applied must follow the snapshot: the docs ask ``U <= lastUpdateId <= u``; we accept
   ``pu <= lastUpdateId <= u``, which the docs' condition implies (``pu < U``) and which
   says the same (no update of this book lies between the previous diff's ``u`` and its
   ``U``). A first diff that starts after the snapshot means the snapshot is older than the
   buffered stream: it is dropped, counted (:data:`BOOK_STALE_SNAPSHOT`) and asked again.
3. Then each diff's ``pu`` must be the previous diff's ``u``; else levels were missed: the
   book is dropped, counted (:data:`~.._book.BOOK_GAP`) and a new snapshot asked for, on the
   same connection (its stream goes on: nothing reconnects).

A diff carries every changed level of the whole book, so a book grows past the snapshot's
depth; it is trimmed to it each time it reports (:meth:`~.._book.Book.depth`). Sizes are
base coin on USDⓈ-M and contracts of ``contractSize`` USD on COIN-M: the instrument values
them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec

from ...events import Event
from .._book import BOOK_CROSSED, BOOK_GAP, BOOK_UNREADABLE, Book
from ..base import Instrument, ParseError

RESYNC_EVERY_MS: Final = 5000
"""A book without a snapshot asks for one at most this often (a fetch that failed, or whose
answer was too old, is asked again after this long)."""
MAX_PENDING: Final = 120
"""Diffs kept per symbol while its snapshot is awaited: a minute at 500 ms."""
BOOK_STALE_SNAPSHOT: Final = "orderbook_snapshot_stale"
"""The parse-error reason of a snapshot older than the first diff buffered after it (the
buffered stream starts after ``lastUpdateId``): dropped, and another one asked for."""
SNAPSHOT_LIMITS: Final = (5, 10, 20, 50, 100, 500, 1000)
"""The ``limit`` values ``GET /fapi/v1/depth`` and ``/dapi/v1/depth`` accept."""


class DepthUpdate(msgspec.Struct):
    """``{"e":"depthUpdate","E":123456789,"T":123456788,"s":"BTCUSDT","U":157,"u":160,
    "pu":149,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}`` (COIN-M adds ``"ps"``; decoded
    non-strict: the levels' text straight to floats)."""

    E: int
    s: str
    U: int
    u: int
    pu: int
    b: list[tuple[float, float]]
    a: list[tuple[float, float]]


class Snapshot(msgspec.Struct):
    """``GET /fapi/v1/depth``: ``{"lastUpdateId":1027024,"E":1589436922972,
    "T":1589436922959,"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200",
    "12.00000000"]]}`` (COIN-M adds ``symbol`` and ``pair``)."""

    lastUpdateId: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    E: int = 0


depth_update = msgspec.json.Decoder(DepthUpdate, strict=False)
_snapshot = msgspec.json.Decoder(Snapshot, strict=False)


def snapshot_limit(levels: int) -> int:
    """The snapshot ``limit`` that covers ``levels`` a side (at most 1000)."""
    return next((n for n in SNAPSHOT_LIMITS if n >= levels), SNAPSHOT_LIMITS[-1])


def decode_snapshot(payload: object) -> Snapshot:
    """A REST depth body (text, bytes, or ccxt's decoded JSON); raises ``ValueError``
    (msgspec's errors are ValueErrors) when it is not one."""
    if isinstance(payload, (bytes, str)):
        return _snapshot.decode(payload)
    return msgspec.convert(payload, Snapshot, strict=False)


class DepthBooks:
    """One session's local books (by symbol), what waits for a snapshot, and when each
    symbol's depth was last reported (shared by a depth connection's sessions)."""

    def __init__(
        self, venue: str, count: Callable[[str, object], None], ask: Callable[[str], None]
    ) -> None:
        self.venue = venue
        self.count = count
        """Counts a drop: ``count(reason, detail)`` (into the parser's stats as they are when
        it drops: a session's parser takes its collector's after it is built)."""
        self.ask = ask
        """Asks the collector for a snapshot of a symbol (the parser's ``resync``)."""
        self.books: dict[str, Book] = {}
        self.fresh: set[str] = set()
        """Books whose next diff is the first after their snapshot (``pu`` not chained)."""
        self.pending: dict[str, list[DepthUpdate]] = {}
        self.asked_ms: dict[str, int] = {}
        self.reported_ms: dict[str, int] = {}
        self.levels = SNAPSHOT_LIMITS[-1]
        """The snapshot's depth: a book reports its best ``levels`` a side."""

    def update(self, inst: Instrument, d: DepthUpdate, recv_ms: int) -> list[Event]:
        """Apply a diff to its book (or buffer it); the book's depth when one is due."""
        symbol = d.s
        book = self.books.get(symbol)
        if book is None:
            self._buffer(d, recv_ms)
            return []
        if symbol in self.fresh:
            if d.u < book.update_id:
                return []  # in the snapshot already
            self.fresh.discard(symbol)
            if d.pu > book.update_id:  # the snapshot is older than the stream's start
                detail = f"{symbol} snapshot {book.update_id} < pu {d.pu}"
                return self._drop(symbol, BOOK_STALE_SNAPSHOT, detail, d, recv_ms)
        elif d.pu != book.update_id:
            detail = f"{symbol} u {book.update_id} -> pu {d.pu}"
            return self._drop(symbol, BOOK_GAP, detail, d, recv_ms)
        return self._apply(inst, book, d, recv_ms)

    def snapshot(self, inst: Instrument, payload: object, recv_ms: int) -> list[Event]:
        """A REST snapshot of ``inst``'s book: the book, with the buffered diffs that follow
        it applied; its depth when due. A body that does not decode is counted
        (:data:`~.._book.BOOK_UNREADABLE`) and asked again later."""
        symbol = inst.symbol
        try:
            snap = decode_snapshot(payload)
        except ValueError:
            self.count(BOOK_UNREADABLE, payload)
            return []
        book = Book(snap.lastUpdateId)
        book.reported_ms = self.reported_ms.get(symbol, book.reported_ms)
        try:
            book.apply(snap.bids, snap.asks)
        except ParseError as exc:
            self.count(exc.reason, symbol)
            return []
        self.books[symbol] = book
        self.fresh.add(symbol)
        self.asked_ms.pop(symbol, None)
        out: list[Event] = []
        for d in self.pending.pop(symbol, []):
            out += self.update(inst, d, recv_ms)
        return out

    def _apply(self, inst: Instrument, book: Book, d: DepthUpdate, recv_ms: int) -> list[Event]:
        book.update_id = d.u
        try:
            book.apply(d.b, d.a)
        except ParseError as exc:
            return self._drop(d.s, exc.reason, d.s, None, recv_ms)
        if not book.due(d.E, self.reported_ms.get(d.s)):
            return []
        depth = book.depth(self.venue, inst, d.E, recv_ms, self.levels)
        if depth is None:
            if book.bids and book.asks:  # both sides, yet no depth: crossed
                return self._drop(d.s, BOOK_CROSSED, d.s, None, recv_ms)
            return []  # a side emptied: no mid until it is quoted again
        self.reported_ms[d.s] = d.E
        return [depth]

    def _drop(
        self, symbol: str, reason: str, detail: object, d: DepthUpdate | None, recv_ms: int
    ) -> list[Event]:
        """Forget ``symbol``'s book, count ``reason``, ask for a snapshot; ``d`` (the diff
        that showed the gap) is the first of the new buffer."""
        self.books.pop(symbol, None)
        self.fresh.discard(symbol)
        self.count(reason, detail)
        self.asked_ms.pop(symbol, None)
        if d is not None:
            self._buffer(d, recv_ms)
        else:
            self._ask(symbol, recv_ms)
        return []

    def _buffer(self, d: DepthUpdate, recv_ms: int) -> None:
        pending = self.pending.setdefault(d.s, [])
        pending.append(d)
        if len(pending) > MAX_PENDING:
            del pending[0]
        self._ask(d.s, recv_ms)

    def _ask(self, symbol: str, recv_ms: int) -> None:
        asked = self.asked_ms.get(symbol)
        if asked is None or recv_ms - asked >= RESYNC_EVERY_MS:
            self.asked_ms[symbol] = recv_ms
            self.ask(symbol)
