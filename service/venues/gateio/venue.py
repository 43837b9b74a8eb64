"""Gate futures (``gateio``): USDT-settled perpetuals and the BTC-settled inverse ``BTC_USD``.

Wire protocol (https://www.gate.com/docs/developers/futures/ws/en/):

* Websocket base ``wss://fx-ws.gateio.ws/v4/ws``: ``<base>/usdt`` and ``<base>/btc``.
  Requests are ``{"time":<s>,"channel":...,"event":"subscribe","payload":[...]}``; the ack is
  ``{"time":...,"channel":...,"event":"subscribe","result":{"status":"success"}}``, a refusal
  carries an ``error`` object (counted as ``subscribe_failed``). About
  :data:`~.instruments.SYMBOLS_PER_CONNECTION` contracts a connection, hashed by name.
* Keep-alive: the server pings at the protocol level (answered by the websockets library);
  we also send ``{"time":...,"channel":"futures.ping"}`` every :data:`PING_INTERVAL_S`
  (the docs' demo: 10 s), answered by ``{"channel":"futures.pong","event":"","result":null}``.
* ``futures.tickers`` (per contract): ``mark_price``, ``index_price``, ``funding_rate`` (per
  the contract's ``funding_interval``; the indicative rate is deprecated and not read) and
  ``total_size``, the open interest in **contracts**: x ``quanto_multiplier`` coin for USDT
  contracts (BTC_USDT 153 482 780 x 0.0001 = 15 348 BTC), 1 USD each for ``BTC_USD``. The
  ``result`` came as a list (2020, 2023), a list of lists (2021) and a bare object (2022):
  all are read. The frame time is ``time_ms``, or ``time`` (s) before 2023. Reports: at most
  once a second per symbol and kind, from the merged state (see :mod:`._ticker_state`);
  the next funding time is the contract's settlement grid (``funding_next_apply`` + whole
  intervals), as the ticker has none.
* ``futures.public_liquidates`` (payload ``["!all"]``: every contract of the settlement).
  ``size`` is the liquidation **order**'s signed size in contracts: negative = a sell order
  = a **long** was liquidated (as in ``futures.trades``, "positive size means taker is
  buyer"; the docs' examples are negative, and public collectors read it the same way).
  ``price`` is the liquidation order's price. Two formats, both read:

  - until 2026-08-20: at most one liquidation per contract per second ("每个合约每1秒最多推一条
    强平订单数据"), ``time`` in **seconds** in the docs' samples, while the field table
    named it ``time_ms`` (ms): a **sample** (``sampled`` true);
  - since 2026-08-20 (the changelog of the Chinese docs, "Last Updated: 8/20/2026":
    "调整为聚合推送 ... 不再丢弃周期内的其他强平订单", aggregated, "no longer discarding the
    other liquidation orders within the period"): every liquidation of a contract within an
    aggregation period (1 s by default; sent early at 20) in one array, and the table's
    field is ``time`` (强平时间, "liquidation time", in **ms**): **complete** (``sampled``
    false).

  The format is told per row: ``time`` in ms (above :data:`MS_SINCE`) is the current,
  complete format; a ``time`` in seconds, or a row carrying only the old table's ``time_ms``,
  is the old sampled one (its time read from ``time_ms`` when present). The handshake
  sends ``X-Gate-Size-Decimal: 1``, so sizes (and ``total_size``) are decimal texts,
  fractional contracts included. There is no id: ``event_id`` is
  ``<time ms>:<size>:<price>`` as sent, with the contract as the symbol; identical for a
  re-send after a reconnect. Two liquidations of one contract in the same millisecond at
  the same price and size would count once.

Instruments come from ``GET /api/v4/futures/{usdt,btc}/contracts`` through ccxt's implicit
endpoint (rate limit, error mapping, configurable base URL); see :mod:`.instruments`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import ClassVar, Final

import msgspec
import structlog
from ccxt.base.errors import BadResponse

from ...config import VenueSettings
from ...events import Event, Side
from .. import _stamp
from .._numbers import number, optional_number
from .._shards import Shards
from .._ticker_state import STATE_EVERY_MS, TickerState, report
from ..base import Connection, Instrument, ParseError, Parser
from ..ccxt_markets import CcxtBackedVenue
from . import frames
from .instruments import (
    SETTLES,
    SYMBOLS_PER_CONNECTION,
    VENUE,
    GateContract,
    by_settle,
    parse_contracts,
    subscribe_requests,
)

log = structlog.get_logger(__name__)

PING_INTERVAL_S: Final = 10.0
PONG_MARKER: Final = '"futures.pong"'
SIZE_DECIMAL_HEADER: Final = (("X-Gate-Size-Decimal", "1"),)
"""Sizes as decimal strings instead of whole contracts (what tardis sends too)."""
TICKERS: Final = "futures.tickers"
LIQUIDATES: Final = "futures.public_liquidates"
PROTOCOL_EVENTS: Final = frozenset({"subscribe", "unsubscribe"})
MS_SINCE: Final = 10**11
"""A ``time`` above this is in milliseconds (seconds stay under it until the year 5138)."""


class GateParser(Parser):
    """Parses ``futures.tickers`` and ``futures.public_liquidates`` of both settlements, the
    acks and the pongs."""

    def __init__(self, venue: str, markets: Mapping[str, Instrument], wanted: set[str] | None):
        super().__init__(venue, markets, wanted)
        self.tickers: dict[str, TickerState] = {}
        self.state_every_ms = STATE_EVERY_MS

    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        if (env := self._decoded(frames.envelope, frame)) is None:
            return []
        if env.channel == "futures.pong":
            return []
        if env.event in PROTOCOL_EVENTS:
            if env.error is not None or self._failed(env.result):
                self.stats.error(self.venue, "subscribe_failed", frame)
            return []
        if env.channel not in (TICKERS, LIQUIDATES):
            reason = "unknown_channel" if env.channel else "unknown_frame"
            self.stats.error(self.venue, reason, env.channel or frame)
            return []
        if env.event != "update" or not len(env.result):
            self.stats.error(self.venue, f"invalid_{env.channel}", frame)
            return []
        try:
            rows = frames.objects(env.result)
            if env.channel == TICKERS:
                ts = env.time_ms or (env.time or 0) * 1000 or recv_ms
                tickers = [frames.ticker.decode(r) for r in rows]
                return [e for t in tickers for e in self._ticker(t, ts, recv_ms)]
            return self._liquidations([frames.liquidation.decode(r) for r in rows], recv_ms)
        except ValueError:  # msgspec's errors, and ParseError: a field that is no number
            self.stats.error(self.venue, f"invalid_{env.channel}", frame)
            return []

    @staticmethod
    def _failed(result: msgspec.Raw) -> bool:
        try:
            status = frames.status.decode(result) if len(result) else None
        except ValueError:
            return False
        return status is not None and status.status == "fail"

    def _ticker(self, t: frames.Ticker, ts: int, recv_ms: int) -> list[Event]:
        if (inst := self._instrument(t.contract)) is None:
            return []
        values = {
            "mark": optional_number(t.mark_price),
            "index": optional_number(t.index_price),
            "open_interest": optional_number(t.total_size),
            "funding_rate": optional_number(t.funding_rate),
        }  # all converted before anything is merged: a bad field leaves the state as it was
        state = self.tickers.setdefault(t.contract, TickerState())
        state.apply(**values)
        if values["funding_rate"] is not None and isinstance(inst, GateContract):
            state.next_funding_ms = inst.next_funding_ms(ts)
        if state.mark is not None:
            self.last_mark[t.contract] = state.mark
        return report(self.venue, inst, state, ts, recv_ms, self.state_every_ms)

    def _liquidations(self, rows: list[frames.Liquidation], recv_ms: int) -> list[Event]:
        out: list[Event] = []
        for row in rows:
            if (inst := self._instrument(row.contract)) is None:
                continue
            try:
                size, price = number(row.size), number(row.price)
            except ParseError:  # one bad row: keep the rest of the batch
                size = price = 0.0
            if row.time is not None and row.time >= MS_SINCE:  # the 2026-08-20 format
                complete, ts = True, row.time
            else:  # the old sample: time in s, or the old table's time_ms
                complete, ts = False, row.time_ms or (row.time or 0) * 1000
            if size == 0 or price <= 0 or ts <= 0:
                self.stats.error(self.venue, "invalid_liquidation", row)
                continue
            side = Side.LONG if size < 0 else Side.SHORT  # a sell closes a long
            eid = f"{ts}:{row.size}:{row.price}"
            sampled = not complete  # the old one-a-second sample
            out.append(_stamp.liquidation(
                self.venue, inst, ts, recv_ms, side,
                price=price, quantity=abs(size), sampled=sampled, event_id=eid,
            ))  # fmt: skip
        return out


class Gate(CcxtBackedVenue):
    id: ClassVar[str] = VENUE
    parser_class: ClassVar[type[Parser]] = GateParser
    default_ws_url: ClassVar[str] = "wss://fx-ws.gateio.ws/v4/ws"
    default_rest_url: ClassVar[str] = "https://api.gateio.ws"
    liquidations_sampled: ClassVar[bool] = False
    """Complete since the 2026-08-20 format (frames of the old format are marked sampled)."""
    ccxt_id: ClassVar[str] = "gate"
    ccxt_hosts: ClassVar[tuple[str, ...]] = ("https://api.gateio.ws",)

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        self._shards = Shards(self.id, SYMBOLS_PER_CONNECTION)
        self._time_s = int(time.time())
        """The ``time`` of our requests: fixed, so that the same subscription is the same
        text at every metadata refresh (see :func:`.instruments.subscribe_requests`)."""

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """``usdt-1``... and ``btc-1``: per settlement, its subscribed contracts in shards;
        the first shard also takes the settlement's liquidations (``!all``). The shard count
        is fixed by the first call (names and assignments survive a metadata refresh)."""
        ping = f'{{"time":{self._time_s},"channel":"futures.ping"}}'
        groups_by_settle = by_settle(markets, self.subscribed(markets))
        out: list[Connection] = []
        for settle in SETTLES:
            groups = self._shards(settle, sorted(groups_by_settle.get(settle, [])))
            for n, (index, group) in enumerate(groups.items()):
                out.append(
                    Connection(
                        f"{settle}-{index + 1}",
                        f"{self.ws_url}/{settle}",
                        subscribe_requests(group, self._time_s, liquidations=n == 0),
                        ping=ping,
                        ping_interval_s=PING_INTERVAL_S,
                        pong=PONG_MARKER,
                        headers=SIZE_DECIMAL_HEADER,
                    )
                )
        return out

    async def load_markets(self, timeout_s: float) -> dict[str, Instrument]:
        client = self._ccxt_within(timeout_s)
        out: dict[str, Instrument] = {}
        for settle in SETTLES:
            raw = await client.publicFuturesGetSettleContracts({"settle": settle})
            try:
                listed = parse_contracts(raw, settle)
            except ValueError as exc:
                raise BadResponse(f"{self.id} {settle} contracts: {exc}") from exc
            out.update((c.symbol, c) for c in listed)
        return out
