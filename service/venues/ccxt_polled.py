"""Any venue ccxt knows, polled over REST through ccxt's unified API: the long tail.

A polled venue has no websocket and no liquidations. This module is its venue side: the ccxt
client pointed at the configured REST base, the perpetuals of its metadata, the unified
calls, and pure converters from ccxt's unified structures to events. The schedule (one
funding poll per interval, open interest spread over it), health and retries are
:mod:`service.collect.poller`'s.

Units follow ccxt's documented conventions (https://docs.ccxt.com, "Funding Rate Structure",
"Open Interest Structure", "Market Structure"):

* ``fundingRate`` is the rate per funding ``interval`` (``"8h"``), a fraction; ``markPrice``
  and ``indexPrice`` are in the quote currency;
* ``openInterestAmount`` counts contracts and ``openInterestValue`` is in the quote
  currency. A market's ``contractSize`` is base coin per contract for a linear swap and
  quote (USD) per contract for an inverse one. Some exchanges put base coin in
  ``openInterestAmount`` whatever the contract (Bitget): ``oi_amount_unit: base`` says so;
* USD-pegged quote currencies (USDT, USDC...) count as USD, as for the native venues.

A sample of what ccxt returns (Bitget, ``fetch_funding_rates`` and ``fetch_open_interest``)::

    {'symbol': 'BTC/USDT:USDT', 'markPrice': 60001.0, 'indexPrice': 59990.0,
     'timestamp': 1700000000000, 'fundingRate': 0.0001, 'fundingTimestamp': None,
     'nextFundingTimestamp': None, 'interval': None, 'info': {...}}
    {'symbol': 'BTC/USD:BTC', 'openInterestAmount': 52234.134, 'openInterestValue': None,
     'timestamp': 1700866041023, 'info': {...}}
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async

from ..config import CcxtSettings, VenueSettings
from ..events import Event, MarkPrice, OpenInterest
from ..shard import Shard
from . import _stamp
from .base import Instrument, ParseStats
from .ccxt_markets import close_quietly

FUNDING_CALLS: Final = ("fetchFundingRates", "fetchFundingRate")
OI_CALLS: Final = ("fetchOpenInterests", "fetchOpenInterest")
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([hm])\s*$")


def check_exchange(exchange_id: str) -> None:
    """Raise ``ValueError`` unless ccxt knows ``exchange_id`` and it can poll funding and
    open interest through the unified API (for configuration validation)."""
    if exchange_id not in ccxt.exchanges:
        raise ValueError(f"unknown ccxt exchange {exchange_id!r}")
    has = getattr(ccxt, exchange_id)().has
    for calls in (FUNDING_CALLS, OI_CALLS):
        if not any(has.get(c) for c in calls):
            raise ValueError(
                f"ccxt's {exchange_id} implements neither {' nor '.join(calls)}: it cannot be "
                "polled for funding and open interest"
            )


def _rebase(urls: Any, hostname: str, base: str) -> Any:
    """``urls`` (ccxt's ``urls['api']``, nested) with every URL's scheme and host replaced by
    ``base``, paths kept."""
    if isinstance(urls, str):
        url = urls.replace("{hostname}", hostname)
        parts = urlsplit(url)
        if not parts.scheme or not parts.netloc:
            return url
        return base + url[len(parts.scheme) + 3 + len(parts.netloc) :]
    if isinstance(urls, dict):
        return {k: _rebase(v, hostname, base) for k, v in urls.items()}
    return urls


def _first_url(urls: Any, hostname: str) -> str:
    if isinstance(urls, str):
        parts = urlsplit(urls.replace("{hostname}", hostname))
        return f"{parts.scheme}://{parts.netloc}"
    if isinstance(urls, dict):
        for value in urls.values():
            if found := _first_url(value, hostname):
                return found
    return ""


@dataclass(frozen=True, slots=True)
class PolledMarket:
    """A perpetual swap of a polled venue: our instrument and ccxt's names for it."""

    instrument: Instrument
    unified: str
    """ccxt's symbol, e.g. ``BTC/USDT:USDT``."""
    group: str
    """``linear:<settle>`` or ``inverse``: the scope that exchanges' bulk calls tend to have
    (ccxt picks the product type of such a call from its first symbol)."""


def perpetuals(
    venue: str, markets: Iterable[Mapping[str, Any]], funding_interval_h: float
) -> dict[str, PolledMarket]:
    """The active perpetual swaps of ccxt's ``markets``, by native id (first one wins)."""
    out: dict[str, PolledMarket] = {}
    for m in markets:
        if not m.get("swap") or m.get("active") is False or m.get("id") in out:
            continue
        linear = m.get("linear") is not False and not m.get("inverse")
        inst = Instrument(
            venue=venue,
            symbol=str(m["id"]),
            base=str(m["base"]),
            quote=str(m["quote"]),
            linear=linear,
            contract_size=float(m.get("contractSize") or 1.0),
            funding_interval_h=funding_interval_h,
        )
        group = f"linear:{m.get('settle')}" if linear else "inverse"
        out[inst.symbol] = PolledMarket(inst, str(m["symbol"]), group)
    return out


def interval_h(interval: object, default_h: float) -> float:
    """ccxt's funding ``interval`` (``"8h"``, ``"30m"``) in hours; ``default_h`` if absent."""
    if isinstance(interval, str) and (m := _INTERVAL.match(interval)):
        value = float(m.group(1)) / (60.0 if m.group(2) == "m" else 1.0)
        if value > 0:
            return value
    return default_h


def _number(value: object) -> float | None:
    """A finite number, or ``None`` (absent, not a number, NaN, an infinity, or an integer
    too large for a float)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _ts(value: object, recv_ms: int) -> int:
    number = _number(value)
    return int(number) if number is not None and number > 0 else recv_ms


def funding_events(
    rate: Mapping[str, Any], pm: PolledMarket, recv_ms: int, stats: ParseStats
) -> list[Event]:
    """The funding and mark events of one ccxt funding-rate structure."""
    inst = pm.instrument
    ts = _ts(rate.get("timestamp"), recv_ms)
    out: list[Event] = []
    funding = _number(rate.get("fundingRate"))
    if funding is None:
        stats.error(inst.venue, "funding_without_rate", rate)
    else:
        hours = interval_h(rate.get("interval"), inst.funding_interval_h)
        next_ms = _number(rate.get("fundingTimestamp")) or _number(rate.get("nextFundingTimestamp"))
        out.append(
            _stamp.funding(
                inst.venue,
                inst,
                ts,
                recv_ms,
                funding,
                hours,
                None if next_ms is None else int(next_ms),
            )
        )
    mark = _number(rate.get("markPrice"))
    if mark is not None and mark > 0:
        out.append(
            _stamp.mark(
                inst.venue,
                inst,
                ts,
                recv_ms,
                mark,
                _number(rate.get("indexPrice")),
            )
        )
    return out


def ticker_mark(
    ticker: Mapping[str, Any], pm: PolledMarket, recv_ms: int
) -> tuple[float | None, MarkPrice | None]:
    """The price to value open interest at (the mark, else the last trade) and a mark event
    (only when the ticker has a mark) from a ccxt ticker."""
    inst = pm.instrument
    mark = _number(ticker.get("markPrice"))
    if mark is None or mark <= 0:
        last = _number(ticker.get("last"))
        return (last if last is not None and last > 0 else None), None
    return mark, _stamp.mark(
        inst.venue,
        inst,
        _ts(ticker.get("timestamp"), recv_ms),
        recv_ms,
        mark,
        _number(ticker.get("indexPrice")),
    )


def oi_quantities(
    amount: float | None,
    value: float | None,
    inst: Instrument,
    mark: float,
    unit: Literal["contracts", "base"],
) -> tuple[float, float, float] | None:
    """(native units, base coin, USD) of an open interest given as ccxt's
    ``openInterestAmount`` (preferred: valued at our mark) or ``openInterestValue``."""
    if mark <= 0:
        return None
    if amount is not None:
        if unit == "base":
            return amount, amount, amount * mark
        return amount, inst.base_units(amount, mark), inst.notional_usd(amount, mark)
    if value is not None:
        base = value / mark
        contracts = base / inst.contract_size if inst.linear else value / inst.contract_size
        return contracts, base, value
    return None


def open_interest_event(
    oi: Mapping[str, Any],
    pm: PolledMarket,
    mark: float,
    unit: Literal["contracts", "base"],
    recv_ms: int,
    stats: ParseStats,
) -> OpenInterest | None:
    """One ccxt open-interest structure as an event, valued at ``mark``."""
    inst = pm.instrument
    amount, value = _number(oi.get("openInterestAmount")), _number(oi.get("openInterestValue"))
    q = oi_quantities(amount, value, inst, mark, unit)
    if q is None:
        stats.error(inst.venue, "open_interest_without_amount", oi)
        return None
    return _stamp.open_interest_of(inst.venue, inst, _ts(oi.get("timestamp"), recv_ms), recv_ms, *q)


def _structures(found: Any) -> list[Mapping[str, Any]]:
    """A ccxt answer for many symbols as a list: ccxt gives a dict by symbol or a list."""
    return list(found.values()) if isinstance(found, dict) else list(found)


class CcxtVenue:
    """One configured venue polled through ccxt: the client and the unified calls."""

    liquidations_sampled: ClassVar[bool] = False
    ws_url: ClassVar[str] = ""

    def __init__(self, name: str, settings: VenueSettings, *, timeout_s: float) -> None:
        if settings.ccxt is None:
            raise ValueError(f"venues.{name}: not a ccxt-polled venue")
        self.id = name
        self.settings = settings
        self.ccxt: CcxtSettings = settings.ccxt
        config = {**self.ccxt.config, "enableRateLimit": True, "timeout": int(timeout_s * 1000)}
        self.client: Any = getattr(ccxt_async, self.ccxt.exchange)(config)
        api = self.client.urls["api"]
        hostname = str(getattr(self.client, "hostname", "") or "")
        if settings.rest_url is not None:
            self.rest_url = str(settings.rest_url).rstrip("/")
            self.client.urls["api"] = _rebase(api, hostname, self.rest_url)
        else:
            self.rest_url = _first_url(api, hostname)
        has = self.client.has
        self.bulk_funding = bool(has.get("fetchFundingRates"))
        self.bulk_open_interest = bool(has.get("fetchOpenInterests"))
        self.has_tickers = bool(has.get("fetchTickers"))
        self.shard: Shard | None = None
        """Set (from ``collect.shard``): only this shard's markets are polled."""

    @property
    def rate_limit_ms(self) -> float:
        """ccxt's minimum spacing of requests to this exchange (cost 1)."""
        return float(self.client.rateLimit)

    def wanted(self, markets: Mapping[str, PolledMarket]) -> list[PolledMarket]:
        symbols, shard = self.settings.symbols, self.shard
        return [
            pm
            for s, pm in sorted(markets.items())
            if (symbols == "all" or s in symbols) and (shard is None or shard.owns(self.id, s))
        ]

    async def load_markets(self) -> dict[str, PolledMarket]:
        markets = await self.client.load_markets(reload=True)
        return perpetuals(self.id, markets.values(), self.ccxt.funding_interval_h)

    async def funding_rates(self, group: list[PolledMarket]) -> list[Mapping[str, Any]]:
        """Funding structures of ``group`` (one call; the exchange may answer more)."""
        return _structures(await self.client.fetch_funding_rates([pm.unified for pm in group]))

    async def funding_rate(self, pm: PolledMarket) -> Mapping[str, Any]:
        rate: Mapping[str, Any] = await self.client.fetch_funding_rate(pm.unified)
        return rate

    async def open_interests(self, group: list[PolledMarket]) -> list[Mapping[str, Any]]:
        return _structures(await self.client.fetch_open_interests([pm.unified for pm in group]))

    async def open_interest(self, pm: PolledMarket) -> Mapping[str, Any]:
        oi: Mapping[str, Any] = await self.client.fetch_open_interest(pm.unified)
        return oi

    async def tickers(self, group: list[PolledMarket]) -> list[Mapping[str, Any]]:
        """ccxt tickers of ``group``: the mark on exchanges whose funding structure has none."""
        return _structures(await self.client.fetch_tickers([pm.unified for pm in group]))

    async def close(self) -> None:
        await close_quietly(self.client)
