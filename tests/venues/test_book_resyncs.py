"""What follows a book's gap is the same on every venue (:class:`service.venues._book.Resyncs`):
the book is forgotten, the reason counted, a fresh snapshot asked for at once; updates of a
book that has none ask again, at most every ``RESYNC_EVERY_MS``."""

from __future__ import annotations

from service.events import Event
from service.venues._book import BOOK_GAP, RESYNC_EVERY_MS, Book, Resyncs
from service.venues.base import Parser


class _Parser(Parser):
    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        return []


def test_asks_are_throttled_per_book_and_a_drop_asks_at_once() -> None:
    parser = _Parser("venue", {}, None)
    resyncs = Resyncs(parser)
    resyncs.ask("BTC", 1_000)
    assert parser.resync == {"BTC"}
    parser.resync.clear()  # the collector took it
    resyncs.ask("BTC", 1_000 + RESYNC_EVERY_MS - 1)  # too soon: not asked again
    resyncs.ask("ETH", 1_500)  # another book: its own clock
    assert parser.resync == {"ETH"}
    parser.resync.clear()
    resyncs.ask("BTC", 1_000 + RESYNC_EVERY_MS)
    assert parser.resync == {"BTC"}
    parser.resync.clear()

    books = {"BTC": Book(7), "ETH": Book(9)}
    out = resyncs.drop(books, "BTC", BOOK_GAP, "BTC u 7 -> 9", 1_000 + RESYNC_EVERY_MS + 1)
    assert out == []
    assert set(books) == {"ETH"}  # forgotten; the other book kept
    assert parser.stats.errors == {BOOK_GAP: 1}  # counted
    assert parser.resync == {"BTC"}  # asked at once, though it was asked 1 ms before
