"""The shape of OKX v5 public frames, for the drift checks (:mod:`.shape`): ``mark-price``,
``open-interest``, ``funding-rate``, ``liquidation-orders``, ``tickers`` and ``trades``, and
the answers to ``subscribe`` (one per arg) and its errors.

Sources (checked 2026-12-03): https://www.okx.com/docs-v5/en/ (a copy retrieved 2026-08-03):
"Mark price channel ... Data will be pushed every 200 ms when the mark price changes, and
will be pushed every 10 seconds when the mark price does not change"; "Open interest
channel ... Data will be pushed every 3 seconds when there are any changes"; "Funding rate
channel ... Data will be pushed in 30s to 90s"; "Liquidation orders channel ... sample
... not necessarily in chronological order"; error ``{"event":"error","code":"60018",...}``.
``tickers`` and ``trades`` (checked 2026-12-06, stored copies of 2026-07-09 and 2026-07-22):
https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-tickers-channel ("The
fastest rate is 1 update/100ms. There will be no update if the event is not triggered"),
https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-trades-channel ("Data will
be pushed whenever there is a trade"; ``count``, ``source``, ``seqId``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ...events import Kind
from ..shape import Channel, Seen, Shape, fields_of, names, required_of, rows_of, subscription, text
from . import frames

MARK_PRICE: Final = "mark-price"
OPEN_INTEREST: Final = "open-interest"
FUNDING_RATE: Final = "funding-rate"
LIQUIDATION_ORDERS: Final = "liquidation-orders"
TICKERS: Final = "tickers"
TRADES: Final = "trades"
NAMES: Final = (MARK_PRICE, OPEN_INTEREST, FUNDING_RATE, LIQUIDATION_ORDERS, TICKERS, TRADES)

CHANNELS: Final = (
    Channel(
        MARK_PRICE,
        frozenset({Kind.MARK}),
        read=fields_of(frames.Mark),
        required=required_of(frames.Mark),
        ignored=names("instType"),
        every_s=10.0,
        rate="every 200 ms on change, else every 10 s",
    ),
    Channel(
        OPEN_INTEREST,
        frozenset({Kind.OPEN_INTEREST}),
        read=fields_of(frames.OpenInterestRow),
        required=fields_of(frames.OpenInterestRow),
        ignored=names("instType"),
        every_s=3.0,
        rate="every 3 s when it changes",
    ),
    Channel(
        FUNDING_RATE,
        frozenset({Kind.FUNDING}),
        read=fields_of(frames.FundingRow),
        required=fields_of(frames.FundingRow),
        ignored=names(
            "instType formulaType impactValue interestRate maxFundingRate minFundingRate",
            "method nextFundingRate premium prevFundingTime settFundingRate settState",
            "sodUtc0 sodUtc8",
        ),
        every_s=90.0,
        rate="every 30 s to 90 s",
    ),
    Channel(
        LIQUIDATION_ORDERS,
        frozenset({Kind.LIQUIDATION}),
        read=fields_of(frames.LiquidationEntry) | fields_of(frames.Detail, "details."),
        required=fields_of(frames.LiquidationEntry) | fields_of(frames.Detail, "details."),
        ignored=names("instFamily instType uly details.bkLoss details.ccy"),
        nested=names("details"),
        rate="a sample of liquidations, when they happen",
    ),
    Channel(
        TICKERS,
        frozenset({Kind.BOOK_TOP}),
        read=fields_of(frames.TickerRow),
        required=fields_of(frames.TickerRow),
        ignored=names(
            "instType last lastSz open24h high24h low24h volCcy24h vol24h sodUtc0 sodUtc8"
        ),
        rate="at most every 100 ms, on a trade or a change of the best bid or ask",
    ),
    Channel(
        TRADES,
        frozenset({Kind.VOLUME}),
        read=fields_of(frames.TradeRow),
        required=fields_of(frames.TradeRow),
        ignored=names("count source seqId"),
        rate="every taker order's fills at one price, real time (summed into volume)",
    ),
)


def _arg_channel(arg: Any) -> str | None:
    channel = arg.get("channel") if isinstance(arg, Mapping) else None
    return channel if isinstance(channel, str) else None


class OkxShape(Shape):
    channels = CHANNELS

    def classify(self, msg: Any) -> Seen:
        if msg == "pong":
            return Seen("keepalive")
        if not isinstance(msg, Mapping):
            return Seen("other")
        event, request = msg.get("event"), msg.get("id")
        request = None if request is None else str(request)
        channel = _arg_channel(msg.get("arg"))
        if event == "subscribe":
            return Seen("ack", channels=(channel,) if channel else None, request=request)
        if event == "error":
            detail = text(msg.get("msg", ""))
            return Seen("refused", channels=_named(detail) or None, request=request, detail=detail)
        if event is not None or channel not in NAMES:
            return Seen("other")
        return Seen("data", channel, rows_of(msg.get("data")))

    def requested(self, message: str) -> tuple[str | None, frozenset[str]]:
        if (req := subscription(message, "op", "subscribe")) is None:
            return None, frozenset()
        found = {c for a in req.get("args", []) if (c := _arg_channel(a)) is not None}
        return (None if req.get("id") is None else str(req["id"])), frozenset(found)


def _named(detail: str) -> tuple[str, ...]:
    """The channels an OKX error names (``channel:tickers,instId:LTC-USD doesn't exist``)."""
    return tuple(c for c in NAMES if f"channel:{c}," in detail or f"channel:{c} " in detail)


SHAPE: Final = OkxShape()
