"""What Binance's two futures products share on the wire: USDⓈ-M (``fapi``/``fstream``) and
COIN-M (``dapi``/``dstream``).

Both speak the same protocol: the combined-stream envelope ``{"stream": ..., "data": ...}``,
the ``SUBSCRIBE`` request and its ack, the ``markPriceUpdate`` and ``forceOrder`` events, and
the REST bodies of ``premiumIndex`` and ``fundingInfo``. They differ in units only (USDⓈ-M
quantities are base coin; COIN-M quantities are contracts of ``contractSize`` USD), and the
:class:`~.base.Instrument` carries that: the decoding below is the same for both.

Sources: https://developers.binance.com/docs/derivatives/usds-margined-futures and
https://developers.binance.com/docs/derivatives/coin-margined-futures ("Mark Price Stream",
"Mark Price of All Symbols of a Pair", "All Market Liquidation Order Streams").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import msgspec
import structlog

from ...events import Event, OpenInterest, Side
from ...validate import MAX_INTERVAL_H
from .. import _stamp
from .._numbers import Finite
from ..base import BAD_NUMBER, Instrument, ParseError, Parser
from ..ccxt_markets import CcxtBackedVenue

log = structlog.get_logger(__name__)

DEFAULT_FUNDING_INTERVAL_H = 8.0

_NO_DATA = msgspec.Raw(b"")


class _Envelope(msgspec.Struct):
    stream: str | None = None
    data: msgspec.Raw = msgspec.field(default_factory=lambda: _NO_DATA)
    e: str | None = None  # a raw (non-combined) single event
    id: int | str | None = None
    result: Any = None
    error: Any = None
    generated: bool = False
    """Set by tardis.dev on REST responses it wraps as pseudo-frames; never on the wire."""


class _Mark(msgspec.Struct):
    """``{"e":"markPriceUpdate","E":1597536008000,"s":"BTCUSDT","p":"11857.56000000",
    "i":"11851.86949091","P":"11852.0","r":"0.00015640","T":1597564800000}``

    COIN-M delivery contracts: ``"r":""`` and ``"T":0`` (no funding); an older COIN-M
    recording has neither ``i`` nor ``r`` nor ``T``."""

    E: int
    s: str
    p: Finite
    i: Finite | None = None
    r: str = ""
    T: int = 0


class _Order(msgspec.Struct):
    s: str
    S: str
    # Decimal strings as sent: the identity is built from them as they are (formatting
    # floats back would cost more than parsing them).
    q: str
    p: str
    ap: str
    z: str
    T: int
    X: str = ""
    ps: str = ""  # COIN-M only: the pair, e.g. BTCUSD


class _ForceOrder(msgspec.Struct):
    """USDⓈ-M: ``{"e":"forceOrder","E":1584059031426,"o":{"s":"BTCUSDT","S":"BUY",
    "o":"LIMIT","f":"IOC","q":"0.014","p":"4793.91","ap":"4706.04","X":"FILLED","l":"0.015",
    "z":"0.014","T":1584059031421}}``; COIN-M adds ``"ps":"BTCUSD"`` and counts contracts."""

    E: int
    o: _Order


class PremiumIndex(msgspec.Struct):
    """A row of ``GET /fapi/v1/premiumIndex`` or ``GET /dapi/v1/premiumIndex``:
    ``{"symbol":"BTCUSDT","markPrice":"11793.63104562","indexPrice":"11781.80495970",
    "estimatedSettlePrice":"11781.16138815","lastFundingRate":"0.00038246",
    "nextFundingTime":1597392000000,"interestRate":"0.00010000","time":1597370495002}``
    (COIN-M adds ``pair``; its delivery rows have ``"lastFundingRate":""`` and
    ``"nextFundingTime":0``)."""

    symbol: str
    markPrice: Finite
    indexPrice: Finite
    time: int
    lastFundingRate: str = ""
    nextFundingTime: int = 0


_envelope = msgspec.json.Decoder(_Envelope)
_marks = msgspec.json.Decoder(list[_Mark], strict=False)
_mark = msgspec.json.Decoder(_Mark, strict=False)
_force = msgspec.json.Decoder(_ForceOrder, strict=False)


class BinanceParser(Parser):
    """Parses Binance futures frames: ``markPriceUpdate`` (one object, or an array from the
    all-market or per-pair streams) and ``forceOrder``, combined or raw."""

    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        if frame[:1] in (b"[", "["):  # a raw-mode array of markPriceUpdate
            return self._dispatch("markPrice@arr", frame, recv_ms)
        try:
            env = _envelope.decode(frame)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.stats.error(self.venue, "invalid_json", frame)
            return []
        if env.generated:  # a REST response wrapped by a recorder, not a venue frame
            self.stats.error(self.venue, "rest_pseudo_frame", frame)
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
                if raw[:1] in (b"[", "["):
                    return self._marks(_marks.decode(raw), recv_ms)
                return self._marks([_mark.decode(raw)], recv_ms)
            if "forceOrder" in stream:
                return self._liquidation(_force.decode(data), recv_ms)
        except (msgspec.ValidationError, msgspec.DecodeError):
            self.stats.error(self.venue, f"invalid_{stream.rsplit('@', 1)[-1]}", data)
            return []
        self.stats.error(self.venue, "unknown_stream", stream)
        return []

    def _marks(self, updates: Iterable[_Mark], recv_ms: int) -> list[Event]:
        out: list[Event] = []
        markets, wanted = self.markets, self.wanted
        for u in updates:
            inst = markets.get(u.s)
            if inst is None or (wanted is not None and u.s not in wanted):
                self.stats.filtered += 1
                continue
            try:
                out += mark_and_funding(inst, u.E, recv_ms, u.p, u.i, u.r, u.T)
            except ParseError as exc:  # one bad row: keep the rest of the array
                self.stats.error(self.venue, exc.reason, u)
                continue
            if u.p > 0:  # open interest is valued at it (a bad one is dropped as an event)
                self.last_mark[u.s] = u.p
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
        try:  # NaN and infinities pass here, and fail the event's check (Parser.parse)
            z, ap = float(o.z), float(o.ap)
            qty = z if z > 0 else float(o.q)
            price = ap if ap > 0 else float(o.p)
        except ValueError:
            raise ParseError(BAD_NUMBER) from None  # the frame's one order: the frame
        # No id on the wire: trade time, order side, filled size and average price.
        eid = ":".join((str(o.T), o.S, o.z, o.ap))
        return [_stamp.liquidation(
            self.venue, inst, o.T or msg.E, recv_ms, side,
            price=price, quantity=qty, sampled=True, event_id=eid,
        )]  # fmt: skip


def open_interest_event(
    inst: Instrument, contracts: float, ts_ms: int, mark: float, recv_ms: int
) -> OpenInterest:
    """Open interest of ``contracts`` native contracts, valued at ``mark``."""
    return _stamp.open_interest(inst.venue, inst, ts_ms, recv_ms, contracts, mark)


def mark_and_funding(
    inst: Instrument, ts_ms: int, recv_ms: int, mark: float, index: float | None,
    rate: str, next_funding_ms: int,
) -> list[Event]:  # fmt: skip
    """A mark price and, for perpetuals, the funding rate (delivery contracts send
    ``"r":""`` and ``"T":0``): what both the mark-price stream and ``premiumIndex`` carry.
    Raises :class:`ParseError` when the rate is not a number (a NaN or an infinity makes
    a funding event that fails its check)."""
    out: list[Event] = [_stamp.mark(inst.venue, inst, ts_ms, recv_ms, mark, index)]
    if rate and next_funding_ms:
        try:
            value = float(rate)
        except ValueError:
            raise ParseError(BAD_NUMBER) from None
        out.append(
            _stamp.funding(
                inst.venue, inst, ts_ms, recv_ms, value, inst.funding_interval_h, next_funding_ms
            )
        )
    return out


def premium_index_events(px: PremiumIndex, inst: Instrument, recv_ms: int) -> list[Event]:
    """One ``premiumIndex`` row as mark and (perpetuals only) funding events."""
    return mark_and_funding(
        inst, px.time, recv_ms, px.markPrice, px.indexPrice, px.lastFundingRate,
        px.nextFundingTime,
    )  # fmt: skip


def parse_funding_info(payload: list[Mapping[str, Any]]) -> dict[str, float]:
    """``GET /fapi/v1/fundingInfo`` or ``/dapi/v1/fundingInfo``: the symbols whose funding
    interval (or cap) was adjusted; every other symbol funds every 8 h.

    ``[{"symbol":"BLZUSDT","adjustedFundingRateCap":"0.02500000",
    "adjustedFundingRateFloor":"-0.02500000","fundingIntervalHours":4,"disclaimer":false}]``
    """
    out: dict[str, float] = {}
    for row in payload:
        hours = row.get("fundingIntervalHours")
        if (
            isinstance(row.get("symbol"), str)
            and isinstance(hours, (int, float))
            and 0 < hours <= MAX_INTERVAL_H  # and not a 400-digit int, nor NaN
        ):
            out[row["symbol"]] = float(hours)
    return out


def subscribe_message(streams: Iterable[str], request_id: int = 1) -> str:
    """``{"method":"SUBSCRIBE","params":[...],"id":1}``, answered ``{"result":null,"id":1}``."""
    msg = {"method": "SUBSCRIBE", "params": list(streams), "id": request_id}
    return msgspec.json.encode(msg).decode()


class BinanceVenue(CcxtBackedVenue):
    """A Binance futures product: its ccxt client (REST metadata and open interest), its
    parser, and open interest over REST (neither product streams it)."""

    liquidations_sampled: ClassVar[bool] = True
    """``forceOrder``: "only the latest one liquidation order within 1000ms" per symbol."""
    ccxt_id: ClassVar[str]
    ccxt_hosts: ClassVar[tuple[str, ...]]
    parser_class: ClassVar[type[BinanceParser]] = BinanceParser

    @property
    def oi_over_rest(self) -> bool:
        return True

    linear: ClassVar[bool]
    """USDⓈ-M: linear (quantities in base coin); COIN-M: inverse (USD contracts)."""

    async def _rest(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """A public REST call of this product (``/fapi/v1/<path>`` or ``/dapi/v1/<path>``)
        through ccxt: its rate limiting, error mapping and base-URL override."""
        method = f"{'fapi' if self.linear else 'dapi'}PublicGet{path}"
        return await getattr(self._ccxt(), method)(params or {})

    async def load_markets(self, timeout_s: float) -> dict[str, Instrument]:
        """The product's active perpetuals, with contract sizes from the exchange info and
        funding intervals from ``fundingInfo`` (which lists only the adjusted symbols)."""
        client = self._ccxt_within(timeout_s)
        markets = await client.load_markets(reload=True)
        intervals = parse_funding_info(await self._rest("FundingInfo"))
        kind = "linear" if self.linear else "inverse"
        out: dict[str, Instrument] = {}
        for m in markets.values():
            if not (m.get("swap") and m.get(kind)) or m.get("active") is False:
                continue
            sym, size = m["id"], m.get("contractSize")
            if not self.linear and not size:  # an inverse contract needs its size to be valued
                log.warning("inverse contract without contractSize", venue=self.id, symbol=sym)
                continue
            out[sym] = Instrument(
                venue=self.id,
                symbol=sym,
                base=m["base"],
                quote=m["quote"],
                linear=self.linear,
                contract_size=float(size or 1.0),
                funding_interval_h=intervals.get(sym, DEFAULT_FUNDING_INTERVAL_H),
            )
        return out
