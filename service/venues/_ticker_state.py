"""A ticker's merged state and its once-a-second reports, for venues whose ticker frames carry
mark, funding and open interest together (Bitget, Gate, Bybit), and, where the ticker has them,
the best bid and ask (Bybit, Bitget; Gate's from its ``futures.book_ticker``).

A venue's parser converts a frame's fields to numbers (raising before anything is merged),
:meth:`TickerState.apply`\\ s them, and :func:`report` turns the parts that changed and are due
into events. Open interest is in the instrument's native unit (contracts of
``Instrument.contract_size``) and is valued at the mark, so it waits for one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from ..events import Event
from . import _stamp
from .base import Instrument

MARK: Final = "mark"
FUNDING: Final = "funding"
OI: Final = "open_interest"
BOOK: Final = "book_top"
STATE_EVERY_MS: Final = 1000
"""Mark, funding, open-interest and top-of-book events: at most one per symbol and kind per
second."""


@dataclass(slots=True)
class TickerState:
    """One symbol's ticker as last known, which parts changed since they were reported, and
    when each part was last reported."""

    mark: float | None = None
    index: float | None = None
    open_interest: float | None = None
    funding_rate: float | None = None
    next_funding_ms: int | None = None
    interval_h: float | None = None
    """The funding interval when the venue sends it with the ticker (``None``: the
    instrument's ``funding_interval_h``)."""
    bid: float | None = None
    bid_qty: float | None = None
    """Native units (contracts of ``Instrument.contract_size``) at the best bid."""
    ask: float | None = None
    ask_qty: float | None = None
    changed: set[str] = field(default_factory=set)
    reported_ms: dict[str, int] = field(default_factory=dict)

    def contracts(self, inst: Instrument) -> float | None:
        """The open interest in contracts of ``inst.contract_size`` (here: as sent)."""
        return self.open_interest

    def apply(
        self,
        *,
        mark: float | None = None,
        index: float | None = None,
        open_interest: float | None = None,
        funding_rate: float | None = None,
    ) -> None:
        """Merge the values given (``None``: absent from the frame, unchanged)."""
        if mark is not None:
            self.mark = mark
        if index is not None:
            self.index = index
        if mark is not None or index is not None:
            self.changed.add(MARK)
        if open_interest is not None:
            self.open_interest = open_interest
            self.changed.add(OI)
        if funding_rate is not None:
            self.funding_rate = funding_rate
            self.changed.add(FUNDING)

    def apply_book(self, present: Mapping[str, float | None]) -> None:
        """Merge the top-of-book fields a frame carried (``bid``, ``bid_qty``, ``ask``,
        ``ask_qty``; absent: unchanged; ``None``: sent empty, the side is gone)."""
        if not present:
            return
        self.bid = present.get("bid", self.bid)
        self.bid_qty = present.get("bid_qty", self.bid_qty)
        self.ask = present.get("ask", self.ask)
        self.ask_qty = present.get("ask_qty", self.ask_qty)
        self.changed.add(BOOK)

    def set_next_funding(self, next_ms: int | None) -> None:
        """The coming settlement (``None``: none, e.g. a dated future); a funding change."""
        self.next_funding_ms = next_ms
        self.changed.add(FUNDING)

    def due(self, ts: int, every_ms: int) -> set[str]:
        """The changed parts not reported in the ``every_ms`` before ``ts``
        (:func:`._stamp.held_back`)."""
        reported = self.reported_ms
        return {
            part for part in self.changed if not _stamp.held_back(ts, reported.get(part), every_ms)
        }


def report(
    venue: str, inst: Instrument, st: TickerState, ts: int, recv_ms: int, every_ms: int
) -> list[Event]:
    """Events for the changed parts of ``st`` that are due at ``ts``, from the merged state;
    funding per ``inst.funding_interval_h``, open interest valued at the mark."""
    out: list[Event] = []
    due = st.due(ts, every_ms)
    mark, rate, oi = st.mark, st.funding_rate, st.contracts(inst)
    if MARK in due and mark is not None:
        out.append(_stamp.mark(venue, inst, ts, recv_ms, mark, st.index))
    if FUNDING in due and rate is not None:
        out.append(
            _stamp.funding(
                venue,
                inst,
                ts,
                recv_ms,
                rate,
                st.interval_h or inst.funding_interval_h,
                st.next_funding_ms,
            )
        )
    if OI in due and oi is not None and mark:
        out.append(_stamp.open_interest(venue, inst, ts, recv_ms, oi, mark))
    book = None
    if BOOK in due:
        book = _book(st)
        if book is not None:
            out.append(_stamp.book_top(venue, inst, ts, recv_ms, *book))
    for part, value in (
        (MARK, mark),
        (FUNDING, rate),
        (OI, oi if mark else None),
        (BOOK, book),
    ):
        if part not in due:
            continue
        if value is not None:
            st.reported_ms[part] = ts
            st.changed.discard(part)
        elif part != OI:  # nothing to report, e.g. a dated future's funding ("")
            st.changed.discard(part)
    return out


def _book(st: TickerState) -> tuple[float, float, float, float] | None:
    """``(bid, bid_qty, ask, ask_qty)`` when the state has a two-sided top, else ``None``
    (one side empty: a venue sends ``""`` or ``0`` for an empty side; no spread to report)."""
    bid, bid_qty, ask, ask_qty = st.bid, st.bid_qty, st.ask, st.ask_qty
    if not bid or not ask or bid_qty is None or ask_qty is None:
        return None
    return bid, bid_qty, ask, ask_qty
