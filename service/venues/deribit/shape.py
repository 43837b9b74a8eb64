"""The shape of Deribit's JSON-RPC frames, for the drift checks (:mod:`.shape`): the
``ticker.{instrument}.100ms`` and ``trades.{instrument}.100ms`` notifications, the answers to
``public/subscribe`` (the channels subscribed), heartbeats and the answers to ``public/test``.

Sources (checked 2026-12-03): https://docs.deribit.com/articles/json-rpc-overview (ids
"unique within the connection context"), .../api-reference/session-management/
public-set_heartbeat, .../supporting/public-test, and the ``ticker`` and ``trades``
subscription pages (the ``100ms`` interval: at most one notification per 100 ms while the
instrument changes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ...events import Kind
from ..shape import Channel, Seen, Shape, fields_of, names, required_of, rows_of, subscription, text
from . import frames

TICKER: Final = "ticker"
TRADES: Final = "trades"

CHANNELS: Final = (
    Channel(
        TICKER,
        frozenset({Kind.MARK, Kind.FUNDING, Kind.OPEN_INTEREST, Kind.BOOK_TOP}),
        read=fields_of(frames.Ticker),
        required=names("instrument_name timestamp mark_price index_price open_interest")
        | names("current_funding funding_8h"),
        ignored=names(
            "state stats last_price settlement_price min_price max_price interest_value",
            "estimated_delivery_price interest_rate delivery_price underlying_index",
            "underlying_price mark_iv ask_iv bid_iv greeks implied_ask implied_bid combo_state",
        ),
        every_s=0.1,
        rate="every 100 ms while it changes",
    ),
    Channel(
        TRADES,
        frozenset({Kind.LIQUIDATION, Kind.VOLUME}),
        read=fields_of(frames.Trade),
        required=required_of(frames.Trade),
        ignored=names(
            "trade_seq tick_direction index_price mark_price iv block_trade_id contracts",
            "combo_id combo_trade_id block_rfq_id block_trade_leg_count",
        ),
        rate="every trade (liquidations flagged), batched every 100 ms; summed into volume",
    ),
)


def _kind(channel: Any) -> str | None:
    name = channel.split(".", 1)[0] if isinstance(channel, str) else None
    return name if name in (TICKER, TRADES) else None


class DeribitShape(Shape):
    channels = CHANNELS

    def classify(self, msg: Any) -> Seen:
        if not isinstance(msg, Mapping):
            return Seen("other")
        method = msg.get("method")
        if method == "heartbeat":
            return Seen("keepalive")
        if method == "subscription":
            params = msg.get("params")
            params = params if isinstance(params, Mapping) else {}
            name = _kind(params.get("channel"))
            return Seen("data", name, rows_of(params.get("data"))) if name else Seen("other")
        request = None if msg.get("id") is None else str(msg["id"])
        if msg.get("error") is not None:
            return Seen("refused", request=request, detail=text(msg["error"]))
        result = msg.get("result")
        if isinstance(result, Mapping) and "version" in result:
            return Seen("keepalive")  # the answer to our public/test
        if isinstance(result, list):  # public/subscribe: the channels subscribed
            found = tuple(dict.fromkeys(k for c in result if (k := _kind(c)) is not None))
            return Seen("ack", channels=found, request=request)
        return Seen("other")

    def requested(self, message: str) -> tuple[str | None, frozenset[str]]:
        if (req := subscription(message, "method", "public/subscribe")) is None:
            return None, frozenset()
        params = req.get("params")
        chans = params.get("channels", []) if isinstance(params, dict) else []
        found = {k for c in chans if (k := _kind(c)) is not None}
        return str(req.get("id")), frozenset(found)


SHAPE: Final = DeribitShape()
