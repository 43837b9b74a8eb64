"""OKX v5 leverage-stress bodies as stress events (docs/stress.md).

Sources (https://www.okx.com/docs-v5/en/):

* ``GET /api/v5/public/insurance-fund`` (10 requests per 2 s per IP; ``instType`` and, for
  derivatives, ``instFamily`` required): ``total`` is the family's fund in USD; each
  ``details`` row a balance in its ``ccy``, of a ``type``: ``regular_update`` (the
  up-to-the-minute balance), ``liquidation_balance_deposit``/``bankruptcy_loss`` (daily,
  about 08:00 UTC, with the change in ``amt``), ``adl`` (ADL history: ``adlType``
  ``rate_adl_start``/``bal_adl_start``/``pos_adl_start``/``adl_end``).
* ``GET /api/v5/rubik/stat/contracts/long-short-account-ratio`` (5 requests per 2 s per IP;
  per currency, over all its futures and perpetuals): rows ``[ts, ratio]``.
* ``GET /api/v5/rubik/stat/taker-volume`` (5 requests per 2 s per IP; ``instType`` ``SPOT``
  or ``CONTRACTS``): rows ``[ts, sellVol, buyVol]``.

Rubik periods: ``5m`` (two days back at most), ``1H`` (30 days), ``1D`` (180 days).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec

from ...events import InsuranceFund, Positioning, PositioningMetric, StressEvent
from .. import _stress
from .._numbers import Finite, optional_number
from ..base import ParseError, ParseStats
from .instruments import VENUE

PERIOD_S: Final = {"5m": 300, "1H": 3600, "1D": 86400}
INSURANCE_PATH: Final = "/api/v5/public/insurance-fund"
LONG_SHORT_PATH: Final = "/api/v5/rubik/stat/contracts/long-short-account-ratio"
TAKER_PATH: Final = "/api/v5/rubik/stat/taker-volume"
INSURANCE_LIMIT: Final = _stress.Limit("insurance_fund", 10, 2.0)
LONG_SHORT_LIMIT: Final = _stress.Limit("long_short", 5, 2.0)
TAKER_LIMIT: Final = _stress.Limit("taker_volume", 5, 2.0)
LIMITS: Final = (INSURANCE_LIMIT, LONG_SHORT_LIMIT, TAKER_LIMIT)
"""OKX's limits per endpoint and IP: 10 requests per 2 s (insurance fund), 5 per 2 s (each
rubik statistic)."""


class _Answer(msgspec.Struct):
    code: str
    data: Any
    msg: str = ""


class _Detail(msgspec.Struct):
    """``{"adlType":"","amt":"","balance":"1343.1308","ccy":"ETH","maxBal":"","maxBalTs":"",
    "ts":"1704883083000","type":"regular_update"}``"""

    balance: Finite
    ccy: str
    ts: int
    type: str = ""
    amt: str = ""


class _Fund(msgspec.Struct):
    instFamily: str
    instType: str
    total: Finite
    details: list[Any]


def _data(doc: Any) -> Any:
    answer = msgspec.convert(doc, _Answer)
    if answer.code != "0":
        raise ParseError(_stress.VENUE_ERROR)
    return answer.data


def parse_insurance_fund(body: _stress.Body, recv_ms: int, stats: ParseStats) -> list[StressEvent]:
    """``GET /api/v5/public/insurance-fund`` as one :class:`~service.events.InsuranceFund`
    per family: its newest ``details`` row (balance in ``ccy``, change ``amt`` where given)
    with the family's USD ``total``. The pool (and ``symbol``) is ``<instType>:<instFamily>``
    (``SWAP:BTC-USDT``), its base the family's first part."""

    def parse(doc: Any) -> list[StressEvent]:
        out: list[StressEvent] = []
        for fund in _stress.rows(VENUE, stats, _data(doc), _Fund):
            details = list(_stress.rows(VENUE, stats, fund.details, _Detail))
            if not details:
                stats.error(VENUE, _stress.INVALID_ROW, fund)
                continue
            newest = max(details, key=lambda d: d.ts)
            try:
                change = optional_number(newest.amt)
            except ParseError as exc:
                stats.error(VENUE, exc.reason, newest)
                continue
            pool = f"{fund.instType}:{fund.instFamily}"
            out.append(
                InsuranceFund(
                    venue=VENUE,
                    symbol=pool,
                    base=fund.instFamily.split("-")[0],
                    ts_ms=newest.ts,
                    recv_ms=recv_ms,
                    pool=pool,
                    asset=newest.ccy,
                    balance=newest.balance,
                    balance_usd=fund.total,
                    change=change,
                )
            )
        return out

    return _stress.read(VENUE, stats, body, parse)


def parse_long_short_ratio(
    body: _stress.Body, ccy: str, recv_ms: int, stats: ParseStats, period_s: int
) -> list[StressEvent]:
    """``GET .../long-short-account-ratio?ccy=`` as ``accounts``
    :class:`~service.events.Positioning` events of the currency (``symbol`` and ``base``:
    ``ccy``); the long share is worked out from the ratio, ``r / (1 + r)``."""

    def parse(doc: Any) -> list[StressEvent]:
        out: list[StressEvent] = []
        for ts, ratio in _stress.rows(VENUE, stats, _data(doc), tuple[int, Finite]):
            if ratio < 0.0:
                stats.error(VENUE, _stress.BAD_RATIO, [ts, ratio])
                continue
            out.append(
                Positioning(
                    venue=VENUE,
                    symbol=ccy,
                    base=ccy,
                    ts_ms=ts,
                    recv_ms=recv_ms,
                    metric=PositioningMetric.ACCOUNTS,
                    period_s=period_s,
                    long_short_ratio=ratio,
                    long_share=ratio / (1.0 + ratio),
                    native_ratio=ratio,
                )
            )
        return out

    return _stress.read(VENUE, stats, body, parse)


def parse_taker_volume(
    body: _stress.Body, ccy: str, recv_ms: int, stats: ParseStats, period_s: int
) -> list[StressEvent]:
    """``GET .../taker-volume?ccy=&instType=CONTRACTS`` as ``taker_volume``
    :class:`~service.events.Positioning` events of the currency (rows ``[ts, sell, buy]``)."""

    def parse(doc: Any) -> list[StressEvent]:
        out: list[StressEvent] = []
        for ts, sell, buy in _stress.rows(VENUE, stats, _data(doc), tuple[int, Finite, Finite]):
            if not (sell > 0.0 and buy >= 0.0):
                stats.error(VENUE, _stress.BAD_SHARE, [ts, sell, buy])
                continue
            out.append(
                Positioning(
                    venue=VENUE,
                    symbol=ccy,
                    base=ccy,
                    ts_ms=ts,
                    recv_ms=recv_ms,
                    metric=PositioningMetric.TAKER_VOLUME,
                    period_s=period_s,
                    long_short_ratio=buy / sell,
                    long_share=buy / (buy + sell),
                    buy_volume=buy,
                    sell_volume=sell,
                )
            )
        return out

    return _stress.read(VENUE, stats, body, parse)


def plan(
    families: Sequence[tuple[str, str]], ccys: Sequence[str], *, period: str = "5m",
    every_s: float = 300.0, insurance_every_s: float = 60.0,
) -> list[_stress.StressRequest]:  # fmt: skip
    """The OKX stress polls: the insurance fund of each ``(instType, instFamily)`` (its
    ``regular_update`` row changes every minute), and per currency the contracts' account
    long/short ratio and taker volume, one row of ``period`` every ``every_s``."""
    if period not in PERIOD_S:
        raise ValueError(f"period {period!r} is not one of {sorted(PERIOD_S)}")
    period_s = PERIOD_S[period]

    def insurance(body: bytes, recv_ms: int, stats: ParseStats) -> list[StressEvent]:
        return parse_insurance_fund(body, recv_ms, stats)

    Req = _stress.StressRequest
    out = [
        Req(INSURANCE_PATH, (("instType", kind), ("instFamily", family), ("limit", "1")),
            ((INSURANCE_LIMIT.name, 1),), insurance_every_s, insurance)
        for kind, family in families
    ]  # fmt: skip
    for ccy in ccys:

        def ratio(
            body: bytes, recv_ms: int, stats: ParseStats, ccy: str = ccy
        ) -> list[StressEvent]:
            return parse_long_short_ratio(body, ccy, recv_ms, stats, period_s)

        def taker(
            body: bytes, recv_ms: int, stats: ParseStats, ccy: str = ccy
        ) -> list[StressEvent]:
            return parse_taker_volume(body, ccy, recv_ms, stats, period_s)

        q = (("ccy", ccy), ("period", period))
        out.append(Req(LONG_SHORT_PATH, q, ((LONG_SHORT_LIMIT.name, 1),), every_s, ratio))
        taker_q = (*q, ("instType", "CONTRACTS"))
        out.append(Req(TAKER_PATH, taker_q, ((TAKER_LIMIT.name, 1),), every_s, taker))
    return out
