"""A BitMEX ``orderBookL2`` book: :class:`~.._book.Book` plus what each level's ``id`` names.

``orderBookL2`` is a table like the others (keys ``symbol``, ``id``, ``side``): a ``partial``
with every level, then ``insert`` (a new level), ``update`` (its new ``size``) and ``delete``
rows, each naming its level by ``id``. Since 2023 the ids are arbitrary ("no longer
translatable to a price level", https://blog.bitmex.com/api_announcement/removing-id-schema-on-
orderbook-feeds/, checked 2026-12-06) and every row carries its ``price``; the book still keeps
each id's side and price, because the table has no sequence number and the ids are the only
way to see that rows were missed:

* an ``update`` or ``delete`` of an id the book does not hold: the level's ``insert`` was
  missed;
* an ``insert`` of an id it holds already: the level's ``delete`` was missed.

Either is a gap (:data:`~.._book.BOOK_GAP`): the parser drops the book and asks for a new
partial. A row is applied at the side and price its id was inserted with (a level does not
move; the row's own price is the same).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from msgspec import UNSET

from .._book import INVALID_LEVEL, Book
from ..base import ParseError
from .frames import L2Row

_INF: Final = float("inf")
_SIDES: Final = {"Buy": True, "Sell": False}
"""``side`` → a bid."""


class Gap(Exception):
    """Rows were missed (see the module docstring): ``str(exc)`` says which."""


class L2Book(Book):
    """One instrument's ``orderBookL2`` book."""

    __slots__ = ("ids",)

    def __init__(self) -> None:
        super().__init__(0)
        self.ids: dict[int, tuple[bool, float]] = {}
        """Each level's (is a bid, price), by ``id``."""

    def apply_rows(self, action: str, rows: Iterable[L2Row]) -> None:
        """Apply ``rows`` of a ``partial``/``insert``, ``update`` or ``delete``. Raises
        :class:`Gap` on a row that shows missed rows, :class:`ParseError`
        (:data:`INVALID_LEVEL`) on a level that is no positive price with a size: the rows
        before it applied, the caller drops the book either way."""
        ids, bids, asks = self.ids, self.bids, self.asks
        for r in rows:
            known = ids.get(r.id)
            if action == "delete":
                if known is None:
                    raise Gap(f"{r.symbol} delete of unknown id {r.id}")
                del ids[r.id]
                (bids if known[0] else asks).pop(known[1], None)
                continue
            size = r.size
            if size is UNSET:
                raise ParseError(INVALID_LEVEL)  # an insert or update without a size
            if action == "update":
                if known is None:
                    raise Gap(f"{r.symbol} update of unknown id {r.id}")
                bid, price = known
            else:  # partial, insert
                if known is not None:
                    raise Gap(f"{r.symbol} insert of known id {r.id}")
                side_bid = _SIDES.get(r.side)
                if side_bid is None or r.price is UNSET:
                    raise ParseError(INVALID_LEVEL)
                bid, price = side_bid, r.price
            if not (0.0 < price < _INF and 0.0 <= size < _INF):  # NaN fails too
                raise ParseError(INVALID_LEVEL)
            side = bids if bid else asks
            if size:
                side[price] = size
                ids[r.id] = (bid, price)
            else:  # not sent by the venue (a delete is): a level gone all the same
                side.pop(price, None)
                ids.pop(r.id, None)
