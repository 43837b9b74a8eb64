"""The shape of the example venue's frames, for the drift checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from service.events import Kind
from service.venues.shape import Channel, Seen, Shape, fields_of, required_of, rows_of

from .venue import LiquidationRow, TickerRow

TICKER: Final = "ticker"
LIQUIDATION: Final = "liquidation"


class ExampleShape(Shape):
    channels = (
        Channel(
            TICKER,
            frozenset({Kind.MARK, Kind.FUNDING, Kind.OPEN_INTEREST}),
            read=fields_of(TickerRow),
            required=required_of(TickerRow),
            every_s=1.0,
        ),
        Channel(
            LIQUIDATION,
            frozenset({Kind.LIQUIDATION}),
            read=fields_of(LiquidationRow),
            required=required_of(LiquidationRow),
        ),
    )

    def classify(self, msg: Any) -> Seen:
        if not isinstance(msg, Mapping):
            return Seen("other")
        if msg.get("event") == "subscribed":
            return Seen("ack", channels=(TICKER, LIQUIDATION))
        if msg.get("ch") in (TICKER, LIQUIDATION):
            return Seen("data", msg["ch"], rows_of(msg.get("data")))
        return Seen("other")

    def requested(self, message: str) -> tuple[str | None, frozenset[str]]:
        return None, frozenset({TICKER, LIQUIDATION})


SHAPE: Final = ExampleShape()
