"""Gate futures contracts and subscriptions: which contracts, valued how, asked for how.

* USDT-settled contracts (``type: direct``, ``/v4/ws/usdt``): a contract is
  ``quanto_multiplier`` base coin (BTC_USDT 0.0001 BTC, ETH_USDT 0.01 ETH, DOGE_USDT 10 DOGE).
* BTC-settled ``BTC_USD`` (``type: inverse``, ``/v4/ws/btc``): a contract is 1 USD.
  BTC-settled quanto contracts (other coins, paid in BTC; none listed today) are skipped.

The funding interval is the contract's ``funding_interval`` (seconds); settlements fall on
``funding_next_apply`` plus whole intervals, which gives each ticker its next funding time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import structlog

from ...validate import MAX_INTERVAL_H, TS_MAX_MS
from ..base import Instrument
from . import frames

log = structlog.get_logger(__name__)

VENUE: Final = "gateio"
SETTLES: Final = ("usdt", "btc")
"""Settlement currencies, in order: each has its websocket path and contract listing."""
INVERSE_CONTRACT_USD: Final = 1.0
DEFAULT_FUNDING_INTERVAL_H: Final = 8.0
SYMBOLS_PER_CONNECTION: Final = 200
CONTRACTS_PER_REQUEST: Final = 100
TICKERS: Final = "futures.tickers"
LIQUIDATES: Final = "futures.public_liquidates"
BOOK_TICKER: Final = "futures.book_ticker"
TRADES: Final = "futures.trades"
BOOK: Final = "futures.obu"
BOOK_LEVELS: Final = (50, 400)
"""The depths ``futures.obu`` serves: 50 levels a side every 20 ms, 400 every 100 ms."""
ALL: Final = "!all"
"""The ``futures.public_liquidates`` payload for every contract of the settlement."""


@dataclass(frozen=True, slots=True)
class GateContract(Instrument):
    """An :class:`Instrument` with its settlement and its funding schedule."""

    settle: str = "usdt"
    funding_anchor_ms: int = 0
    """A settlement time (``funding_next_apply``); 0: unknown."""

    def next_funding_ms(self, ts_ms: int) -> int | None:
        """The first settlement after ``ts_ms``, on the anchor's grid of intervals."""
        step = round(self.funding_interval_h * 3_600_000)
        if self.funding_anchor_ms <= 0 or step <= 0:
            return None
        return self.funding_anchor_ms + ((ts_ms - self.funding_anchor_ms) // step + 1) * step


def contract(row: frames.Contract, settle: str) -> GateContract | None:
    """One listing row as a :class:`GateContract`, or ``None`` when it cannot be valued (a
    quanto contract, a size that is not a number) or no longer trades."""
    base, _, quote = row.name.partition("_")
    if not base or not quote or row.status == "delisted":
        return None
    hours = row.funding_interval / 3600 if row.funding_interval > 0 else DEFAULT_FUNDING_INTERVAL_H
    if not 0 < hours <= MAX_INTERVAL_H:
        hours = DEFAULT_FUNDING_INTERVAL_H
    next_apply = row.funding_next_apply
    anchor = round(next_apply * 1000) if 0 < next_apply < TS_MAX_MS / 1000 else 0
    if settle == "usdt" and row.type == "direct":
        try:
            size = float(row.quanto_multiplier)
        except ValueError:
            return None
        linear = True
    elif settle == "btc" and row.type == "inverse":
        size, linear = INVERSE_CONTRACT_USD, False
    else:
        return None
    if not 0 < size < math.inf:
        return None
    return GateContract(
        venue=VENUE,
        symbol=row.name,
        base=base,
        quote=quote,
        linear=linear,
        contract_size=size,
        funding_interval_h=hours,
        settle=settle,
        funding_anchor_ms=anchor,
    )


def parse_contracts(payload: Any, settle: str) -> list[GateContract]:
    """The contracts of one ``/futures/{settle}/contracts`` answer (a JSON list, as text or
    decoded). Raises ``ValueError`` on an unexpected shape."""
    if isinstance(payload, (bytes, str)):
        rows = frames.contracts.decode(payload)
    else:
        rows = msgspec.convert(payload, list[frames.Contract], strict=False)
    out: list[GateContract] = []
    skipped: list[str] = []
    for row in rows:
        c = contract(row, settle)
        if c is None:
            skipped.append(row.name)
        else:
            out.append(c)
    if skipped:
        log.debug("contracts not collected", venue=VENUE, settle=settle, names=skipped[:20])
    return out


def settle_of(inst: Instrument) -> str:
    return inst.settle if isinstance(inst, GateContract) else ("btc" if not inst.linear else "usdt")


def request(channel: str, payload: list[str], time_s: int, event: str = "subscribe") -> str:
    return json.dumps(
        {"time": time_s, "channel": channel, "event": event, "payload": payload},
        separators=(",", ":"),
    )


def subscribe_requests(
    contracts: Iterable[str], time_s: int, *, trades: bool = False
) -> tuple[str, ...]:
    """``futures.tickers`` and ``futures.book_ticker`` for ``contracts`` (and
    ``futures.trades`` with ``trades``), :data:`CONTRACTS_PER_REQUEST` a request. ``time_s``
    is the same in every request, so that a refresh of the metadata sees the same
    subscription (public channels do not check it: the docs' own examples send 123456)."""
    names = list(contracts)
    channels = [TICKERS, BOOK_TICKER, *([TRADES] if trades else [])]
    return tuple(
        request(channel, names[i : i + CONTRACTS_PER_REQUEST], time_s)
        for channel in channels
        for i in range(0, len(names), CONTRACTS_PER_REQUEST)
    )


def liquidation_requests(time_s: int) -> tuple[str, ...]:
    """``futures.public_liquidates`` for every contract of the settlement (``!all``): the
    subscription of a settlement's liquidations connection, alone on it."""
    return (request(LIQUIDATES, [ALL], time_s),)


def book_streams(contracts: Iterable[str], levels: int) -> list[str]:
    """The ``futures.obu`` streams of ``contracts``: ``ob.<contract>.<levels>``."""
    return [f"ob.{name}.{levels}" for name in sorted(contracts)]


def book_requests(
    contracts: Iterable[str], levels: int, time_s: int, event: str = "subscribe"
) -> tuple[str, ...]:
    """``futures.obu`` ``event`` requests for ``contracts`` at ``levels`` a side,
    :data:`CONTRACTS_PER_REQUEST` streams a request."""
    streams = book_streams(contracts, levels)
    return tuple(
        request(BOOK, streams[i : i + CONTRACTS_PER_REQUEST], time_s, event)
        for i in range(0, len(streams), CONTRACTS_PER_REQUEST)
    )


def by_settle(markets: Mapping[str, Instrument], symbols: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {s: [] for s in SETTLES}
    for sym in symbols:
        out.setdefault(settle_of(markets[sym]), []).append(sym)
    return out
