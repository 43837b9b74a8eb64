"""The shape of Bitget's v3 public frames, for the drift checks (:mod:`.shape`): the
``ticker`` pushes (per symbol), the ``liquidation`` pushes (per instType), the
``publicTrade`` pushes (per symbol; fields from the captures), the per-arg acks and error
frames.

Sources (checked 2026-12-03): https://www.bitget.com/api-doc/uta/websocket/public/
Tickers-Channel and .../Liquidation-Channel (``symbol``, ``side``, ``price``, ``amount``,
``ts``; "the largest long and the largest short liquidation order per symbol every
second"), changelog https://www.bitget.com/api-doc/uta/changelog (page text not
retrieved here; field names from the captures). ``publicTrade``: fields from the captures
and tardis-node's v3 trade mapper (``i``, ``p``, ``v``, ``S``, ``T``, ``L``, ``isRPI``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ...events import Kind
from ..shape import Channel, Seen, Shape, fields_of, names, required_of, rows_of, subscription, text
from . import frames

TICKER: Final = "ticker"
LIQUIDATION: Final = "liquidation"
PUBLIC_TRADE: Final = "publicTrade"
NAMES: Final = (TICKER, LIQUIDATION, PUBLIC_TRADE)

CHANNELS: Final = (
    Channel(
        TICKER,
        frozenset({Kind.MARK, Kind.FUNDING, Kind.OPEN_INTEREST, Kind.BOOK_TOP}),
        read=fields_of(frames.TickerRow),
        required=names("markPrice indexPrice fundingRate nextFundingTime openInterest"),
        ignored=names(
            "highPrice24h lowPrice24h openPrice24h lastPrice turnover24h volume24h",
            "price24hPcnt deliveryTime deliveryStartTime deliveryStatus symbol",
        ),
        every_s=1.0,
        rate="pushed on change (the v3 docs give no period)",
    ),
    Channel(
        LIQUIDATION,
        frozenset({Kind.LIQUIDATION}),
        read=fields_of(frames.LiquidationRow),
        required=required_of(frames.LiquidationRow),
        rate="per second, the largest long and short liquidation per symbol",
    ),
    Channel(
        PUBLIC_TRADE,
        frozenset({Kind.VOLUME}),
        read=names("S v p T"),
        required=names("S v p T"),
        ignored=names("i L isRPI"),
        rate="every trade, real time (summed into volume per second)",
    ),
)


def _topic(arg: Any) -> str | None:
    topic = arg.get("topic") or arg.get("channel") if isinstance(arg, Mapping) else None
    return topic if topic in NAMES else None


class BitgetShape(Shape):
    channels = CHANNELS

    def classify(self, msg: Any) -> Seen:
        if msg == "pong":
            return Seen("keepalive")
        if not isinstance(msg, Mapping):
            return Seen("other")
        event, topic = msg.get("event"), _topic(msg.get("arg"))
        if event == "subscribe":
            return Seen("ack", channels=(topic,) if topic else ())
        if event == "error":
            detail = text(msg.get("msg", ""))
            return Seen("refused", channels=(topic,) if topic else None, detail=detail)
        if event is not None or topic is None or "action" not in msg:
            return Seen("other")
        complete = topic != TICKER or msg.get("action") == "snapshot"
        return Seen("data", topic, rows_of(msg.get("data")), complete)

    def requested(self, message: str) -> tuple[str | None, frozenset[str]]:
        if (req := subscription(message, "op", "subscribe")) is None:
            return None, frozenset()
        return None, frozenset(t for a in req.get("args", []) if (t := _topic(a)) is not None)


SHAPE: Final = BitgetShape()
