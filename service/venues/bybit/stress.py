"""Bybit v5 leverage-stress bodies and frames as stress events (docs/stress.md).

Sources (https://bybit-exchange.github.io/docs/v5/):

* ``GET /v5/market/adlAlert`` (data refreshed every minute) and the websocket topic
  ``adlAlert.{USDT|USDC|inverse}`` (pushed every second): per symbol, the balance of its
  insurance pool (``balance``/``b``), the symbol's 8 h PnL drawdown ratio
  (``pnlRatio``/``pr``), the ratio that triggers ADL (``insurancePnlRatio``/``i_pr``), the
  pool balance above which that trigger applies (``adlTriggerThreshold``/``adl_tt``) and the
  ratio at which ADL stops (``adlStopRatio``/``adl_sr``). ADL fires when the balance is
  ≤ 0, or when the balance is above ``adl_tt`` and ``pr < i_pr``. Mapped onto the
  :class:`~service.events.AdlLevel` scale by :func:`adl_level`.
* ``GET /v5/market/insurance`` (isolated pools every minute, shared pools every 24 h) and
  the websocket topic ``insurance.{USDT|USDC|inverse}`` (every second, isolated pools only,
  nothing pushed when no balance changed).
* ``GET /v5/market/account-ratio`` (``buyRatio``/``sellRatio`` of accounts net long/short;
  periods 5min to 1d).

None of these pages states a weight of its own: every HTTP request to ``api.bybit.com``
counts against one per-IP limit, 600 requests in any 5-second window
(https://bybit-exchange.github.io/docs/v5/rate-limit; past it, "403, access too frequent"
and a ban of at least 10 minutes). Numbers are strings in REST and numbers on the
websocket: both are read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from ...events import (
    AdlLevel,
    AdlRisk,
    InsuranceFund,
    Positioning,
    PositioningMetric,
    StressEvent,
)
from .. import _stress
from .._numbers import Finite, number
from ..base import INVALID_FRAME, Instrument, ParseError, ParseStats
from .venue import VENUE

PERIOD_S: Final = {"5min": 300, "15min": 900, "30min": 1800, "1h": 3600, "4h": 14400,
                   "1d": 86400}  # fmt: skip
ADL_ALERT_PATH: Final = "/v5/market/adlAlert"
INSURANCE_PATH: Final = "/v5/market/insurance"
ACCOUNT_RATIO_PATH: Final = "/v5/market/account-ratio"
IP_LIMIT: Final = _stress.Limit("ip", 600, 5.0)
"""Bybit's HTTP limit per IP: 600 requests in any 5 s, shared by every call to the host."""
LIMITS: Final = (IP_LIMIT,)
ALERTS_EVERY_S: Final = 60.0
"""The ADL alerts' REST poll: their data is refreshed every minute."""


class _Listing(msgspec.Struct):
    """A v5 ``result``: its rows and, on some endpoints, their time (the docs' tables call it
    ``updateTime``, their examples ``updatedTime``: both are read)."""

    rows: list[Any] = msgspec.field(name="list")
    updatedTime: int | None = None
    updateTime: int | None = None

    def time(self) -> int:
        ts = self.updatedTime if self.updatedTime is not None else self.updateTime
        if ts is None:
            raise ParseError(INVALID_FRAME)
        return ts


class _Result(msgspec.Struct):
    retCode: int
    result: Any
    retMsg: str = ""


class _AdlAlert(msgspec.Struct):
    """REST row: ``{"coin":"USDT","symbol":"BTCUSDT","balance":"92203504694.99632",
    "maxBalance":"92231510324.75948","insurancePnlRatio":"-0.3","pnlRatio":"-0.560973",
    "adlTriggerThreshold":"10000","adlStopRatio":"-0.25"}``"""

    coin: str
    symbol: str
    balance: Finite
    insurancePnlRatio: Finite
    pnlRatio: str
    adlTriggerThreshold: Finite


class _AdlAlertWs(msgspec.Struct):
    """Websocket row: ``{"c":"USDT","s":"ZORAUSDT","b":19873.46255153,"mb":19874.97612833,
    "i_pr":-0.3,"pr":0.000174,"adl_tt":10000,"adl_sr":-0.25}`` (``mb`` deprecated)."""

    c: str
    s: str
    b: Finite
    i_pr: Finite
    pr: Finite
    adl_tt: Finite


class _Frame(msgspec.Struct):
    topic: str
    ts: int
    data: Any


class _Insurance(msgspec.Struct):
    """REST row: ``{"coin":"ETH","balance":"0.00187332","value":"0"}`` (newer pages add
    ``symbols``: ``"BTCUSDT,ETHUSDT,SOLUSDT"``)."""

    coin: str
    balance: Finite
    value: Finite
    symbols: str = ""


class _InsuranceWs(msgspec.Struct):
    """``{"coin":"USDT","symbols":"GRIFFAINUSDT","balance":"25614.92972633",
    "updateTime":"1747722930000"}``"""

    coin: str
    symbols: str
    balance: Finite
    updateTime: int


class _AccountRatio(msgspec.Struct):
    """``{"symbol":"BTCUSDT","buyRatio":"0.5777","sellRatio":"0.4223",
    "timestamp":"1695772800000"}``"""

    symbol: str
    buyRatio: Finite
    sellRatio: Finite
    timestamp: int


def adl_level(balance: float, pnl_ratio: float, trigger_ratio: float, threshold: float) -> AdlLevel:
    """Bybit's ADL conditions on the common scale: ``ACTIVE`` when the pool balance is ≤ 0,
    or above ``threshold`` with ``pnl_ratio`` past ``trigger_ratio``; else how far the
    drawdown has come to its trigger (:func:`~service.venues._stress.level_of_progress`),
    at most ``HIGH`` while the drawdown trigger does not apply (balance ≤ ``threshold``)."""
    if balance <= 0.0:
        return AdlLevel.ACTIVE
    level = _stress.level_of_progress(pnl_ratio, trigger_ratio)
    if balance <= threshold:
        return min(level, AdlLevel.HIGH)
    return level


def _result(doc: Any) -> _Listing:
    """The ``result`` of a v5 REST answer; an error answer raises ``venue_error``."""
    answer = msgspec.convert(doc, _Result, strict=False)
    if answer.retCode != 0:
        raise ParseError(_stress.VENUE_ERROR)
    return msgspec.convert(answer.result, _Listing, strict=False)


def _adl_event(
    inst: Instrument, ts_ms: int, recv_ms: int, coin_balance: float, pr: float, i_pr: float,
    tt: float, native: str,
) -> AdlRisk:  # fmt: skip
    return AdlRisk(
        venue=VENUE,
        symbol=inst.symbol,
        base=inst.base,
        ts_ms=ts_ms,
        recv_ms=recv_ms,
        level=adl_level(coin_balance, pr, i_pr, tt),
        native=native,
        native_kind="pnl_drawdown_ratio",
        trigger=i_pr,
        pool_balance=coin_balance,
    )


def parse_adl_alert(
    body: _stress.Body, markets: Mapping[str, Instrument], recv_ms: int, stats: ParseStats
) -> list[StressEvent]:
    """``GET /v5/market/adlAlert`` as :class:`~service.events.AdlRisk` events, stamped with
    the body's ``updatedTime``; ``native`` is ``pnlRatio`` as sent."""

    def parse(doc: Any) -> list[StressEvent]:
        result = _result(doc)
        ts = result.time()
        out: list[StressEvent] = []
        for row in _stress.rows(VENUE, stats, result.rows, _AdlAlert):
            inst = _stress.instrument(VENUE, stats, markets, row.symbol)
            if inst is None:
                continue
            try:
                pr = number(row.pnlRatio)
            except ParseError as exc:
                stats.error(VENUE, exc.reason, row)
                continue
            out.append(
                _adl_event(
                    inst,
                    ts,
                    recv_ms,
                    row.balance,
                    pr,
                    row.insurancePnlRatio,
                    row.adlTriggerThreshold,
                    row.pnlRatio,
                )
            )
        return out

    return _stress.read(VENUE, stats, body, parse)


def parse_adl_alert_frame(
    frame: _stress.Body, markets: Mapping[str, Instrument], recv_ms: int, stats: ParseStats
) -> list[StressEvent]:
    """A websocket ``adlAlert.*`` frame as :class:`~service.events.AdlRisk` events, stamped
    with the frame's ``ts``."""

    def parse(doc: Any) -> list[StressEvent]:
        f = msgspec.convert(doc, _Frame)
        if not f.topic.startswith("adlAlert."):
            raise ParseError(INVALID_FRAME)
        out: list[StressEvent] = []
        for row in _stress.rows(VENUE, stats, f.data, _AdlAlertWs):
            inst = _stress.instrument(VENUE, stats, markets, row.s)
            if inst is not None:
                out.append(
                    _adl_event(
                        inst, f.ts, recv_ms, row.b, row.pr, row.i_pr, row.adl_tt, repr(row.pr)
                    )
                )
        return out

    return _stress.read(VENUE, stats, body=frame, parse=parse)


def _pool(
    markets: Mapping[str, Instrument], coin: str, symbols_text: str
) -> tuple[str, str, tuple[str, ...]]:
    """Pool id, base and symbols of a pool row: its symbols (comma-separated) when listed,
    the first being its id; else the coin (one pool per coin, as the older answers have)."""
    symbols = tuple(sorted(s for s in symbols_text.split(",") if s))
    if not symbols:
        return coin, "*", ()
    return symbols[0], _stress.pool_base(markets, symbols), symbols


def parse_insurance(
    body: _stress.Body, markets: Mapping[str, Instrument], recv_ms: int, stats: ParseStats
) -> list[StressEvent]:
    """``GET /v5/market/insurance`` as :class:`~service.events.InsuranceFund` events, with the
    venue's own USD ``value``."""

    def parse(doc: Any) -> list[StressEvent]:
        result = _result(doc)
        ts = result.time()
        out: list[StressEvent] = []
        for row in _stress.rows(VENUE, stats, result.rows, _Insurance):
            pool, base, symbols = _pool(markets, row.coin, row.symbols)
            out.append(
                InsuranceFund(
                    venue=VENUE,
                    symbol=pool,
                    base=base,
                    ts_ms=ts,
                    recv_ms=recv_ms,
                    pool=pool,
                    asset=row.coin,
                    balance=row.balance,
                    balance_usd=row.value,
                    symbols=symbols,
                )
            )
        return out

    return _stress.read(VENUE, stats, body, parse)


def parse_insurance_frame(
    frame: _stress.Body, markets: Mapping[str, Instrument], recv_ms: int, stats: ParseStats
) -> list[StressEvent]:
    """A websocket ``insurance.*`` frame as :class:`~service.events.InsuranceFund` events
    (isolated pools; USD for stablecoin pools only)."""

    def parse(doc: Any) -> list[StressEvent]:
        f = msgspec.convert(doc, _Frame)
        if not f.topic.startswith("insurance."):
            raise ParseError(INVALID_FRAME)
        out: list[StressEvent] = []
        for row in _stress.rows(VENUE, stats, f.data, _InsuranceWs):
            pool, base, symbols = _pool(markets, row.coin, row.symbols)
            out.append(
                InsuranceFund(
                    venue=VENUE,
                    symbol=pool,
                    base=base,
                    ts_ms=row.updateTime,
                    recv_ms=recv_ms,
                    pool=pool,
                    asset=row.coin,
                    balance=row.balance,
                    balance_usd=_stress.usd_at_par(row.coin, row.balance),
                    symbols=symbols,
                )
            )
        return out

    return _stress.read(VENUE, stats, frame, parse)


def parse_account_ratio(
    body: _stress.Body, markets: Mapping[str, Instrument], recv_ms: int, stats: ParseStats,
    period_s: int,
) -> list[StressEvent]:  # fmt: skip
    """``GET /v5/market/account-ratio`` as ``accounts`` :class:`~service.events.Positioning`
    events (the ratio worked out from the two shares)."""

    def parse(doc: Any) -> list[StressEvent]:
        result = _result(doc)
        out: list[StressEvent] = []
        for row in _stress.rows(VENUE, stats, result.rows, _AccountRatio):
            inst = _stress.instrument(VENUE, stats, markets, row.symbol)
            total = row.buyRatio + row.sellRatio
            if inst is None:
                continue
            if not (total > 0.0 and row.sellRatio > 0.0):
                stats.error(VENUE, _stress.BAD_SHARE, row)
                continue
            out.append(
                Positioning(
                    venue=VENUE,
                    symbol=inst.symbol,
                    base=inst.base,
                    ts_ms=row.timestamp,
                    recv_ms=recv_ms,
                    metric=PositioningMetric.ACCOUNTS,
                    period_s=period_s,
                    long_short_ratio=row.buyRatio / row.sellRatio,
                    long_share=row.buyRatio / total,
                )
            )
        return out

    return _stress.read(VENUE, stats, body, parse)


Parse = _stress.BodyParser


def plan(
    markets: Mapping[str, Instrument], symbols: Sequence[str], *, period: str = "5min",
    every_s: float = 300.0, alerts_every_s: float = ALERTS_EVERY_S,
    insurance_every_s: float = 300.0,
) -> list[_stress.StressRequest]:  # fmt: skip
    """The Bybit stress polls: the all-symbol ADL alerts (their data changes every minute;
    the ``adlAlert`` websocket topic gives them every second at no request cost), the
    insurance pools, and per symbol its account ratio (``category`` linear or inverse from
    the instrument), each call one request against :data:`IP_LIMIT`."""
    if period not in PERIOD_S:
        raise ValueError(f"period {period!r} is not one of {sorted(PERIOD_S)}")
    one = ((IP_LIMIT.name, 1),)

    def alerts(body: bytes, recv_ms: int, stats: ParseStats) -> list[StressEvent]:
        return parse_adl_alert(body, markets, recv_ms, stats)

    def insurance(body: bytes, recv_ms: int, stats: ParseStats) -> list[StressEvent]:
        return parse_insurance(body, markets, recv_ms, stats)

    def ratio(body: bytes, recv_ms: int, stats: ParseStats) -> list[StressEvent]:
        return parse_account_ratio(body, markets, recv_ms, stats, PERIOD_S[period])

    Req = _stress.StressRequest
    out = [
        Req(ADL_ALERT_PATH, (), one, alerts_every_s, alerts),
        Req(INSURANCE_PATH, (), one, insurance_every_s, insurance),
    ]
    for symbol in symbols:
        category = "linear" if markets[symbol].linear else "inverse"
        q = (("category", category), ("symbol", symbol), ("period", period), ("limit", "1"))
        out.append(Req(ACCOUNT_RATIO_PATH, q, one, every_s, ratio))
    return out
