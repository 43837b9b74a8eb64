"""The example venue's collector side: its ``Venue`` and its pure parser.

A ticker frame::

    {"ch": "ticker", "ts": 1764806400000, "data": [{"s": "BTC-PERP", "mark": 60000.0,
     "index": 59990.0, "funding": 0.0001, "next_funding": 1764835200000, "oi": 1200.5}]}

A liquidation frame (``side``: the position's)::

    {"ch": "liquidation", "ts": 1764806400000, "data": [{"id": "7", "s": "BTC-PERP",
     "side": "long", "px": 59000.0, "qty": 0.5, "t": 1764806399950}]}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

import httpx
import msgspec

from service.events import Event, FundingRate, Liquidation, MarkPrice, OpenInterest, Side
from service.venues.base import INVALID_JSON, Connection, Instrument, ParseError, Parser, Venue

VENUE: Final = "example"
FUNDING_INTERVAL_H: Final = 8.0


class TickerRow(msgspec.Struct):
    s: str
    mark: float
    index: float
    funding: float
    next_funding: int
    oi: float


class LiquidationRow(msgspec.Struct):
    id: str
    s: str
    side: str
    px: float
    qty: float
    t: int


class _Frame(msgspec.Struct):
    ch: str
    ts: int
    data: msgspec.Raw


_frame = msgspec.json.Decoder(_Frame)
_tickers = msgspec.json.Decoder(list[TickerRow])
_liquidations = msgspec.json.Decoder(list[LiquidationRow])


class ExampleParser(Parser):
    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        if frame in ('{"event":"subscribed"}', b'{"event":"subscribed"}'):
            return []
        try:
            f = _frame.decode(frame)
            if f.ch == "ticker":
                return [
                    e for row in _tickers.decode(f.data) for e in self._ticker(row, f.ts, recv_ms)
                ]
            if f.ch == "liquidation":
                return [e for row in _liquidations.decode(f.data) for e in self._liq(row, recv_ms)]
        except msgspec.ValidationError:
            raise ParseError("bad_frame") from None
        except msgspec.DecodeError:
            raise ParseError(INVALID_JSON) from None
        raise ParseError("unknown_channel")

    def _ticker(self, row: TickerRow, ts: int, recv_ms: int) -> list[Event]:
        inst = self.markets.get(row.s)
        if inst is None:
            return []
        self.last_mark[row.s] = row.mark
        common: dict[str, Any] = {
            "venue": self.venue,
            "symbol": row.s,
            "base": inst.base,
            "ts_ms": ts,
            "recv_ms": recv_ms,
        }
        return [
            MarkPrice(**common, mark_price=row.mark, index_price=row.index),
            FundingRate(
                **common,
                funding_rate=row.funding,
                interval_h=FUNDING_INTERVAL_H,
                funding_rate_1h=row.funding / FUNDING_INTERVAL_H,
                next_funding_ms=row.next_funding,
            ),
            OpenInterest(**common, oi_contracts=row.oi, oi_base=row.oi, oi_usd=row.oi * row.mark),
        ]

    def _liq(self, row: LiquidationRow, recv_ms: int) -> list[Event]:
        inst = self.markets.get(row.s)
        if inst is None:
            return []
        if row.side not in ("long", "short"):
            raise ParseError("bad_side")
        return [
            Liquidation(
                venue=self.venue,
                symbol=row.s,
                base=inst.base,
                ts_ms=row.t,
                recv_ms=recv_ms,
                side=Side(row.side),
                price=row.px,
                quantity=row.qty,
                quantity_base=row.qty,
                notional_usd=row.qty * row.px,
                sampled=False,
                event_id=row.id,
            )
        ]


def parse_instruments(body: Mapping[str, Any]) -> dict[str, Instrument]:
    """``GET /instruments``: ``{"instruments": [{"symbol", "base", "quote"}]}``."""
    return {
        r["symbol"]: Instrument(VENUE, r["symbol"], r["base"], r["quote"], linear=True)
        for r in body["instruments"]
    }


class Example(Venue):
    id: ClassVar[str] = VENUE
    parser_class: ClassVar[type[Parser]] = ExampleParser
    default_ws_url: ClassVar[str] = "ws://127.0.0.1:1/ws"
    default_rest_url: ClassVar[str] = "http://127.0.0.1:1"
    liquidations_sampled: ClassVar[bool] = False

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        return [Connection("all", self.ws_url, ('{"op":"subscribe"}',))]

    async def load_markets(self, timeout_s: float) -> dict[str, Instrument]:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.get(f"{self.rest_url}/instruments")
            response.raise_for_status()
            return parse_instruments(response.json())
