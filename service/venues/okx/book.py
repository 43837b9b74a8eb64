"""An OKX ``books`` order book: :class:`~.._book.Book` plus each level's text as sent, which
the venue's CRC32 ``checksum`` is computed from (the text, not the number: ``"415"`` and
``"415.0"`` differ), and that checksum.

The checksum (OKX's docs, "Checksum"): the best 25 bids and 25 asks interleaved, bid then
ask at each rank (``"bidPx:bidSz:askPx:askSz:..."``; a side that runs out leaves the other's
remaining levels), CRC32 of that string as a *signed* 32-bit integer. OKX deprecated the
field on 2026-06-23 (production): it stays on the wire as ``0``, which is not a checksum and
is not checked; a non-zero one (the demo before, a venue that still sends it) is. A book
whose snapshot carried ``0`` keeps no texts (production's path: the numbers only, about half
the cost of an update).
"""

from __future__ import annotations

import heapq
import zlib
from typing import Final

from .._book import INVALID_LEVEL, Book
from ..base import ParseError

CHECKSUM_LEVELS: Final = 25
_INF: Final = float("inf")


class OkxBook(Book):
    """One instrument's book, with the text of each level it holds when its checksum is
    checked (for the checksum)."""

    __slots__ = ("ask_texts", "bid_texts", "checked")

    def __init__(self, update_id: int, *, checked: bool = True) -> None:
        super().__init__(update_id)
        self.checked = checked
        """Whether the texts are kept and the checksum checked: the snapshot carried one
        (not ``0``). A book without is never checked (its texts were not kept)."""
        self.bid_texts: dict[float, str] = {}
        """``"price:size"`` as sent, by price."""
        self.ask_texts: dict[float, str] = {}

    def apply_rows(self, bids: list[list[str]], asks: list[list[str]]) -> None:
        """Set each ``[price, size, ...]`` row's level (size ``"0"``: delete it). Raises
        :class:`ParseError` (:data:`INVALID_LEVEL`) on a row that is no price and size, the
        rows before it applied: the caller drops the book."""
        checked = self.checked
        for side, texts, rows in (
            (self.bids, self.bid_texts, bids),
            (self.asks, self.ask_texts, asks),
        ):
            for row in rows:
                try:
                    px, sz = row[0], row[1]
                    price, size = float(px), float(sz)
                except (IndexError, ValueError):
                    raise ParseError(INVALID_LEVEL) from None
                if not (0.0 < price < _INF and 0.0 <= size < _INF):  # NaN fails too
                    raise ParseError(INVALID_LEVEL)
                if size:
                    side[price] = size
                    if checked:
                        texts[price] = f"{px}:{sz}"
                else:
                    side.pop(price, None)
                    if checked:
                        texts.pop(price, None)

    def checksum(self) -> int:
        """OKX's checksum of the book now (see the module docstring)."""
        bids = heapq.nlargest(CHECKSUM_LEVELS, self.bids)
        asks = heapq.nsmallest(CHECKSUM_LEVELS, self.asks)
        bid_texts, ask_texts = self.bid_texts, self.ask_texts
        parts: list[str] = []
        for i in range(max(len(bids), len(asks))):
            if i < len(bids):
                parts.append(bid_texts[bids[i]])
            if i < len(asks):
                parts.append(ask_texts[asks[i]])
        return signed_crc32(":".join(parts))

    def prune_texts(self) -> None:
        """Forget the texts of levels :meth:`~.._book.Book.depth` trimmed from the sides."""
        if not self.checked:
            return
        bids, asks = self.bids, self.asks
        self.bid_texts = {p: t for p, t in self.bid_texts.items() if p in bids}
        self.ask_texts = {p: t for p, t in self.ask_texts.items() if p in asks}


def signed_crc32(text: str) -> int:
    """CRC32 of ``text`` (UTF-8) as a signed 32-bit integer, as OKX sends it."""
    crc = zlib.crc32(text.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc
