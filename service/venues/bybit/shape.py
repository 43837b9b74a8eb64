"""The shape of Bybit v5 public frames, for the drift checks (:mod:`.shape`): ``tickers``,
``allLiquidation`` and ``publicTrade`` of the linear and inverse streams, and the subscribe
request's answers.

Sources (checked 2026-12-03): https://bybit-exchange.github.io/docs/v5/websocket/public/ticker
("Push frequency: Derivatives & Options - 100ms"; snapshot then delta; since 2026-06-11
``openInterest``/``openInterestValue`` both sides, ``singleOpenInterest``/
``singleOpenInterestValue`` one side), .../all-liquidation (``T``, ``s``, ``S``, ``v``, ``p``;
"Push frequency: 500ms"), .../trade (``T``, ``s``, ``S`` the taker's side, ``v``, ``p``,
``L``, ``i``, ``BT``; real time; fields as in the captures and bybit-api's ``WSTradeV5``;
the side is the taker's, as .../sbe/sbe-public-trade says of the same feed in binary),
.../ws/connect (``{"success":true,"ret_msg":"","conn_id":...,
"req_id":...,"op":"subscribe"}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ...events import Kind
from ..shape import (
    Channel,
    Seen,
    Shape,
    fields_of,
    named_in,
    names,
    required_of,
    rows_of,
    subscription,
    text,
)
from .venue import _LiquidationRow, _Ticker, _TradeRow

TICKERS: Final = "tickers"
ALL_LIQUIDATION: Final = "allLiquidation"
PUBLIC_TRADE: Final = "publicTrade"
NAMES: Final = (TICKERS, ALL_LIQUIDATION, PUBLIC_TRADE)

CHANNELS: Final = (
    Channel(
        TICKERS,
        frozenset({Kind.MARK, Kind.FUNDING, Kind.OPEN_INTEREST, Kind.BOOK_TOP}),
        read=fields_of(_Ticker),
        required=names("symbol markPrice indexPrice openInterest fundingRate nextFundingTime"),
        ignored=names(
            "tickDirection price24hPcnt lastPrice prevPrice24h highPrice24h lowPrice24h",
            "prevPrice1h openInterestValue singleOpenInterestValue turnover24h volume24h",
            "fundingCap deliveryTime basisRate",
            "deliveryFeeRate predictedDeliveryPrice preOpenPrice preQty curPreListingPhase",
            "basis basisRateYear",
        ),
        every_s=0.1,
        rate="every 100 ms",
    ),
    Channel(
        ALL_LIQUIDATION,
        frozenset({Kind.LIQUIDATION}),
        read=fields_of(_LiquidationRow),
        required=required_of(_LiquidationRow),
        rate="every liquidation, batched every 500 ms",
    ),
    Channel(
        PUBLIC_TRADE,
        frozenset({Kind.VOLUME}),
        read=fields_of(_TradeRow),
        required=required_of(_TradeRow),
        ignored=names("L i BT RPI mP iP mIv iv seq"),
        rate="every trade, real time (summed into volume per second)",
    ),
)


class BybitShape(Shape):
    channels = CHANNELS

    def classify(self, msg: Any) -> Seen:
        if not isinstance(msg, Mapping):
            return Seen("other")
        topic = msg.get("topic")
        if isinstance(topic, str):
            name = topic.split(".", 1)[0]
            if name not in NAMES:
                return Seen("other")
            complete = name != TICKERS or msg.get("type") == "snapshot"
            return Seen("data", name, rows_of(msg.get("data")), complete)
        op, request = msg.get("op"), msg.get("req_id")
        if op == "ping" or msg.get("ret_msg") == "pong":
            return Seen("keepalive")
        if op != "subscribe" or "success" not in msg:
            return Seen("other")
        request = str(request) if request else None
        if msg["success"] is True:
            return Seen("ack", request=request)
        detail = text(msg.get("ret_msg", ""))  # Invalid symbol :[tickers.X,...]
        found = named_in(detail, NAMES)
        return Seen("refused", channels=found or None, request=request, detail=detail)

    def requested(self, message: str) -> tuple[str | None, frozenset[str]]:
        if (req := subscription(message, "op", "subscribe")) is None:
            return None, frozenset()
        args = [a for a in req.get("args", []) if isinstance(a, str)]
        return str(req.get("req_id") or "") or None, frozenset(a.split(".", 1)[0] for a in args)


SHAPE: Final = BybitShape()
