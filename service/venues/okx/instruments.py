"""OKX instrument metadata and subscribe requests: which contracts, valued how, asked for how.

``ctVal`` x ``ctMult`` is the contract size: base coin when ``ctType`` is linear
(BTC-USDT-SWAP: 0.01 BTC), USD when inverse (BTC-USD-SWAP: 100 USD, other coins 10 USD).
A subscribe request carries many args, whose total must stay under 64 KB; a connection may
send 480 subscribe/unsubscribe/login requests an hour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from ..base import Instrument

VENUE: Final = "okx"
INST_TYPE: Final = "SWAP"
LIQUIDATIONS: Final = "liquidation-orders"
MAX_REQUEST_BYTES: Final = 32_768
"""Subscribe requests are packed up to half the venue's 64 KB limit."""
DEFAULT_FUNDING_INTERVAL_H: Final = 8.0
"""OKX's interval for every swap before variable intervals (and for frames without
``nextFundingTime``, until a newer frame of the same instrument tells otherwise)."""
USD_LIKE: Final = frozenset({"USD", "USDT", "USDC"})
PER_INSTRUMENT: Final = ("mark-price", "open-interest", "funding-rate", "tickers", "trades")
"""The channels subscribed per instrument on the public connection (``trades`` last: only
when traded volume is collected)."""


def instrument(
    row: Mapping[str, Any], *, base: str | None = None, quote: str | None = None
) -> Instrument | None:
    """One row of ``/api/v5/public/instruments`` as an :class:`Instrument`, or ``None``
    when its contract cannot be valued (no ``ctType``, or a size in an unexpected unit).

    ``{"instId":"BTC-USDT-SWAP","instType":"SWAP","ctType":"linear","ctVal":"0.01",
    "ctValCcy":"BTC","ctMult":"1","settleCcy":"USDT","uly":"BTC-USDT","state":"live",...}``
    ``base``/``quote`` override the ones read from ``instFamily``/``uly`` (ccxt's codes).
    """
    family = str(row.get("instFamily") or row.get("uly") or "")
    fam_base, _, fam_quote = family.partition("-")
    base, quote = base or fam_base, quote or fam_quote.split("_")[0]
    try:
        size = float(row["ctVal"]) * float(row.get("ctMult") or 1)
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    unit, ct_type = row.get("ctValCcy"), row.get("ctType")
    if not base or not 0 < size < math.inf:  # NaN and infinities too
        return None
    if ct_type == "linear" and unit == fam_base:
        linear = True  # ctVal in base coin
    elif ct_type == "inverse" and unit in USD_LIKE:
        linear = False  # ctVal in USD
    else:
        return None
    return Instrument(
        venue=VENUE,
        symbol=str(row["instId"]),
        base=base,
        quote=quote,
        linear=linear,
        contract_size=size,
        funding_interval_h=DEFAULT_FUNDING_INTERVAL_H,
    )


def subscribe_requests(symbols: list[str], *, trades: bool = False) -> tuple[str, ...]:
    """``subscribe`` requests for, per instrument, its mark price (first, to value open
    interest without ``oiUsd``), open interest, funding rate, ticker (the top of book) and,
    with ``trades``, its trades (traded volume); as few requests as fit in
    :data:`MAX_REQUEST_BYTES` each. The liquidations have a connection of their own
    (:func:`liquidation_requests`)."""
    channels = PER_INSTRUMENT if trades else PER_INSTRUMENT[:-1]
    args = [{"channel": channel, "instId": sym} for sym in symbols for channel in channels]
    return pack_requests("subscribe", args)


def liquidation_requests() -> tuple[str, ...]:
    """The ``subscribe`` request for the SWAP liquidation sample (``liquidation-orders``,
    per instType): the liquidations connection's one request."""
    return pack_requests("subscribe", [{"channel": LIQUIDATIONS, "instType": INST_TYPE}])


def pack_requests(op: str, args: list[dict[str, str]]) -> tuple[str, ...]:
    """``op`` (``subscribe``, ``unsubscribe``) requests of ``args``: as few as fit in
    :data:`MAX_REQUEST_BYTES` each (none for no args)."""
    requests: list[str] = []
    batch: list[bytes] = []
    size = 0
    for arg in args:
        encoded = msgspec.json.encode(arg)
        if batch and size + len(encoded) + 1 > MAX_REQUEST_BYTES - 64:  # 64: the envelope
            requests.append(_request(op, len(requests) + 1, batch))
            batch, size = [], 0
        batch.append(encoded)
        size += len(encoded) + 1
    if batch:
        requests.append(_request(op, len(requests) + 1, batch))
    return tuple(requests)


def _request(op: str, n: int, args: list[bytes]) -> str:
    return f'{{"id":"{n}","op":"{op}","args":[{b",".join(args).decode()}]}}'
