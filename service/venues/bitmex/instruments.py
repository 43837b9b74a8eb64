"""BitMEX instrument metadata and subscribe requests: which contracts, valued how, asked for how.

A row of ``GET /api/v1/instrument/active`` says how a contract is valued. BitMEX values a
contract in minor units of its settlement currency (``settlCurrency``: ``XBt`` = 1e-8 XBT,
``USDt`` = 1e-6 USDT) from ``multiplier`` (negative on inverse contracts) and the price:

* **inverse** (``isInverse``, XBTUSD): ``|multiplier| / price`` XBt a contract, so one
  contract is worth ``|multiplier| / 1e8`` units of the quote currency: 1 USD;
* **quanto** (``isQuanto``, ETHUSD: ``multiplier`` 100): ``multiplier x price`` XBt a
  contract, paid in XBT whatever the ETH price: in USD that is ``multiplier x price / 1e8 x``
  the XBT price, so valuing one needs the XBT/USD price as well as the contract's;
* **linear** (neither; XBTUSDT: ``multiplier`` 1, ``settlCurrency`` ``USDt``): ``multiplier x
  price`` USDt a contract, so one contract is ``|multiplier| / 1e6`` base coin (XBTUSDT:
  1e-6 XBT, which is also ``1 / underlyingToPositionMultiplier``).

Only perpetuals (``typ`` ``FFWCSX``) in state ``Open`` are collected, and of them only those
valued in USD: inverse and quanto contracts quoted in USD or USDT and settled in XBT, linear
ones quoted and settled in USDT. Others (XBTEUR: 1 EUR contracts) are left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from ...validate import MAX_INTERVAL_H
from ..base import Instrument
from .frames import Time, interval_h

VENUE: Final = "bitmex"
PERPETUAL: Final = "FFWCSX"
"""``typ`` of a perpetual contract (``FFCCSX``: a dated future; ``IFXXXP``: spot)."""
XBT_REFERENCE: Final = "XBTUSD"
"""Its mark price converts XBT to USD (quanto contracts are paid in XBT)."""
DEFAULT_FUNDING_INTERVAL_H: Final = 8.0
USD_LIKE: Final = frozenset({"USD", "USDT", "USDC"})
XBT_SATOSHIS: Final = 1e8
SETTLEMENT: Final = {"XBt": ("XBT", 1e8), "USDt": ("USDT", 1e6)}
"""``settlCurrency`` → (the currency, minor units per unit)."""
ASSETS: Final = {"XBT": "BTC"}
"""BitMEX's codes that differ from the cross-venue asset key."""
ARGS_PER_REQUEST: Final = 10


@dataclass(frozen=True, slots=True)
class BitmexInstrument(Instrument):
    """An :class:`Instrument` that can also be a quanto contract.

    Linear and inverse contracts are valued by the base class (``contract_size``: base coin,
    resp. USD, a contract). A quanto contract is worth ``quanto_xbt x price`` XBT, so its USD
    value needs the XBT/USD price: pass it as ``xbt_usd`` (without it, ``ValueError``).
    """

    quanto_xbt: float = 0.0
    """XBT a quanto contract is worth per unit of its price (``multiplier / 1e8``: ETHUSD
    1e-6); 0 for linear and inverse contracts. Quanto instruments are ``linear`` (their value
    grows with the price) with ``contract_size`` equal to this."""

    @property
    def quanto(self) -> bool:
        return self.quanto_xbt > 0

    def notional_usd(self, quantity: float, price: float, xbt_usd: float | None = None) -> float:
        """USD value of ``quantity`` contracts at ``price``; quanto: paid in XBT at
        ``xbt_usd``."""
        if not self.quanto:
            return Instrument.notional_usd(self, quantity, price)
        if not xbt_usd or xbt_usd <= 0:
            raise ValueError(f"{self.symbol} is a quanto contract: its value needs xbt_usd")
        return quantity * self.quanto_xbt * price * xbt_usd

    def base_units(self, quantity: float, price: float, xbt_usd: float | None = None) -> float:
        """``quantity`` contracts in base coin; quanto: their USD value at ``price``."""
        if not self.quanto:
            return Instrument.base_units(self, quantity, price)
        return self.notional_usd(quantity, price, xbt_usd) / price if price > 0 else 0.0


def asset(code: str) -> str:
    return ASSETS.get(code, code)


def _interval_h(value: Any) -> float:
    """``fundingInterval`` (``"2000-01-01T08:00:00.000Z"``) in hours; the default (8 h)
    when absent or unreadable."""
    if not isinstance(value, str):
        return DEFAULT_FUNDING_INTERVAL_H
    try:
        hours = interval_h(msgspec.convert(value, Time))
    except msgspec.ValidationError:
        return DEFAULT_FUNDING_INTERVAL_H
    return hours if 0 < hours <= MAX_INTERVAL_H else DEFAULT_FUNDING_INTERVAL_H


def instrument(row: Mapping[str, Any]) -> BitmexInstrument | None:
    """One row of ``/api/v1/instrument/active`` as a :class:`BitmexInstrument`, or ``None``
    when it is not an open perpetual valued in USD (see the module docstring).

    ``{"symbol":"ETHUSD","rootSymbol":"ETH","state":"Open","typ":"FFWCSX",…,
    "underlying":"ETH","quoteCurrency":"USD",…,"multiplier":100,"settlCurrency":"XBt",
    "underlyingToPositionMultiplier":null,…,"isQuanto":true,"isInverse":false,…,
    "fundingInterval":"2000-01-01T08:00:00.000Z","fundingRate":0.000551,…}``
    """
    if row.get("typ") != PERPETUAL or row.get("state") != "Open":
        return None
    try:
        multiplier = abs(float(row["multiplier"]))
        underlying, quote = str(row["underlying"]), str(row["quoteCurrency"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    settlement = SETTLEMENT.get(str(row.get("settlCurrency")))
    if not 0 < multiplier < math.inf or settlement is None or quote not in USD_LIKE:
        return None
    settle, per_unit = settlement
    common: dict[str, Any] = {
        "venue": VENUE,
        "symbol": str(row["symbol"]),
        "base": asset(underlying),
        "quote": quote,
        "funding_interval_h": _interval_h(row.get("fundingInterval")),
    }
    if row.get("isInverse"):
        if settle != underlying:  # paid in the base coin, valued in the quote currency
            return None
        return BitmexInstrument(linear=False, contract_size=multiplier / per_unit, **common)
    if row.get("isQuanto"):
        if settle != "XBT":
            return None
        size = multiplier / per_unit
        return BitmexInstrument(linear=True, contract_size=size, quanto_xbt=size, **common)
    if settle not in USD_LIKE:  # linear, paid in the quote currency
        return None
    return BitmexInstrument(linear=True, contract_size=multiplier / per_unit, **common)


def parse_listing(body: bytes | str) -> tuple[dict[str, Instrument], list[str]]:
    """The instruments of a ``/api/v1/instrument/active`` body, by symbol, and the open
    perpetuals left out (not valued in USD). Raises ``ValueError`` (msgspec's decode errors)
    when the body is not a list of objects."""
    rows = msgspec.json.decode(body, type=list[dict[str, Any]])
    out: dict[str, Instrument] = {}
    skipped: list[str] = []
    for row in rows:
        inst = instrument(row)
        if inst is not None:
            out[inst.symbol] = inst
        elif row.get("typ") == PERPETUAL and row.get("state") == "Open":
            skipped.append(str(row.get("symbol")))
    return out, skipped


def pack_requests(op: str, args: list[str]) -> tuple[str, ...]:
    """``op`` (``subscribe``, ``unsubscribe``) requests for ``args``, :data:`ARGS_PER_REQUEST`
    args a request (as tardis and cryptofeed send them)."""
    return tuple(
        msgspec.json.encode({"op": op, "args": args[i : i + ARGS_PER_REQUEST]}).decode()
        for i in range(0, len(args), ARGS_PER_REQUEST)
    )


def subscribe_requests(
    symbols: Iterable[str], markets: Mapping[str, Instrument], *, trades: bool = False
) -> tuple[str, ...]:
    """``subscribe`` requests for the ``instrument``, ``liquidation`` and ``quote`` tables of
    each symbol, and with ``trades`` its ``trade`` table, :data:`ARGS_PER_REQUEST` args a
    request. :data:`XBT_REFERENCE`'s instrument comes first when a quanto contract is
    subscribed: its mark values them, and its partial then arrives before any liquidation,
    quote or trade."""
    symbols = list(symbols)
    args = [f"instrument:{s}" for s in symbols]
    quanto = any(isinstance(i := markets.get(s), BitmexInstrument) and i.quanto for s in symbols)
    if quanto and XBT_REFERENCE not in symbols:
        args.insert(0, f"instrument:{XBT_REFERENCE}")
    elif XBT_REFERENCE in symbols:
        args.remove(f"instrument:{XBT_REFERENCE}")
        args.insert(0, f"instrument:{XBT_REFERENCE}")
    tables = ("liquidation", "quote", "trade") if trades else ("liquidation", "quote")
    args += [f"{table}:{s}" for table in tables for s in symbols]
    return pack_requests("subscribe", args)
