"""Bitget instrument metadata and subscriptions: which contracts, valued how, asked for how.

Bitget sizes every futures contract in **base coin**, USDT-margined and coin-margined alike
(``BTCUSD`` orders are in BTC: ``minTradeNum`` 0.001 in the recorded listing, trade sizes
like ``"447"`` DOGE on ``DOGEUSD``). An :class:`Instrument` here is therefore always valued
as ``linear`` with a contract size of 1 (base coin x price = USD); ``linear`` describes the
valuation, not the margin coin, and a coin-margined contract's ``quote`` is ``USD``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

from ...validate import MAX_INTERVAL_H
from ..base import Instrument
from . import frames

VENUE: Final = "bitget"
PRODUCT_TYPES: Final = {"USDT-FUTURES": "usdt-futures", "COIN-FUTURES": "coin-futures"}
"""REST ``productType`` -> the websocket's ``instType`` (v3 spells it in lower case)."""
TRADING: Final = frozenset({"normal", "limit_open", "restrictedAPI"})
"""``symbolStatus`` values under which the contract trades (and its ticker is pushed)."""
DEFAULT_FUNDING_INTERVAL_H: Final = 8.0
SYMBOLS_PER_CONNECTION: Final = 50
"""Bitget "strongly recommends" at most 50 channels per connection (the hard limit is
1000); one ticker channel per symbol (with traded volume, two channels a symbol: half as
many symbols). The liquidation channel has a connection of its own."""
MAX_REQUEST_BYTES: Final = 4096
"""Subscribe requests are packed up to 4 KB each: a conservative size (the docs give no
limit on a request's size, only 10 messages a second and 240 subscribe requests an hour)."""


def parse_contracts(
    payload: Mapping[str, Any] | bytes | str, product_type: str
) -> list[Instrument]:
    """The perpetuals in trading of one ``/api/v2/mix/market/contracts`` answer, each with
    its funding interval. Raises ``ValueError`` on an error answer or an unexpected shape
    (msgspec's errors are ``ValueError``\\ s)."""
    if isinstance(payload, Mapping):
        page = msgspec.convert(payload, frames.ContractsPage, strict=False)
    else:
        page = msgspec.json.decode(payload, type=frames.ContractsPage, strict=False)
    if page.code != "00000":
        raise ValueError(f"contracts answered code {page.code}: {page.msg}")
    out: list[Instrument] = []
    for row in page.data:
        if row.symbolType != "perpetual" or row.symbolStatus not in TRADING:
            continue
        try:
            hours = float(row.fundInterval) if row.fundInterval else DEFAULT_FUNDING_INTERVAL_H
        except ValueError:
            hours = DEFAULT_FUNDING_INTERVAL_H
        if not 0 < hours <= MAX_INTERVAL_H:  # NaN and infinities too
            hours = DEFAULT_FUNDING_INTERVAL_H
        out.append(
            Instrument(
                venue=VENUE,
                symbol=row.symbol,
                base=row.baseCoin,
                quote=row.quoteCoin if product_type != "COIN-FUTURES" else "USD",
                linear=True,  # base-coin sizes, valued at the price (see the module doc)
                contract_size=1.0,
                funding_interval_h=hours,
            )
        )
    return out


def inst_type_of(inst: Instrument) -> str:
    """The websocket ``instType`` of a listed contract (coin-margined ones quote ``USD``)."""
    return PRODUCT_TYPES["COIN-FUTURES" if inst.quote == "USD" else "USDT-FUTURES"]


def subscribe_args(
    inst_type: str, symbols: Iterable[str], trades: bool = False
) -> list[dict[str, str]]:
    """The v3 args of a tickers connection: one ``ticker`` per symbol, and its
    ``publicTrade`` with ``trades``."""
    topics = ("ticker", "publicTrade") if trades else ("ticker",)
    return [
        {"instType": inst_type, "topic": topic, "symbol": s} for s in symbols for topic in topics
    ]


def liquidation_args(inst_type: str) -> list[dict[str, str]]:
    """The v3 arg of the instType's ``liquidation`` topic (every symbol of the instType)."""
    return [{"instType": inst_type, "topic": "liquidation"}]


def subscribe_requests(args: list[dict[str, str]]) -> tuple[str, ...]:
    """``subscribe`` requests carrying ``args``, as few as fit in :data:`MAX_REQUEST_BYTES`
    each (a connection of 50 symbols needs one: the venue takes 10 messages a second)."""
    requests: list[str] = []
    batch: list[str] = []
    size = 0
    for arg in args:
        encoded = json.dumps(arg, separators=(",", ":"))
        if batch and size + len(encoded) + 1 > MAX_REQUEST_BYTES - 32:  # 32: the envelope
            requests.append(_request(batch))
            batch, size = [], 0
        batch.append(encoded)
        size += len(encoded) + 1
    if batch:
        requests.append(_request(batch))
    return tuple(requests)


def _request(args: list[str]) -> str:
    return f'{{"op":"subscribe","args":[{",".join(args)}]}}'
