"""The shape of Gate futures websocket (v4) frames, for the drift checks (:mod:`.shape`):
``futures.tickers``, ``futures.public_liquidates``, ``futures.book_ticker``,
``futures.trades``, the subscribe answers and ``futures.pong`` (``futures.obu``, on the
depth connections only, is checked by its sequence: a gap is counted).

Sources (checked 2026-12-03): https://www.gate.com/docs/developers/futures/ws/en/ (opening
only retrievable here) and the Chinese page
https://www.gate.io/docs/developers/futures/ws/zh_CN/ with its 2026-08-20 changelog
(``futures.public_liquidates`` aggregated: several rows per contract, ``time`` in ms);
``{"channel":...,"event":"subscribe","result":{"status":"success"}}``, refusals with an
``error`` object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ...events import Kind
from ..shape import Channel, Seen, Shape, fields_of, names, rows_of, subscription, text
from . import frames

TICKERS: Final = "futures.tickers"
LIQUIDATES: Final = "futures.public_liquidates"
BOOK_TICKER: Final = "futures.book_ticker"
TRADES: Final = "futures.trades"
NAMES: Final = (TICKERS, LIQUIDATES, BOOK_TICKER, TRADES)

CHANNELS: Final = (
    Channel(
        TICKERS,
        frozenset({Kind.MARK, Kind.FUNDING, Kind.OPEN_INTEREST}),
        read=fields_of(frames.Ticker),
        required=fields_of(frames.Ticker),
        ignored=names(
            "last change_percentage funding_rate_indicative high_24h low_24h volume_24h",
            "volume_24h_base volume_24h_quote volume_24h_settle volume_24h_btc",
            "volume_24h_usd volume_24_btc volume_24_usd quanto_base_rate status",
            "change_utc0 change_utc8 change_price lowest_ask highest_bid",
        ),
        every_s=1.0,
        rate="on change (about once a second on a traded contract)",
    ),
    Channel(
        LIQUIDATES,
        frozenset({Kind.LIQUIDATION}),
        read=fields_of(frames.Liquidation),
        required=names("contract price size time"),
        rate="every liquidation, aggregated per contract per second (since 2026-08-20)",
    ),
    Channel(
        BOOK_TICKER,
        frozenset({Kind.BOOK_TOP}),
        read=fields_of(frames.BookTicker),
        required=fields_of(frames.BookTicker),
        ignored=names("u"),
        rate="on every change of the best bid or ask (real time)",
    ),
    Channel(
        TRADES,
        frozenset({Kind.VOLUME}),
        read=fields_of(frames.Trade),
        required=names("contract id size price"),
        rate="every trade, real time (summed into volume per second)",
    ),
)


class GateShape(Shape):
    channels = CHANNELS

    def classify(self, msg: Any) -> Seen:
        if not isinstance(msg, Mapping):
            return Seen("other")
        channel, event = msg.get("channel"), msg.get("event")
        if channel == "futures.pong":
            return Seen("keepalive")
        if event == "subscribe":
            named = (channel,) if channel in NAMES else ()
            result = msg.get("result")
            failed = isinstance(result, Mapping) and result.get("status") == "fail"
            if msg.get("error") is not None or failed:
                detail = text(msg.get("error") or result)
                return Seen("refused", channels=named or None, detail=detail)
            return Seen("ack", channels=named)
        if event != "update" or channel not in NAMES:
            return Seen("other")
        return Seen("data", channel, rows_of(msg.get("result")))

    def requested(self, message: str) -> tuple[str | None, frozenset[str]]:
        if (req := subscription(message, "event", "subscribe")) is None:
            return None, frozenset()
        channel = req.get("channel")
        return None, frozenset({channel} if channel in NAMES else ())


SHAPE: Final = GateShape()
