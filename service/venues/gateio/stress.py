"""Gate.io futures contract statistics as stress events (docs/stress.md).

``GET /api/v4/futures/{settle}/contract_stats?contract=&interval=&limit=``
(https://www.gate.io/docs/developers/apiv4/en/#futures-statistics; public). Its limit is
Gate's for public endpoints since 2024-01-22: 200 requests per 10 s per endpoint and IP
(Gate's announcement "Latest Announcement on API Rate Limit Adjustments"; past it HTTP 429,
label ``TOO_MANY_REQUESTS``). Per period: the
long/short ratios ``lsr_taker`` (taker buy over sell), ``lsr_account`` (accounts),
``top_lsr_account`` and ``top_lsr_size`` (top traders' accounts and position sizes), open
interest, and the liquidated sizes (``long_liq_size``/``short_liq_size`` in contracts,
``*_liq_usd``). The service reads liquidations from the websocket; here the four ratios
become :class:`~service.events.Positioning` events. ``time`` is in seconds in the docs'
example; a value in milliseconds (:data:`MS_FROM`) is read as such.

Example (docs; its values are placeholders)::

    [{"time":1603865400,"lsr_taker":100,"lsr_account":0.5,"long_liq_size":0,
      "short_liq_size":0,"open_interest":124724,"short_liq_usd":0,"mark_price":"8865",
      "top_lsr_size":1.02,"short_liq_amount":0,"long_liq_amount":0,
      "open_interest_usd":1511,"top_lsr_account":1.5,"long_liq_usd":0}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from ...events import Positioning, PositioningMetric, StressEvent
from .. import _stress
from .._numbers import Finite
from ..base import Instrument, ParseStats
from .instruments import VENUE, settle_of

PERIOD_S: Final = {"5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400}
CONTRACT_STATS_PATH: Final = "/api/v4/futures/{settle}/contract_stats"
MS_FROM: Final = 100_000_000_000
"""A ``time`` at or above this is in milliseconds (1973 in ms; 5138 in seconds)."""
CONTRACT_STATS_LIMIT: Final = _stress.Limit("contract_stats", 200, 10.0)
"""Gate's limit of one public endpoint per IP: 200 requests in any 10 s."""
LIMITS: Final = (CONTRACT_STATS_LIMIT,)


class _Stats(msgspec.Struct):
    time: int
    lsr_taker: Finite
    lsr_account: Finite
    top_lsr_account: Finite
    top_lsr_size: Finite


def parse_contract_stats(
    body: _stress.Body, inst: Instrument, recv_ms: int, stats: ParseStats, period_s: int
) -> list[StressEvent]:
    """``contract_stats`` of ``inst`` (the rows do not name it) as four
    :class:`~service.events.Positioning` events per row; each long share is worked out from
    its ratio, ``r / (1 + r)``."""

    def parse(doc: Any) -> list[StressEvent]:
        out: list[StressEvent] = []
        for row in _stress.rows(VENUE, stats, doc, _Stats):
            ts = row.time if row.time >= MS_FROM else row.time * 1000
            for metric, ratio in (
                (PositioningMetric.TAKER_VOLUME, row.lsr_taker),
                (PositioningMetric.ACCOUNTS, row.lsr_account),
                (PositioningMetric.TOP_ACCOUNTS, row.top_lsr_account),
                (PositioningMetric.TOP_POSITIONS, row.top_lsr_size),
            ):
                share = ratio / (1.0 + ratio) if ratio >= 0.0 else None
                out.append(
                    Positioning(
                        venue=VENUE,
                        symbol=inst.symbol,
                        base=inst.base,
                        ts_ms=ts,
                        recv_ms=recv_ms,
                        metric=metric,
                        period_s=period_s,
                        long_short_ratio=ratio,
                        long_share=share,
                        native_ratio=ratio,
                    )
                )
        return out

    return _stress.read(VENUE, stats, body, parse)


def plan(
    markets: Mapping[str, Instrument], symbols: Sequence[str], *, interval: str = "5m",
    every_s: float = 300.0,
) -> list[_stress.StressRequest]:  # fmt: skip
    """The Gate stress polls: per contract, its statistics of the last ``interval`` (one row)
    every ``every_s``, each one request against :data:`CONTRACT_STATS_LIMIT`."""
    if interval not in PERIOD_S:
        raise ValueError(f"interval {interval!r} is not one of {sorted(PERIOD_S)}")
    period_s = PERIOD_S[interval]
    out = []
    for symbol in symbols:
        inst = markets[symbol]

        def parse(
            body: bytes, recv_ms: int, stats: ParseStats, inst: Instrument = inst
        ) -> list[StressEvent]:
            return parse_contract_stats(body, inst, recv_ms, stats, period_s)

        path = CONTRACT_STATS_PATH.format(settle=settle_of(inst))
        q = (("contract", symbol), ("interval", interval), ("limit", "1"))
        out.append(
            _stress.StressRequest(path, q, ((CONTRACT_STATS_LIMIT.name, 1),), every_s, parse)
        )
    return out
