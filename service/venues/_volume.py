"""Traded volume per instrument and second, summed from a venue's trade prints.

A venue's trades channel pushes every print (Bybit ``publicTrade``, Bitget ``publicTrade``
/ ``trade``, Deribit ``trades``): hundreds a second on a busy contract. Storing them would
multiply the store's load; what the detector needs is how much traded, and on which side.
So a parser :meth:`Volumes.add`\\ s each print to its instrument's open second, and a second
becomes one :class:`~service.events.Volume` event once it is closed: at most one event per
instrument and second, and none for a second without trades (storage is bounded by the
instruments that trade, not by the prints).

When a second closes: when a print of a later second arrives for the same instrument, or
when a frame arrives (any channel: tickers keep coming every 100 ms) :data:`CLOSE_AFTER_MS`
after the second's end, by our receive clock (the venue's batching and the network have
delivered its prints by then), or at :meth:`Volumes.flush` (the collector stopping). A print
that arrives after its second was closed is not lost: it counts in the instrument's next
second (:meth:`Volumes.add`), so an instrument's events stay one a second, in order, which
the collector's deduplicator relies on (a state-like event is kept only if newer).

A print is counted once: the venues give each a trade id, and one that came in the last
:data:`ID_WINDOW_S` to :data:`ID_WINDOW_S` x 2 seconds (of the prints' own time) is dropped
and counted (:attr:`Volumes.duplicates`). The collector's make-before-break rotation has two
connections of one venue subscribed to the same trades for a moment, and each delivers every
print: summed as they come, the overlap would count twice.

Pure: no clock, no I/O. The parser's :meth:`~.base.Parser.parse` calls :meth:`Volumes.due`
with each frame's receive time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ..events import Volume

if TYPE_CHECKING:  # (base builds a parser's Volumes)
    from .base import Instrument

CLOSE_AFTER_MS: Final = 1000
"""A second's prints are summed until this long after it ended (our receive time): Deribit
batches its prints every 100 ms, and a venue's clock and the network add a few hundred."""
_NEVER: Final = 1 << 62
MAX_AHEAD_MS: Final = 60_000
"""A print whose time is more than this ahead of our receive clock is no print of now (a
time in another unit, a venue clock gone wrong): dropped and counted (:data:`PRINT_AHEAD`).
Summed, it would open its instrument's second in the future and every later print of the
instrument would be summed into that second, reported only when it comes (a time in
microseconds: never), and the trade ids' generations would stop turning."""
PRINT_AHEAD: Final = "trade_time_ahead"
"""The parse-error reason of a print dropped by :data:`MAX_AHEAD_MS`."""
TRADE: Final = "trade"
"""The kind a print dropped by its trade id is counted as (:attr:`.base.ParseStats.duplicates`)."""
ID_WINDOW_S: Final = 10
"""The trade ids of the last 10 to 20 s are remembered (two generations of 10 s): a rotation's
overlap lasts about a second."""


class _Second:
    """One instrument's open second: what its prints add up to so far."""

    __slots__ = ("buy_base", "buy_usd", "inst", "second", "sell_base", "sell_usd", "trades")

    def __init__(self, inst: Instrument, second: int) -> None:
        self.inst = inst
        self.second = second
        self.buy_base = self.buy_usd = self.sell_base = self.sell_usd = 0.0
        self.trades = 0


class Volumes:
    """The open seconds of one parser's instruments (one per instrument at most)."""

    __slots__ = (
        "_closed", "_ids", "_ids_before", "_ids_until", "_open", "ahead", "count",
        "duplicate", "duplicates", "next_due_ms", "venue",
    )  # fmt: skip

    def __init__(
        self,
        venue: str,
        count: Callable[[str, object], None] | None = None,
        duplicate: Callable[[], None] | None = None,
    ) -> None:
        self.venue = venue
        self.count = count
        """Counts and logs a dropped print: ``count(reason, detail)`` (the parser's stats)."""
        self.duplicate = duplicate
        """Counts a print dropped by its trade id elsewhere too (the parser's stats)."""
        self._open: dict[str, _Second] = {}
        self._closed: dict[str, int] = {}
        """Per symbol, the last second reported: a later print never reopens it."""
        self.next_due_ms = _NEVER
        """The receive time from which :meth:`due` has a second to close (a bound: checked
        with one comparison a frame)."""
        self._ids: set[int] = set()
        self._ids_before: set[int] = set()
        self._ids_until = 0
        """The second from which :attr:`_ids` becomes the older generation."""
        self.duplicates = 0
        """Prints dropped because their trade id was counted already."""
        self.ahead = 0
        """Prints dropped because their time was ahead of the receive clock
        (:data:`MAX_AHEAD_MS`)."""

    def add(
        self, inst: Instrument, ts_ms: int, taker_buy: bool, quantity: float, price: float,
        recv_ms: int, trade_id: str | int | None = None,
    ) -> Volume | None:  # fmt: skip
        """Count one print of ``quantity`` native units at ``price``, by a buying taker when
        ``taker_buy``, at the venue's ``ts_ms``, once per ``trade_id`` (the venue's, unique
        per instrument; ``None``: no check). Returns the instrument's previous second when
        this print is of a later one (it is closed: no print can follow it in order). A print
        more than :data:`MAX_AHEAD_MS` ahead of ``recv_ms`` is dropped and counted."""
        if ts_ms - recv_ms > MAX_AHEAD_MS:
            self.ahead += 1
            if self.count is not None:
                self.count(PRINT_AHEAD, f"{inst.symbol} ts {ts_ms} received {recv_ms}")
            return None
        second = ts_ms // 1000
        symbol = inst.symbol
        if trade_id is not None:
            if second >= self._ids_until:  # a new generation: the oldest is forgotten
                recent = second < self._ids_until + ID_WINDOW_S  # (else both are old)
                self._ids_before = self._ids if recent else set()
                self._ids = set()
                self._ids_until = second + ID_WINDOW_S
            key = hash((symbol, trade_id))
            if key in self._ids or key in self._ids_before:
                self.duplicates += 1
                if self.duplicate is not None:
                    self.duplicate()
                return None
            self._ids.add(key)
        closed = self._closed.get(symbol)
        if closed is not None and second <= closed:
            second = closed + 1  # late for its second: it counts in the next one
        cur = self._open.get(symbol)
        out = None
        if cur is None or cur.second < second:
            if cur is not None:
                out = self._close(cur, recv_ms)
            cur = self._open[symbol] = _Second(inst, second)
            due = (second + 1) * 1000 + CLOSE_AFTER_MS
            if due < self.next_due_ms:
                self.next_due_ms = due
        # (a print of an earlier second than the open one, out of order: counted in it)
        usd = inst.notional_usd(quantity, price)
        base = inst.base_units(quantity, price)
        if taker_buy:
            cur.buy_base += base
            cur.buy_usd += usd
        else:
            cur.sell_base += base
            cur.sell_usd += usd
        cur.trades += 1
        return out

    def due(self, recv_ms: int) -> list[Volume]:
        """The seconds that ended :data:`CLOSE_AFTER_MS` or more before ``recv_ms``, closed
        (call it when ``recv_ms >= next_due_ms``)."""
        out: list[Volume] = []
        nxt = _NEVER
        cutoff = (recv_ms - CLOSE_AFTER_MS) // 1000  # seconds before this one have ended
        for symbol, cur in list(self._open.items()):
            if cur.second < cutoff:
                del self._open[symbol]
                out.append(self._close(cur, recv_ms))
            else:
                nxt = min(nxt, (cur.second + 1) * 1000 + CLOSE_AFTER_MS)
        self.next_due_ms = nxt
        return out

    def flush(self, recv_ms: int) -> list[Volume]:
        """Every open second, closed now (the collector stopping: what was counted is kept)."""
        out = [self._close(cur, recv_ms) for cur in self._open.values()]
        self._open.clear()
        self.next_due_ms = _NEVER
        return out

    def _close(self, cur: _Second, recv_ms: int) -> Volume:
        inst = cur.inst
        self._closed[inst.symbol] = cur.second
        return Volume(
            venue=self.venue,
            symbol=inst.symbol,
            base=inst.base,
            ts_ms=cur.second * 1000,
            recv_ms=recv_ms,
            taker_buy_base=cur.buy_base,
            taker_buy_usd=cur.buy_usd,
            taker_sell_base=cur.sell_base,
            taker_sell_usd=cur.sell_usd,
            trades=cur.trades,
        )
