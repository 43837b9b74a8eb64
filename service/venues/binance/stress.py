"""Binance USDⓈ-M (and COIN-M) leverage-stress bodies as stress events (docs/stress.md).

Public REST only; none of these has a websocket stream. Weights are per IP, from the
USDⓈ-M market-data docs (https://developers.binance.com/docs/derivatives/usds-margined-futures):

* ``GET /fapi/v1/symbolAdlRisk`` (weight 1): ``low``/``medium``/``high`` per symbol, updated
  every 30 minutes. One object with ``symbol``, an array of all symbols without.
* ``GET /fapi/v1/insuranceBalance`` (weight 1): the insurance pools, each a list of
  ``symbols`` and a balance per margin ``asset``. Pools have no name: a pool's id here is
  the first of its symbols in alphabetical order.
* ``GET /futures/data/globalLongShortAccountRatio``, ``topLongShortAccountRatio``,
  ``topLongShortPositionRatio``, ``takerlongshortRatio``, ``basis`` (weight 0, "IP rate limit
  1000 requests/5min"; periods 5m to 1d; the last 30 days only).

Every parser follows :func:`service.venues._stress.read` (never raises; drops counted in
``stats``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from ...events import (
    AdlRisk,
    Basis,
    InsuranceFund,
    Positioning,
    PositioningMetric,
    StressEvent,
)
from ...validate import BAD_PRICE
from .. import _stress
from .._numbers import Finite, optional_number
from ..base import Instrument, ParseError, ParseStats

PERIOD_S: Final = {"5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200, "4h": 14400,
                   "6h": 21600, "12h": 43200, "1d": 86400}  # fmt: skip
"""The ``period`` values of the ``futures/data`` endpoints, in seconds."""

LONG_SHORT_PATHS: Final = {
    PositioningMetric.ACCOUNTS: "/futures/data/globalLongShortAccountRatio",
    PositioningMetric.TOP_ACCOUNTS: "/futures/data/topLongShortAccountRatio",
    PositioningMetric.TOP_POSITIONS: "/futures/data/topLongShortPositionRatio",
}
TAKER_PATH: Final = "/futures/data/takerlongshortRatio"
BASIS_PATH: Final = "/futures/data/basis"
ADL_RISK_PATH: Final = "/fapi/v1/symbolAdlRisk"
INSURANCE_PATH: Final = "/fapi/v1/insuranceBalance"

WEIGHT: Final = _stress.Limit("weight", 2400, 60.0)
"""USDⓈ-M's ``REQUEST_WEIGHT`` limit per IP (``exchangeInfo`` ``rateLimits``: 2400 a
minute), shared with every other REST call of the product (open interest, metadata)."""
FUTURES_DATA: Final = _stress.Limit("futures_data", 1000, 300.0)
""""IP rate limit 1000 requests/5min" of the ``futures/data`` endpoints (weight 0). The docs
state it per endpoint; it is counted here over all of them together, the stricter reading."""
LIMITS: Final = (WEIGHT, FUTURES_DATA)


class _AdlRisk(msgspec.Struct):
    """``{"symbol":"BTCUSDT","adlRisk":"low","updateTime":1597370495002}``"""

    symbol: str
    adlRisk: str
    updateTime: int


class _Asset(msgspec.Struct):
    """``{"asset":"USDT","marginBalance":"793930579.315848","updateTime":1745366402000}``"""

    asset: str
    marginBalance: Finite
    updateTime: int


class _Pool(msgspec.Struct):
    symbols: list[str]
    assets: list[Any]


class _Ratio(msgspec.Struct):
    """``{"symbol":"BTCUSDT","longShortRatio":"1.8105","longAccount":"0.6442",
    "shortAccount":"0.3558","timestamp":"1583139600000"}`` (the position ratio uses the same
    field names for position shares)."""

    symbol: str
    longShortRatio: Finite
    longAccount: Finite
    shortAccount: Finite
    timestamp: int


class _Taker(msgspec.Struct):
    """``{"buySellRatio":"1.5586","buyVol":"387.3300","sellVol":"248.5030",
    "timestamp":"1585614900000"}`` (volumes in base coin; no symbol in the row)."""

    buySellRatio: Finite
    buyVol: Finite
    sellVol: Finite
    timestamp: int


class _Basis(msgspec.Struct):
    """``{"indexPrice":"34400.15945055","contractType":"PERPETUAL","basisRate":"0.0004",
    "futuresPrice":"34414.10","annualizedBasisRate":"","basis":"13.94054945",
    "pair":"BTCUSDT","timestamp":1698742800000}``"""

    pair: str
    contractType: str
    futuresPrice: Finite
    indexPrice: Finite
    timestamp: int
    annualizedBasisRate: str = ""


def _listed(doc: object) -> list[Any]:
    """The rows of a body that is one object (``symbol`` given) or an array of them."""
    return [doc] if isinstance(doc, dict) else doc  # type: ignore[return-value]


def parse_adl_risk(
    venue: str, body: _stress.Body, markets: Mapping[str, Instrument], recv_ms: int,
    stats: ParseStats,
) -> list[StressEvent]:  # fmt: skip
    """``GET /fapi/v1/symbolAdlRisk`` as :class:`~service.events.AdlRisk` events; an unknown
    rating word is counted (``unknown_rating``), the row dropped."""

    def parse(doc: Any) -> list[StressEvent]:
        out: list[StressEvent] = []
        for row in _stress.rows(venue, stats, _listed(doc), _AdlRisk):
            inst = _stress.instrument(venue, stats, markets, row.symbol)
            if inst is None:
                continue
            try:
                level = _stress.level_of_rating(row.adlRisk)
            except ParseError as exc:
                stats.error(venue, exc.reason, row.adlRisk)
                continue
            out.append(
                AdlRisk(
                    venue=venue,
                    symbol=inst.symbol,
                    base=inst.base,
                    ts_ms=row.updateTime,
                    recv_ms=recv_ms,
                    level=level,
                    native=row.adlRisk,
                    native_kind="rating",
                )
            )
        return out

    return _stress.read(venue, stats, body, parse)


def parse_insurance_balance(
    venue: str, body: _stress.Body, markets: Mapping[str, Instrument], recv_ms: int,
    stats: ParseStats, usd_prices: Mapping[str, float] | None = None,
) -> list[StressEvent]:  # fmt: skip
    """``GET /fapi/v1/insuranceBalance`` as one :class:`~service.events.InsuranceFund` per
    pool and asset. USD: stablecoins at par, other assets at ``usd_prices[asset]`` when
    given, else ``None`` (BTC, BNFCR)."""
    prices = usd_prices or {}

    def parse(doc: Any) -> list[StressEvent]:
        out: list[StressEvent] = []
        for pool in _stress.rows(venue, stats, _listed(doc), _Pool):
            symbols = tuple(sorted(pool.symbols))
            if not symbols:
                stats.error(venue, _stress.INVALID_ROW, pool)
                continue
            base = _stress.pool_base(markets, symbols)
            for a in _stress.rows(venue, stats, pool.assets, _Asset):
                usd = _stress.usd_at_par(a.asset, a.marginBalance)
                if usd is None and a.asset in prices:
                    usd = a.marginBalance * prices[a.asset]
                out.append(
                    InsuranceFund(
                        venue=venue,
                        symbol=symbols[0],
                        base=base,
                        ts_ms=a.updateTime,
                        recv_ms=recv_ms,
                        pool=symbols[0],
                        asset=a.asset,
                        balance=a.marginBalance,
                        balance_usd=usd,
                        symbols=symbols,
                    )
                )
        return out

    return _stress.read(venue, stats, body, parse)


def parse_long_short(
    venue: str, body: _stress.Body, markets: Mapping[str, Instrument], recv_ms: int,
    stats: ParseStats, metric: PositioningMetric, period_s: int,
) -> list[StressEvent]:  # fmt: skip
    """A ``futures/data`` long/short ratio body (:data:`LONG_SHORT_PATHS` of ``metric``) as
    :class:`~service.events.Positioning` events. The ratio is worked out from the shares;
    the venue's own ratio is kept as ``native_ratio`` (the docs' example disagrees with its
    shares)."""

    def parse(doc: Any) -> list[StressEvent]:
        out: list[StressEvent] = []
        for row in _stress.rows(venue, stats, doc, _Ratio):
            inst = _stress.instrument(venue, stats, markets, row.symbol)
            if inst is None:
                continue
            total = row.longAccount + row.shortAccount
            if not total > 0.0:
                stats.error(venue, _stress.BAD_SHARE, row)
                continue
            out.append(
                Positioning(
                    venue=venue,
                    symbol=inst.symbol,
                    base=inst.base,
                    ts_ms=row.timestamp,
                    recv_ms=recv_ms,
                    metric=metric,
                    period_s=period_s,
                    long_short_ratio=_stress.share_ratio(row.longAccount, row.shortAccount),
                    long_share=row.longAccount / total,
                    native_ratio=row.longShortRatio,
                )
            )
        return out

    return _stress.read(venue, stats, body, parse)


def parse_taker_volume(
    venue: str, body: _stress.Body, inst: Instrument, recv_ms: int, stats: ParseStats,
    period_s: int,
) -> list[StressEvent]:  # fmt: skip
    """``GET /futures/data/takerlongshortRatio?symbol=`` (of ``inst``: the rows do not name
    it) as ``taker_volume`` :class:`~service.events.Positioning` events."""

    def parse(doc: Any) -> list[StressEvent]:
        out: list[StressEvent] = []
        for row in _stress.rows(venue, stats, doc, _Taker):
            total = row.buyVol + row.sellVol
            if not (total > 0.0 and row.sellVol > 0.0):
                stats.error(venue, _stress.BAD_SHARE, row)
                continue
            out.append(
                Positioning(
                    venue=venue,
                    symbol=inst.symbol,
                    base=inst.base,
                    ts_ms=row.timestamp,
                    recv_ms=recv_ms,
                    metric=PositioningMetric.TAKER_VOLUME,
                    period_s=period_s,
                    long_short_ratio=row.buyVol / row.sellVol,
                    long_share=row.buyVol / total,
                    native_ratio=row.buySellRatio,
                    buy_volume=row.buyVol,
                    sell_volume=row.sellVol,
                )
            )
        return out

    return _stress.read(venue, stats, body, parse)


def _pair_instrument(markets: Mapping[str, Instrument], pair: str) -> Instrument | None:
    """The listed instrument of ``pair``: USDⓈ-M names its perpetual by the pair, COIN-M
    adds ``_PERP``."""
    return markets.get(pair) or markets.get(f"{pair}_PERP")


def parse_basis(
    venue: str, body: _stress.Body, markets: Mapping[str, Instrument], recv_ms: int,
    stats: ParseStats,
) -> list[StressEvent]:  # fmt: skip
    """``GET /futures/data/basis`` as :class:`~service.events.Basis` events. ``symbol`` is the
    pair (perpetual) or ``<pair>:<contract>`` (``BTCUSD:current_quarter``): the body names
    the contract type, not the dated symbol. The basis and its rate are worked out from the
    prices; the annualized rate is the venue's (``""`` for a perpetual: ``None``)."""

    def parse(doc: Any) -> list[StressEvent]:
        out: list[StressEvent] = []
        for row in _stress.rows(venue, stats, doc, _Basis):
            inst = _pair_instrument(markets, row.pair)
            if inst is None:
                stats.filtered += 1
                continue
            if not row.indexPrice > 0.0:
                stats.error(venue, BAD_PRICE, row)
                continue
            contract = row.contractType.lower()
            symbol = row.pair if contract == "perpetual" else f"{row.pair}:{contract}"
            basis = row.futuresPrice - row.indexPrice
            try:
                annualized = optional_number(row.annualizedBasisRate)
            except ParseError as exc:
                stats.error(venue, exc.reason, row)
                continue
            out.append(
                Basis(
                    venue=venue,
                    symbol=symbol,
                    base=inst.base,
                    ts_ms=row.timestamp,
                    recv_ms=recv_ms,
                    contract=contract,
                    futures_price=row.futuresPrice,
                    index_price=row.indexPrice,
                    basis=basis,
                    basis_rate=basis / row.indexPrice,
                    annualized_rate=annualized,
                )
            )
        return out

    return _stress.read(venue, stats, body, parse)


Parse = _stress.BodyParser


def _parsers(venue: str, markets: Mapping[str, Instrument], period_s: int) -> dict[str, Parse]:
    """The parse function of each path (``taker`` and ``basis`` per symbol: see :func:`plan`)."""

    def adl(body: bytes, recv_ms: int, stats: ParseStats) -> list[StressEvent]:
        return parse_adl_risk(venue, body, markets, recv_ms, stats)

    def insurance(body: bytes, recv_ms: int, stats: ParseStats) -> list[StressEvent]:
        return parse_insurance_balance(venue, body, markets, recv_ms, stats)

    def basis(body: bytes, recv_ms: int, stats: ParseStats) -> list[StressEvent]:
        return parse_basis(venue, body, markets, recv_ms, stats)

    out: dict[str, Parse] = {ADL_RISK_PATH: adl, INSURANCE_PATH: insurance, BASIS_PATH: basis}
    for metric, path in LONG_SHORT_PATHS.items():

        def ratio(
            body: bytes, recv_ms: int, stats: ParseStats, metric: PositioningMetric = metric
        ) -> list[StressEvent]:
            return parse_long_short(venue, body, markets, recv_ms, stats, metric, period_s)

        out[path] = ratio
    return out


def _taker(venue: str, inst: Instrument, period_s: int) -> Parse:
    def parse(body: bytes, recv_ms: int, stats: ParseStats) -> list[StressEvent]:
        return parse_taker_volume(venue, body, inst, recv_ms, stats, period_s)

    return parse


def plan(
    venue: str, markets: Mapping[str, Instrument], symbols: Sequence[str], *,
    period: str = "5m", every_s: float = 300.0, ratings_every_s: float = 300.0,
) -> list[_stress.StressRequest]:  # fmt: skip
    """The USDⓈ-M stress polls of ``symbols``: the all-symbol ADL ratings and insurance
    pools (weight 1 each, every ``ratings_every_s``: the ratings change every 30 min), and per
    symbol its three long/short ratios, taker volume and perpetual basis (``futures/data``,
    weight 0, one row of ``period`` every ``every_s``)."""
    if period not in PERIOD_S:
        raise ValueError(f"period {period!r} is not one of {sorted(PERIOD_S)}")
    period_s = PERIOD_S[period]
    parsers = _parsers(venue, markets, period_s)
    weight1 = ((WEIGHT.name, 1),)
    data = ((FUTURES_DATA.name, 1),)
    Req = _stress.StressRequest
    out = [
        Req(ADL_RISK_PATH, (), weight1, ratings_every_s, parsers[ADL_RISK_PATH]),
        Req(INSURANCE_PATH, (), weight1, ratings_every_s, parsers[INSURANCE_PATH]),
    ]
    for symbol in symbols:
        q = (("symbol", symbol), ("period", period), ("limit", "1"))
        out += [Req(path, q, data, every_s, parsers[path]) for path in LONG_SHORT_PATHS.values()]
        out.append(Req(TAKER_PATH, q, data, every_s, _taker(venue, markets[symbol], period_s)))
        basis_q = (("pair", symbol), ("contractType", "PERPETUAL"), *q[1:])
        out.append(Req(BASIS_PATH, basis_q, data, every_s, parsers[BASIS_PATH]))
    return out
