"""The shape of Hyperliquid websocket frames, for the drift checks (:mod:`.shape`): the
``activeAssetCtx`` pushes, the ``userFills`` of the liquidator vaults, the ``bbo`` and
``trades`` pushes, the ``subscriptionResponse`` acks and the ``error`` channel (``l2Book``'s
levels are a pair of lists, which the row checks do not walk: its pushes are checked by the
parser, every one whole).

Sources (checked 2026-12-03): https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/
api/websocket/subscriptions (``activeAssetCtx``: ``coin`` and ``ctx`` with ``funding``,
``openInterest``, ``oraclePx``, ``markPx``...; ``userFills``: ``isSnapshot``, ``user``,
``fills`` with an optional ``liquidation`` object), .../websocket (one ack per subscription
on ``subscriptionResponse``).
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
from . import frames

ACTIVE_ASSET_CTX: Final = "activeAssetCtx"
USER_FILLS: Final = "userFills"
BBO: Final = "bbo"
TRADES: Final = "trades"
NAMES: Final = (ACTIVE_ASSET_CTX, USER_FILLS, BBO, TRADES)

CHANNELS: Final = (
    Channel(
        ACTIVE_ASSET_CTX,
        frozenset({Kind.MARK, Kind.FUNDING, Kind.OPEN_INTEREST}),
        read=fields_of(frames.ActiveAssetCtx) | fields_of(frames.AssetCtx, "ctx."),
        required=required_of(frames.ActiveAssetCtx) | fields_of(frames.AssetCtx, "ctx."),
        ignored=names(
            "ctx.prevDayPx ctx.dayNtlVlm ctx.premium ctx.midPx ctx.impactPxs ctx.dayBaseVlm"
        ),
        nested=names("ctx"),
        every_s=1.0,
        rate="on every change (each block), the service re-reports every 30 s",
    ),
    Channel(
        USER_FILLS,
        frozenset({Kind.LIQUIDATION}),
        read=fields_of(frames.UserFills)
        | fields_of(frames.Fill, "fills.")
        | fields_of(frames.FillLiquidation, "fills.liquidation."),
        required=required_of(frames.UserFills)
        | required_of(frames.Fill, "fills.")
        | required_of(frames.FillLiquidation, "fills.liquidation."),
        ignored=names(
            "fills.startPosition fills.closedPnl fills.hash fills.oid fills.crossed",
            "fills.fee fills.cloid fills.feeToken fills.twapId fills.builderFee",
        ),
        nested=names("fills fills.liquidation"),
        rate="a liquidator vault's fills, when they happen (a snapshot on subscribe)",
    ),
    Channel(
        BBO,
        frozenset({Kind.BOOK_TOP}),
        read=fields_of(frames.Bbo) | fields_of(frames.Level, "bbo."),
        required=required_of(frames.Bbo) | required_of(frames.Level, "bbo."),
        ignored=names("bbo.n"),
        nested=names("bbo"),
        rate="when the best bid or ask changes on a block",
    ),
    Channel(
        TRADES,
        frozenset({Kind.VOLUME}),
        read=fields_of(frames.Trade),
        required=required_of(frames.Trade),
        ignored=names("hash users"),
        rate="every trade, real time (summed into volume per second)",
    ),
)


class HyperliquidShape(Shape):
    channels = CHANNELS

    def classify(self, msg: Any) -> Seen:
        if not isinstance(msg, Mapping):
            return Seen("other")
        channel, data = msg.get("channel"), msg.get("data")
        if channel == "pong":
            return Seen("keepalive")
        if channel == "subscriptionResponse":
            sub = data.get("subscription") if isinstance(data, Mapping) else None
            kind = sub.get("type") if isinstance(sub, Mapping) else None
            return Seen("ack", channels=(kind,) if kind in NAMES else ())
        if channel == "error":
            detail = text(data)
            return Seen("refused", channels=named_in(detail, NAMES), detail=detail)
        if channel in NAMES and isinstance(data, (Mapping, list)):
            return Seen("data", channel, rows_of(data))
        return Seen("other")

    def requested(self, message: str) -> tuple[str | None, frozenset[str]]:
        if (req := subscription(message, "method", "subscribe")) is None:
            return None, frozenset()
        sub = req.get("subscription")
        kind = sub.get("type") if isinstance(sub, dict) else None
        return None, frozenset({kind} if kind in NAMES else ())


SHAPE: Final = HyperliquidShape()
