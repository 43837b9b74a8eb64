"""A local order book per instrument, for venues whose book channel sends a snapshot then
deltas of price levels (Bybit ``orderbook.{depth}.{symbol}``), and the depth it reports: the
USD within 0.5, 1 and 2 % of mid on each side (:class:`~service.events.BookDepth`).

Each side is a dict from price to size: a delta touches a few levels (a dict update each);
the levels are sorted only when a depth is reported, at most once a second per instrument
(200 levels a side: about 20 µs), so the per-frame cost is the levels the frame carries.
The venue sends its best ``levels`` a side; a book keeps no more than that (the rest is
trimmed when it reports), so its memory is bounded whatever the deltas do.

What a venue's sequence numbers mean, and what to do on a gap, is the venue parser's
business (:mod:`.bybit.venue`): a book only applies levels and reports. A venue whose channel
sends a whole snapshot each push (Bitget ``books15``) fills a new book from each one.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any, Final

from ..events import DEPTH_BANDS_PCT, BookDepth, Event
from ._stamp import held_back
from .base import Instrument, ParseError, Parser

DEPTH_EVERY_MS: Final = 1000
"""A book's depth is reported at most once a second (the venue's time): latest-state."""
INVALID_LEVEL: Final = "invalid_orderbook_level"
"""The parse-error reason of a level whose price is not positive and finite, or whose size
is negative or not finite."""
BOOK_CROSSED: Final = "orderbook_crossed"
"""The parse-error reason of a book whose best bid reached its best ask: levels were missed
(a delta book: dropped and resubscribed) or the venue sent a bad snapshot (dropped)."""
BOOK_GAP: Final = "orderbook_gap"
"""The parse-error reason of an update that does not follow the book's sequence (Bybit ``u``,
OKX ``prevSeqId``): the book is dropped and resubscribed."""
BOOK_UNSYNCED: Final = "orderbook_delta_before_snapshot"
"""The parse-error reason of an update of a book with no snapshot yet (after a drop)."""
BOOK_UNREADABLE: Final = "invalid_orderbook"
"""The parse-error reason of a book frame or row that does not decode."""
RESYNC_EVERY_MS: Final = 5000
"""A fresh snapshot of a book is asked for at most this often (receive time): the updates of
a book that has none keep arriving until the venue's new snapshot does."""
_INF: Final = float("inf")
_BAND_FRACTIONS: Final = tuple(b / 100 for b in DEPTH_BANDS_PCT)

Levels = Iterable[tuple[float, float]]
"""``(price, size)`` pairs; a size of 0 deletes the level."""


class Book:
    """One instrument's order book: the levels received, and when its depth was reported."""

    __slots__ = ("asks", "bids", "reported_ms", "update_id")

    def __init__(self, update_id: int) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.update_id = update_id
        """The venue's id of the last update applied (Bybit ``u``)."""
        self.reported_ms = -DEPTH_EVERY_MS
        """The venue time of the last depth reported (never: one is due at once)."""

    def apply(self, bids: Levels, asks: Levels) -> None:
        """Set each level's size (0: delete it). Raises :class:`ParseError`
        (:data:`INVALID_LEVEL`) on a price or size that is no real one, the levels before
        it applied: the caller drops the book."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, size in levels:
                if not (0.0 < price < _INF and 0.0 <= size < _INF):
                    raise ParseError(INVALID_LEVEL)
                if size:
                    side[price] = size
                else:
                    side.pop(price, None)

    def due(self, ts_ms: int, shared_ms: int | None = None) -> bool:
        """Whether a depth may be reported at venue time ``ts_ms``: a second after the last
        one, or when the last one is timed far after it (:func:`._stamp.held_back`).
        ``shared_ms``: the instrument's last report by any session of the connection
        (:attr:`.base.Parser.depth_reported_ms`): in a rotation's overlap two sessions keep
        books of their own, and the reports stay one a second only if each heeds the other's
        (seen as two depths 100 ms apart in the store, under load)."""
        last = self.reported_ms if shared_ms is None else max(self.reported_ms, shared_ms)
        return not held_back(ts_ms, last, DEPTH_EVERY_MS)

    def depth(
        self, venue: str, inst: Instrument, ts_ms: int, recv_ms: int, levels: int
    ) -> BookDepth | None:
        """The book's depth now, valued with ``inst``, from its best ``levels`` a side (the
        venue's depth: the ones beyond it are trimmed); ``None`` when a side is empty or the
        book is crossed (best bid at or above best ask: levels were missed). Marks it
        reported at ``ts_ms``."""
        bids = sorted(self.bids.items(), reverse=True)
        asks = sorted(self.asks.items())
        if len(bids) > levels:
            for price, _ in bids[levels:]:
                del self.bids[price]
            del bids[levels:]
        if len(asks) > levels:
            for price, _ in asks[levels:]:
                del self.asks[price]
            del asks[levels:]
        if not bids or not asks or bids[0][0] >= asks[0][0]:
            return None
        self.reported_ms = ts_ms
        mid = (bids[0][0] + asks[0][0]) / 2
        bid = _bands(bids, [mid * (1 - f) for f in _BAND_FRACTIONS], inst, below=True)
        ask = _bands(asks, [mid * (1 + f) for f in _BAND_FRACTIONS], inst, below=False)
        return BookDepth(
            venue=venue,
            symbol=inst.symbol,
            base=inst.base,
            ts_ms=ts_ms,
            recv_ms=recv_ms,
            mid=mid,
            bid_usd_0p5=bid[0],
            bid_usd_1=bid[1],
            bid_usd_2=bid[2],
            ask_usd_0p5=ask[0],
            ask_usd_1=ask[1],
            ask_usd_2=ask[2],
            bid_reach_pct=(mid - bids[-1][0]) / mid * 100,
            ask_reach_pct=(asks[-1][0] - mid) / mid * 100,
        )


def _bands(
    side: list[tuple[float, float]], edges: list[float], inst: Instrument, *, below: bool
) -> list[float]:
    """The USD of ``side`` (best first) up to each of ``edges`` (nearest first), edges
    included: cumulative sums, one pass."""
    out: list[float] = []
    total = 0.0
    band = 0
    edge = edges[0]
    linear = inst.linear
    for price, size in side:
        while (price < edge) if below else (price > edge):
            out.append(total)
            band += 1
            if band == len(edges):
                break
            edge = edges[band]
        if band == len(edges):
            break
        total += size * price if linear else size
    out.extend([total] * (len(edges) - len(out)))
    return [x * inst.contract_size for x in out]


class Resyncs:
    """A parser's asks for fresh snapshots of its books: the keys its collector resubscribes
    (:attr:`~.base.Parser.resync`), each at most every :data:`RESYNC_EVERY_MS`. What a gap
    is, is the venue parser's business; what follows one is the same on every venue."""

    __slots__ = ("_asked_ms", "_parser")

    def __init__(self, parser: Parser) -> None:
        self._parser = parser
        self._asked_ms: dict[str, int] = {}

    def ask(self, key: str, recv_ms: int) -> None:
        """Ask for a fresh snapshot of ``key``'s book, unless that was done within
        :data:`RESYNC_EVERY_MS`."""
        asked = self._asked_ms.get(key)
        if asked is None or recv_ms - asked >= RESYNC_EVERY_MS:
            self._asked_ms[key] = recv_ms
            self._parser.resync.add(key)

    def drop(
        self, books: MutableMapping[str, Any], key: str, reason: str, detail: object, recv_ms: int
    ) -> list[Event]:
        """Forget ``key``'s book, count ``reason`` (a logged drop), ask for a fresh snapshot
        at once; no events."""
        del books[key]
        self._parser.stats.error(self._parser.venue, reason, detail)
        self._asked_ms.pop(key, None)
        self.ask(key, recv_ms)
        return []
