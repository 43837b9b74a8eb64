"""BitMEX (``bitmex``): inverse (XBTUSD), quanto (ETHUSD) and linear (XBTUSDT) perpetuals.

Wire protocol (https://www.bitmex.com/app/wsAPI; tardis-node and cryptofeed recordings):

* One websocket, ``wss://ws.bitmex.com/realtime``. It greets with ``{"info":"Welcome to the
  BitMEX Realtime API.",…}``; ``{"op":"subscribe","args":["instrument:XBTUSD",…]}`` is acked
  per arg (``{"success":true,"subscribe":"instrument:XBTUSD","request":{…}}``), a refusal is
  ``{"status":400,"error":…,"request":{…}}`` (counted as ``venue_error``).
* Keep-alive: the client sends the *text* ``ping`` and gets the text ``pong``. BitMEX
  advises a ping after 5 s without a message; we ping every :data:`PING_INTERVAL_S`.
* Tables: a ``partial`` (the snapshot of the subscription, with its ``keys``) first, then
  ``insert``, ``update`` (only the changed fields of a row, matched by its keys) and
  ``delete``. The parser keeps each table's rows, so a reconnect's new partial replaces them.
* ``instrument`` (key ``symbol``): ``markPrice``, the index (``indexPrice`` when sent, else
  ``indicativeSettlePrice``: a perpetual "settles" on its index), ``openInterest`` in
  contracts, ``fundingRate`` for the coming funding at ``fundingTimestamp``, per
  ``fundingInterval`` (``2000-01-01T08:00:00.000Z`` = 8 h), and ``timestamp``. A diff without
  ``timestamp`` (``{"symbol":"ETHUSD","openInterest":58922153}``, real) is stamped with our
  receive time.
* ``liquidation`` (key ``orderID``; no timestamp: stamped with our receive time): the orders of
  the liquidation engine while they rest in the book. ``insert`` when the engine takes a
  position over, with ``side`` the *order* side (``Buy`` closes a short: a short was
  liquidated), ``price`` its limit (the bankruptcy price) and ``leavesQty`` the contracts
  left; ``update`` lowers ``leavesQty`` as it fills; ``delete`` when it is filled or
  cancelled (what the book did not take goes to the insurance fund, then to ADL).

**How a liquidation is counted.** Once, when its order first appears (an ``insert``, or a
``partial`` row of an order this parser has not counted), for its ``leavesQty`` at that
moment, valued at the order price, with ``event_id`` = ``orderID``. BitMEX's liquidation
pages: the engine "takes over the position" (on higher risk tiers, after a Fill-or-Kill
order that failed to bring it under a lower tier, "the entire position") "with a limit order
placed at the bankruptcy price". So the insert *is* the liquidation and its ``leavesQty`` the
position closed; the updates and the delete are that position being worked off (fills, then
the insurance fund or ADL for the rest). Counting them as well would count the position
twice; counting fills instead would miss what the insurance fund and ADL absorbed, and come
late. What this undercounts: the part of an order that filled on entry, before it rested
(the insert shows only the rest), an order filled entirely on entry or a successful
Fill-or-Kill reduction (never shown), and an order that came and went while we were
disconnected. A reconnect's partial re-sends the orders still open: those already counted
are known by their ``orderID`` (skipped by this parser, and by the store should a fresh
parser see them), and one placed during the gap is counted for what is left of it. The
table is neither throttled nor sampled: ``sampled`` is false.

**Retired.** BitMEX announced on 2026-07-23 that the exchange closes on 2026-09-23 at
04:00 UTC (https://www.bitmex.com/blog/bitmex-closure, quoted by ccxt PR 29914 and
gocryptotrader PR 2295; positions reduce-only from 2026-08-26 04:00 UTC, force-closed at the
closure). The venue is disabled in ``config/default.yaml`` (:attr:`Bitmex.retired`); the
module, its simulator and tests stay, as the protocol's record and for older recordings.

Sizing (see :mod:`.instruments`): inverse contracts are 1 USD; quanto contracts are
worth ``multiplier x price`` XBt, valued in USD at the XBTUSD mark price (XBTUSD's instrument
is subscribed first whenever a quanto is; a quanto liquidation or open interest before the
first XBT price is dropped and counted as ``without_xbt_price``, and such an order is counted
if a later partial re-sends it); linear contracts are ``multiplier / 1e6`` base coin. BitMEX's
own guides value a quanto at the ``.BXBT`` index ("USD Value | XBT Value * .BXBT Spot
Price", https://bitmex.com/app/quantoPerpetualsGuide); the XBTUSD mark differs from it only
by XBTUSD's fair basis.
Instruments come from ``GET /api/v1/instrument/active`` over httpx (the ccxt release we
depend on has no BitMEX client): one request, the open perpetuals kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

import httpx
import msgspec
import structlog
from msgspec import UNSET

from ...events import Event, Side
from .. import _stamp
from ..base import Connection, Instrument, Parser, Venue
from . import frames
from .instruments import (
    VENUE,
    XBT_REFERENCE,
    BitmexInstrument,
    instrument,
    parse_listing,
    subscribe_requests,
)

__all__ = [
    "PING",
    "PING_INTERVAL_S",
    "PONG",
    "XBT_REFERENCE",
    "Bitmex",
    "BitmexInstrument",
    "BitmexParser",
    "instrument",
    "subscribe_requests",
]

log = structlog.get_logger(__name__)

PING: Final = "ping"
PONG: Final = "pong"
PING_INTERVAL_S: Final = 5.0
INSTRUMENTS_PATH: Final = "/api/v1/instrument/active"
_SIDES: Final = {"Sell": Side.LONG, "Buy": Side.SHORT}
"""The liquidation *order* side: a sell closes a long."""


class BitmexParser(Parser):
    """Parses the ``instrument`` and ``liquidation`` tables, the protocol frames and the
    text ``pong``; keeps both tables' rows (see the module docstring)."""

    def __init__(
        self, venue: str, markets: Mapping[str, Instrument], wanted: set[str] | None
    ) -> None:
        super().__init__(venue, markets, wanted)
        self.instruments: dict[str, frames.InstrumentState] = {}
        self.orders: dict[str, frames.RestingOrder] = {}
        """The liquidation orders resting in the book, by ``orderID``."""
        self.xbt_usd: float | None = None
        """The XBTUSD mark: the XBT/USD price quanto contracts are valued at."""

    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        if frame in (PONG, PONG.encode()):
            return []
        if (env := self._decoded(frames.envelope, frame)) is None:
            return []
        if env.table is None:
            if env.error is not None or env.success is False:
                self.stats.error(self.venue, "venue_error", frame)
            elif env.info is None and env.success is None:
                self.stats.error(self.venue, "unknown_frame", frame)
            return []  # the welcome, an ack
        if env.table not in ("instrument", "liquidation"):
            self.stats.error(self.venue, "unknown_table", env.table)
            return []
        if env.action not in ("partial", "insert", "update", "delete") or not len(env.data):
            self.stats.error(self.venue, f"invalid_{env.table}", frame)
            return []
        try:
            if env.table == "instrument":
                rows = frames.instruments.decode(env.data)
                return self._instruments(env.action, rows, recv_ms)
            orders = frames.liquidations.decode(env.data)
            return self._liquidations(env.action, orders, env.filter, recv_ms)
        except (msgspec.ValidationError, msgspec.DecodeError):
            self.stats.error(self.venue, f"invalid_{env.table}", frame)
            return []

    def _instrument(self, symbol: str, payload: object = None, n: int = 1) -> Instrument | None:
        """As :meth:`.Parser._instrument`, but XBTUSD without metadata is not counted: its rows
        are still read for the XBT price."""
        if symbol == XBT_REFERENCE and symbol not in self.markets:
            return None
        return super()._instrument(symbol, payload, n)

    # -- instrument ----------------------------------------------------------------------------

    def _instruments(
        self, action: str, rows: list[frames.InstrumentRow], recv_ms: int
    ) -> list[Event]:
        out: list[Event] = []
        for r in rows:
            if action == "delete":
                self.instruments.pop(r.symbol, None)
                continue
            state = self.instruments.get(r.symbol)
            if action != "update" or state is None:
                if action == "update":  # the venue sends the partial first
                    self.stats.error(self.venue, "update_before_partial", r.symbol)
                state = self.instruments[r.symbol] = frames.InstrumentState()
            state.apply(r)
            if r.symbol == XBT_REFERENCE and state.mark is not None and state.mark > 0:
                self.xbt_usd = state.mark
            if state.mark is not None:
                self.last_mark[r.symbol] = state.mark
            inst = self._instrument(r.symbol, r)
            if inst is not None:
                ts = frames.ms(r.timestamp) if r.timestamp is not UNSET else recv_ms
                out += self._instrument_events(inst, r, state, ts, recv_ms)
        return out

    def _instrument_events(
        self,
        inst: Instrument,
        r: frames.InstrumentRow,
        s: frames.InstrumentState,
        ts: int,
        recv_ms: int,
    ) -> list[Event]:
        """An event per kind the row changed and the state can value."""
        out: list[Event] = []
        mark = s.mark
        prices = (r.markPrice, r.indexPrice, r.indicativeSettlePrice)
        if mark is not None and any(v is not UNSET for v in prices):
            out.append(_stamp.mark(self.venue, inst, ts, recv_ms, mark, s.index))
        changed = (r.fundingRate, r.fundingInterval, r.fundingTimestamp)
        if s.funding_rate is not None and any(v is not UNSET for v in changed):
            hours = s.interval_h or inst.funding_interval_h
            out.append(
                _stamp.funding(
                    self.venue, inst, ts, recv_ms, s.funding_rate, hours, s.next_funding_ms
                )
            )
        oi = s.open_interest
        if r.openInterest is not UNSET and oi is not None and mark:
            value = self._value(inst, oi, mark, r)
            if value is not None:
                out.append(_stamp.open_interest_of(self.venue, inst, ts, recv_ms, oi, *value))
        return out

    def _value(
        self, inst: Instrument, contracts: float, price: float, payload: object
    ) -> tuple[float, float] | None:
        """(base coin, USD) of ``contracts`` at ``price``; ``None`` (counted) for a quanto
        contract before the first XBT price."""
        if isinstance(inst, BitmexInstrument) and inst.quanto:
            if self.xbt_usd is None:
                self.stats.error(self.venue, "without_xbt_price", payload)
                return None
            xbt = self.xbt_usd
            return (
                inst.base_units(contracts, price, xbt),
                inst.notional_usd(contracts, price, xbt),
            )
        return inst.base_units(contracts, price), inst.notional_usd(contracts, price)

    # -- liquidation ---------------------------------------------------------------------------

    def _liquidations(
        self,
        action: str,
        rows: list[frames.LiquidationRow],
        scope: Mapping[str, Any] | None,
        recv_ms: int,
    ) -> list[Event]:
        if action == "partial":  # the open orders now: forget those that ended meanwhile
            symbol = (scope or {}).get("symbol")
            keep = {r.orderID for r in rows}
            for oid in [o for o, v in self.orders.items() if symbol in (None, v.symbol)]:
                if oid not in keep:
                    del self.orders[oid]
        out: list[Event] = []
        for r in rows:
            if action == "delete":
                self.orders.pop(r.orderID, None)
            elif action == "update":
                order = self.orders.get(r.orderID)
                if order is not None and r.leavesQty is not UNSET:
                    self.orders[r.orderID] = frames.RestingOrder(order.symbol, r.leavesQty)
            elif r.orderID not in self.orders:  # insert, or a partial row not seen yet
                out += self._liquidation(r, recv_ms)
        return out

    def _liquidation(self, r: frames.LiquidationRow, recv_ms: int) -> list[Event]:
        if r.side is UNSET or r.price is UNSET or r.leavesQty is UNSET or not r.symbol:
            self.stats.error(self.venue, "invalid_liquidation", r)
            return []
        side = _SIDES.get(r.side)
        if side is None:
            self.stats.error(self.venue, "invalid_side", r)
            return []
        order = frames.RestingOrder(r.symbol, r.leavesQty)
        inst = self._instrument(r.symbol, r)
        if inst is None:  # not ours: remembered, so that a partial re-sending it is quiet
            self.orders[r.orderID] = order
            return []
        value = self._value(inst, r.leavesQty, r.price, r)
        if value is None:  # not remembered: counted if a partial re-sends it once valued
            return []
        self.orders[r.orderID] = order
        base, usd = value
        # The table carries no time: its events take the time they were received.
        # The price is the order's limit: the bankruptcy price.
        return [
            _stamp.liquidation(
                self.venue,
                inst,
                recv_ms,
                recv_ms,
                side,
                price=r.price,
                quantity=r.leavesQty,
                sampled=False,
                event_id=r.orderID,
                quantity_base=base,
                notional_usd=usd,
            )
        ]


class Bitmex(Venue):
    id: ClassVar[str] = VENUE
    parser_class: ClassVar[type[Parser]] = BitmexParser
    default_ws_url: ClassVar[str] = "wss://ws.bitmex.com/realtime"
    default_rest_url: ClassVar[str] = "https://www.bitmex.com"
    liquidations_sampled: ClassVar[bool] = False
    retired: ClassVar[str | None] = (
        "BitMEX closed on 2026-09-23 04:00 UTC (https://www.bitmex.com/blog/bitmex-closure; "
        "reduce-only from 2026-08-26): kept for its simulator, recordings and protocol tests"
    )

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._client: httpx.AsyncClient | None = None

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        return [
            Connection(
                "realtime",
                self.ws_url,
                subscribe_requests(self.subscribed(markets), markets),
                ping=PING,
                ping_interval_s=PING_INTERVAL_S,
                pong=PONG,
            )
        ]

    async def load_markets(self, timeout_s: float) -> dict[str, Instrument]:
        """The open perpetuals of ``/api/v1/instrument/active`` that can be valued in USD.
        Raises ``ConnectionError`` when the venue cannot be reached and ``ValueError`` on an
        error status or an answer that is not a list of instruments (both retried by the
        collector)."""
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.rest_url)
        try:
            response = await self._client.get(INSTRUMENTS_PATH, timeout=timeout_s)
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"{self.id} {INSTRUMENTS_PATH}: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise ConnectionError(f"{self.id} {INSTRUMENTS_PATH}: {exc!r}") from exc
        if response.status_code != 200:
            raise ValueError(f"{self.id} {INSTRUMENTS_PATH}: HTTP {response.status_code}")
        out, skipped = parse_listing(response.content)
        if skipped:
            log.info("perpetuals not valued in USD left out", venue=self.id, symbols=skipped)
        return out

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
