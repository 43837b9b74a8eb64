"""The shape of BitMEX realtime frames, for the drift checks (:mod:`.shape`): the
``instrument``, ``liquidation``, ``quote`` and ``trade`` tables, the per-topic acks and error
frames (``orderBookL2``, on the depth connection, is checked by its parser: ids, levels).
BitMEX closed on 2026-09-23 (:attr:`.bitmex.Bitmex.retired`): this is the protocol's record,
checked against the simulator when the venue is enabled explicitly.

Sources (checked 2026-12-03): https://www.bitmex.com/app/wsAPI (``partial`` then
``insert``/``update``/``delete``; ``{"success":true,"subscribe":...}``; ``{"status":400,
"error":...,"request":...}``), tardis-node and cryptofeed recordings for the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ...events import Kind
from ..shape import Channel, Seen, Shape, fields_of, names, rows_of, subscription, text
from . import frames

INSTRUMENT: Final = "instrument"
LIQUIDATION: Final = "liquidation"
QUOTE: Final = "quote"
TRADE: Final = "trade"
TABLES: Final = (INSTRUMENT, LIQUIDATION, QUOTE, TRADE)

CHANNELS: Final = (
    Channel(
        INSTRUMENT,
        frozenset({Kind.MARK, Kind.FUNDING, Kind.OPEN_INTEREST}),
        read=fields_of(frames.InstrumentRow),
        required=names("symbol markPrice openInterest fundingRate fundingTimestamp")
        | names("fundingInterval timestamp"),
        ignored=names(
            "rootSymbol state typ listing front expiry settle listedSettle positionCurrency",
            "underlying quoteCurrency underlyingSymbol reference referenceSymbol calcInterval",
            "publishInterval publishTime maxOrderQty maxPrice lotSize tickSize multiplier",
            "settlCurrency underlyingToPositionMultiplier underlyingToSettleMultiplier",
            "quoteToSettleMultiplier isQuanto isInverse initMargin maintMargin riskLimit",
            "riskStep limit capped taxed deleverage makerFee takerFee settlementFee",
            "insuranceFee fundingBaseSymbol fundingQuoteSymbol fundingPremiumSymbol",
            "indicativeFundingRate rebalanceTimestamp rebalanceInterval openingTimestamp",
            "closingTimestamp sessionInterval prevClosePrice limitDownPrice limitUpPrice",
            "bankruptLimitDownPrice bankruptLimitUpPrice prevTotalVolume totalVolume volume",
            "volume24h prevTotalTurnover totalTurnover turnover turnover24h homeNotional24h",
            "foreignNotional24h prevPrice24h vwap highPrice lowPrice lastPrice",
            "lastPriceProtected lastTickDirection lastChangePcnt bidPrice midPrice askPrice",
            "impactBidPrice impactMidPrice impactAskPrice hasLiquidity openValue fairMethod",
            "fairBasisRate fairBasis fairPrice markMethod indicativeTaxRate",
            "optionStrikePcnt optionStrikeRound optionStrikePrice optionMultiplier",
            "optionUnderlyingPrice relistInterval settledPrice buyLeg sellLeg inverseLeg",
            "instantPnl settledPriceAdjustmentRate",
        ),
        every_s=5.0,
        rate="a diff whenever the mark (every few seconds) or open interest changes",
    ),
    Channel(
        LIQUIDATION,
        frozenset({Kind.LIQUIDATION}),
        read=fields_of(frames.LiquidationRow),
        required=fields_of(frames.LiquidationRow),
        rate="the engine's liquidation orders, when they happen",
    ),
    Channel(
        QUOTE,
        frozenset({Kind.BOOK_TOP}),
        read=fields_of(frames.QuoteRow),
        required=names("symbol timestamp bidPrice bidSize askPrice askSize"),
        rate="an insert whenever the best levels change",
    ),
    Channel(
        TRADE,
        frozenset({Kind.VOLUME}),
        read=fields_of(frames.TradeRow),
        required=names("symbol timestamp side size price trdMatchID"),
        ignored=names(
            "tickDirection grossValue homeNotional foreignNotional trdType",
        ),
        rate="every trade, real time (summed into volume per second)",
    ),
)


def _table(topic: Any) -> str | None:
    name = topic.split(":", 1)[0] if isinstance(topic, str) else None
    return name if name in TABLES else None


def _args_tables(request: Any) -> tuple[str, ...] | None:
    args = request.get("args") if isinstance(request, Mapping) else None
    if not isinstance(args, list):
        return None
    return tuple(dict.fromkeys(t for a in args if (t := _table(a)) is not None)) or None


class BitmexShape(Shape):
    channels = CHANNELS

    def classify(self, msg: Any) -> Seen:
        if msg == "pong":
            return Seen("keepalive")
        if not isinstance(msg, Mapping):
            return Seen("other")
        table = msg.get("table")
        if isinstance(table, str):
            if table not in TABLES:
                return Seen("other")
            complete = msg.get("action") in ("partial", "insert")
            return Seen("data", table, rows_of(msg.get("data")), complete)
        if msg.get("success") is True and "subscribe" in msg:
            found = _table(msg["subscribe"])
            return Seen("ack", channels=(found,) if found else ())
        if msg.get("error") is not None:
            detail = text(msg["error"])
            return Seen("refused", channels=_args_tables(msg.get("request")), detail=detail)
        return Seen("other")

    def requested(self, message: str) -> tuple[str | None, frozenset[str]]:
        if (req := subscription(message, "op", "subscribe")) is None:
            return None, frozenset()
        return None, frozenset(_args_tables(req) or ())


SHAPE: Final = BitmexShape()
