"""Binance USDⓈ-M futures (``binance_usdm``): linear perpetuals, quantities in base coin.

Wire protocol (https://developers.binance.com/docs/derivatives/usds-margined-futures):

* Websocket base ``wss://fstream.binance.com/market``: the routed path for regular market
  data. ``@markPrice`` and ``@forceOrder`` are *not* delivered on an unrouted connection.
  We open ``<base>/stream`` and send ``SUBSCRIBE``; every data frame then arrives in the
  combined-stream envelope ``{"stream": ..., "data": ...}``. The server pings every 3 min
  (the websockets library answers), and closes every connection after 24 h.
* ``!markPrice@arr@1s``: every symbol's mark, index, funding rate and next funding time,
  once a second, as one array.
* ``!forceOrder@arr``: liquidation orders of every symbol; only the latest per symbol per
  1000 ms is pushed, so the tape is a sample (``sampled=True``).
* Open interest is REST only (``GET /fapi/v1/openInterest``, weight 1), in base coin.
* Funding intervals that differ from 8 h are listed by ``GET /fapi/v1/fundingInfo``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from ..events import Event, FundingRate, Liquidation, MarkPrice, OpenInterest, Side, per_hour
from .base import Connection, Instrument, Parser, Venue, now_ms
from .ccxt_markets import ccxt_client, close_quietly

VENUE = "binance_usdm"
STREAMS = ("!markPrice@arr@1s", "!forceOrder@arr")
DEFAULT_FUNDING_INTERVAL_H = 8.0


_NO_DATA = msgspec.Raw(b"")


class _Envelope(msgspec.Struct):
    stream: str | None = None
    data: msgspec.Raw = msgspec.field(default_factory=lambda: _NO_DATA)
    e: str | None = None  # a raw (non-combined) single event
    id: int | str | None = None
    result: Any = None
    error: Any = None


class _Mark(msgspec.Struct):
    """``{"e":"markPriceUpdate","E":1597536008000,"s":"BTCUSDT","p":"11857.56000000",
    "i":"11851.86949091","P":"11852.0","r":"0.00015640","T":1597564800000}``"""

    E: int
    s: str
    p: float
    i: float | None = None
    r: str = ""  # "" on delivery contracts
    T: int = 0


class _Order(msgspec.Struct):
    s: str
    S: str
    q: float
    p: float
    ap: float
    z: float
    T: int
    X: str = ""


class _ForceOrder(msgspec.Struct):
    """``{"e":"forceOrder","E":1584059031426,"o":{"s":"BTCUSDT","S":"BUY","o":"LIMIT",
    "f":"IOC","q":"0.014","p":"4793.91","ap":"4706.04","X":"FILLED","l":"0.015",
    "z":"0.014","T":1584059031421}}``"""

    E: int
    o: _Order


class _OpenInterest(msgspec.Struct):
    """``{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}``"""

    openInterest: float
    symbol: str
    time: int


class _PremiumIndex(msgspec.Struct):
    """``GET /fapi/v1/premiumIndex``: ``{"symbol":"BTCUSDT","markPrice":"11793.63104562",
    "indexPrice":"11781.80495970","estimatedSettlePrice":"11781.16138815",
    "lastFundingRate":"0.00038246","nextFundingTime":1597392000000,
    "interestRate":"0.00010000","time":1597370495002}``"""

    symbol: str
    markPrice: float
    indexPrice: float
    lastFundingRate: str
    nextFundingTime: int
    time: int


_envelope = msgspec.json.Decoder(_Envelope)
_marks = msgspec.json.Decoder(list[_Mark], strict=False)
_mark = msgspec.json.Decoder(_Mark, strict=False)
_force = msgspec.json.Decoder(_ForceOrder, strict=False)
_oi = msgspec.json.Decoder(_OpenInterest, strict=False)


class BinanceUsdmParser(Parser):
    """Parses combined-stream frames of ``!markPrice@arr@1s`` and ``!forceOrder@arr``."""

    def parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        if frame[:1] in (b"[", "["):  # a raw-mode !markPrice@arr frame
            return self._dispatch("!markPrice@arr", frame, recv_ms)
        try:
            env = _envelope.decode(frame)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.stats.error(self.venue, "invalid_json", frame)
            return []
        if env.stream is not None and len(env.data):
            return self._dispatch(env.stream, env.data, recv_ms)
        if env.e is not None:
            return self._dispatch(env.e, frame, recv_ms)
        if env.error is not None:
            self.stats.error(self.venue, "venue_error", frame)
        elif env.id is None:
            self.stats.error(self.venue, "unknown_frame", frame)
        return []  # a SUBSCRIBE ack: {"result":null,"id":1}

    def _dispatch(self, stream: str, data: msgspec.Raw | str | bytes, recv_ms: int) -> list[Event]:
        try:
            if "markPrice" in stream:
                raw = bytes(data) if isinstance(data, msgspec.Raw) else data
                return self._marks(_marks if raw[:1] in (b"[", "[") else _mark, raw, recv_ms)
            if "forceOrder" in stream:
                return self._liquidation(_force.decode(data), recv_ms)
        except (msgspec.ValidationError, msgspec.DecodeError):
            self.stats.error(self.venue, f"invalid_{stream.rsplit('@', 1)[-1]}", data)
            return []
        self.stats.error(self.venue, "unknown_stream", stream)
        return []

    def _marks(self, decoder: Any, raw: Any, recv_ms: int) -> list[Event]:
        decoded = decoder.decode(raw)
        updates: list[_Mark] = decoded if isinstance(decoded, list) else [decoded]
        out: list[Event] = []
        venue, markets, wanted = self.venue, self.markets, self.wanted
        for u in updates:
            inst = markets.get(u.s)
            if inst is None or (wanted is not None and u.s not in wanted):
                self.stats.filtered += 1
                continue
            self.last_mark[u.s] = u.p
            out.append(
                MarkPrice(
                    venue=venue,
                    symbol=u.s,
                    base=inst.base,
                    ts_ms=u.E,
                    recv_ms=recv_ms,
                    mark_price=u.p,
                    index_price=u.i,
                )
            )
            if u.r and u.T:
                rate = float(u.r)
                hours = inst.funding_interval_h
                out.append(
                    FundingRate(
                        venue=venue,
                        symbol=u.s,
                        base=inst.base,
                        ts_ms=u.E,
                        recv_ms=recv_ms,
                        funding_rate=rate,
                        interval_h=hours,
                        funding_rate_1h=per_hour(rate, hours),
                        next_funding_ms=u.T,
                    )
                )
        return out

    def _liquidation(self, msg: _ForceOrder, recv_ms: int) -> list[Event]:
        o = msg.o
        inst = self.markets.get(o.s)
        if inst is None or (self.wanted is not None and o.s not in self.wanted):
            self.stats.filtered += 1
            return []
        if o.S not in ("SELL", "BUY"):
            self.stats.error(self.venue, "invalid_side", o)
            return []
        # A SELL liquidation order closes a long position.
        side = Side.LONG if o.S == "SELL" else Side.SHORT
        qty = o.z if o.z > 0 else o.q
        price = o.ap if o.ap > 0 else o.p
        return [
            Liquidation(
                venue=self.venue,
                symbol=o.s,
                base=inst.base,
                ts_ms=o.T or msg.E,
                recv_ms=recv_ms,
                side=side,
                price=price,
                quantity=qty,
                quantity_base=inst.base_units(qty, price),
                notional_usd=inst.notional_usd(qty, price),
                sampled=True,
                # No id on the wire: trade time, order side, filled size and average price.
                event_id=f"{o.T}:{o.S}:{o.z}:{o.ap}",
            )
        ]


def parse_open_interest(
    payload: bytes | str | Mapping[str, Any], inst: Instrument, mark: float, recv_ms: int
) -> OpenInterest:
    """``GET /fapi/v1/openInterest`` (base coin) as an event valued at ``mark``."""
    if isinstance(payload, Mapping):
        oi = msgspec.convert(payload, _OpenInterest, strict=False)
    else:
        oi = _oi.decode(payload)
    return OpenInterest(
        venue=inst.venue,
        symbol=inst.symbol,
        base=inst.base,
        ts_ms=oi.time,
        recv_ms=recv_ms,
        oi_contracts=oi.openInterest / inst.contract_size,
        oi_base=inst.base_units(oi.openInterest / inst.contract_size, mark),
        oi_usd=inst.notional_usd(oi.openInterest / inst.contract_size, mark),
    )


def parse_premium_index(
    payload: bytes | str | Mapping[str, Any], inst: Instrument, recv_ms: int
) -> list[Event]:
    """``GET /fapi/v1/premiumIndex?symbol=`` as mark and funding events (the REST twin of the
    mark-price stream, used to seed state before the websocket delivers)."""
    if isinstance(payload, Mapping):
        px = msgspec.convert(payload, _PremiumIndex, strict=False)
    else:
        px = msgspec.json.decode(payload, type=_PremiumIndex, strict=False)
    out: list[Event] = [
        MarkPrice(
            venue=inst.venue,
            symbol=inst.symbol,
            base=inst.base,
            ts_ms=px.time,
            recv_ms=recv_ms,
            mark_price=px.markPrice,
            index_price=px.indexPrice,
        )
    ]
    if px.lastFundingRate and px.nextFundingTime:
        rate, hours = float(px.lastFundingRate), inst.funding_interval_h
        out.append(
            FundingRate(
                venue=inst.venue,
                symbol=inst.symbol,
                base=inst.base,
                ts_ms=px.time,
                recv_ms=recv_ms,
                funding_rate=rate,
                interval_h=hours,
                funding_rate_1h=per_hour(rate, hours),
                next_funding_ms=px.nextFundingTime,
            )
        )
    return out


def parse_funding_info(payload: list[Mapping[str, Any]]) -> dict[str, float]:
    """``GET /fapi/v1/fundingInfo``: the symbols whose funding interval is not the default.

    ``[{"symbol":"BLZUSDT","adjustedFundingRateCap":"0.02500000",
    "adjustedFundingRateFloor":"-0.02500000","fundingIntervalHours":4,"disclaimer":false}]``
    """
    out: dict[str, float] = {}
    for row in payload:
        hours = row.get("fundingIntervalHours")
        if isinstance(row.get("symbol"), str) and isinstance(hours, (int, float)) and hours > 0:
            out[row["symbol"]] = float(hours)
    return out


class BinanceUsdm(Venue):
    id: ClassVar[str] = VENUE
    default_ws_url: ClassVar[str] = "wss://fstream.binance.com/market"
    default_rest_url: ClassVar[str] = "https://fapi.binance.com"
    liquidations_sampled: ClassVar[bool] = True
    ccxt_id: ClassVar[str] = "binanceusdm"
    ccxt_hosts: ClassVar[tuple[str, ...]] = ("https://fapi.binance.com",)

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._client: Any = None

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        # All-market streams: two streams whatever the symbol count; filtering is ours.
        subscribe = msgspec.json.encode({"method": "SUBSCRIBE", "params": list(STREAMS), "id": 1})
        return [Connection("market", f"{self.ws_url}/stream", (subscribe.decode(),))]

    def new_parser(self, markets: Mapping[str, Instrument], wanted: set[str] | None) -> Parser:
        return BinanceUsdmParser(self.id, markets, wanted)

    def _ccxt(self) -> Any:
        if self._client is None:
            self._client = ccxt_client(self.ccxt_id, self.ccxt_hosts, self.rest_url)
        return self._client

    async def load_markets(self, timeout_s: float) -> dict[str, Instrument]:
        client = self._ccxt()
        client.timeout = int(timeout_s * 1000)
        markets = await client.load_markets(reload=True)
        intervals = parse_funding_info(await client.fapiPublicGetFundingInfo())
        out: dict[str, Instrument] = {}
        for m in markets.values():
            if not (m.get("swap") and m.get("linear")) or m.get("active") is False:
                continue
            sym = m["id"]
            out[sym] = Instrument(
                venue=self.id,
                symbol=sym,
                base=m["base"],
                quote=m["quote"],
                linear=True,
                contract_size=float(m.get("contractSize") or 1.0),
                funding_interval_h=intervals.get(sym, DEFAULT_FUNDING_INTERVAL_H),
            )
        return out

    @property
    def oi_over_rest(self) -> bool:
        return True

    async def fetch_open_interest(self, inst: Instrument, mark: float) -> OpenInterest:
        raw = await self._ccxt().fapiPublicGetOpenInterest({"symbol": inst.symbol})
        return parse_open_interest(raw, inst, mark, now_ms())

    async def close(self) -> None:
        if self._client is not None:
            await close_quietly(self._client)
            self._client = None
