"""The shape of Binance futures frames (USDⓈ-M and COIN-M speak the same protocol), for the
drift checks (:mod:`.shape`): the ``markPrice``, ``forceOrder``, ``bookTicker`` and
``aggTrade`` streams, the open interest polled over REST, and the ``SUBSCRIBE`` request and its
answers.

Sources (checked 2026-12-03): developers.binance.com, USDⓈ-M and COIN-M "Mark Price Stream"
(pushed every 1 s with ``@1s``: ``e``, ``E``, ``s``, ``p``, ``i``, ``P``, ``r``, ``T``) and
"Liquidation Order Streams" ("only the latest one liquidation order within 1000ms will be
pushed"; ``o`` with ``s``, ``S``, ``o``, ``f``, ``q``, ``p``, ``ap``, ``X``, ``l``, ``z``,
``T``, COIN-M adds ``ps``); "Live Subscribing/Unsubscribing to streams"
(``{"result":null,"id":1}``; errors ``{"error":{"code":2,"msg":...},"id":1}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ...events import Kind
from ..shape import Channel, Seen, Shape, fields_of, names, required_of, rows_of, subscription, text
from .common import _AggTrade, _BookTicker, _ForceOrder, _Mark, _Order

MARK_PRICE: Final = "markPrice"
FORCE_ORDER: Final = "forceOrder"
OPEN_INTEREST: Final = "openInterest"
BOOK_TICKER: Final = "bookTicker"
AGG_TRADE: Final = "aggTrade"

CHANNELS: Final = (
    Channel(
        MARK_PRICE,
        frozenset({Kind.MARK, Kind.FUNDING}),
        read=fields_of(_Mark),
        required=names("E s p i r T"),
        ignored=names("e P st"),
        every_s=1.0,
        rate="every 1 s (@1s)",
    ),
    Channel(
        FORCE_ORDER,
        frozenset({Kind.LIQUIDATION}),
        read=fields_of(_ForceOrder) | fields_of(_Order, "o."),
        required=required_of(_ForceOrder) | required_of(_Order, "o."),
        ignored=names("e o.o o.f o.l st"),
        nested=names("o"),
        rate="at most one per symbol per 1000 ms, when liquidations happen",
    ),
    Channel(
        BOOK_TICKER,
        frozenset({Kind.BOOK_TOP}),
        read=fields_of(_BookTicker),
        required=names("s b B a A T"),
        ignored=names("e u ps"),
        rate="every change of the best bid or ask, real time",
    ),
    Channel(
        AGG_TRADE,
        frozenset({Kind.VOLUME}),
        read=fields_of(_AggTrade),
        required=required_of(_AggTrade),
        ignored=names("e E f l nq"),
        rate="every 100 ms while the symbol trades (summed into volume per second)",
    ),
    Channel(
        OPEN_INTEREST,
        frozenset({Kind.OPEN_INTEREST}),
        read=names("openInterest symbol time"),
        required=names("openInterest"),
        every_s=60.0,
        rate="polled over REST",
        rest=True,
    ),
)


def _stream_channel(stream: str) -> str | None:
    """The channel of a stream name (the diff depth is not one: its frames are a book's
    changes, checked by the book's chain, not field by field)."""
    for channel in (MARK_PRICE, FORCE_ORDER, BOOK_TICKER, AGG_TRADE):
        if channel in stream:
            return channel
    return None


class BinanceShape(Shape):
    channels = CHANNELS

    def classify(self, msg: Any) -> Seen:
        if isinstance(msg, list):  # a raw-mode array of markPriceUpdate
            return Seen("data", MARK_PRICE, rows_of(msg))
        if not isinstance(msg, Mapping):
            return Seen("other")
        stream = msg.get("stream")
        if isinstance(stream, str):
            channel = _stream_channel(stream)
            return Seen("data", channel, rows_of(msg.get("data"))) if channel else Seen("other")
        request = None if msg.get("id") is None else str(msg["id"])
        if msg.get("error") is not None:
            return Seen("refused", request=request, detail=text(msg["error"]))
        if "result" in msg and request is not None:
            return Seen("ack", request=request)
        return Seen("other")

    def requested(self, message: str) -> tuple[str | None, frozenset[str]]:
        if (req := subscription(message, "method", "SUBSCRIBE")) is None:
            return None, frozenset()
        streams = [s for s in req.get("params", []) if isinstance(s, str)]
        found = {c for s in streams if (c := _stream_channel(s)) is not None}
        return str(req.get("id")), frozenset(found)


SHAPE: Final = BinanceShape()
