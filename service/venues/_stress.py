"""What every venue's leverage-stress parser shares: the failure policy of a REST body, the
checks of a stress event, and the mappings onto one scale (ADL level, long share, USD).

A venue's ``stress`` module (``service/venues/<venue>/stress.py``) turns a REST body (or a
websocket frame) into :data:`~service.events.StressEvent` values with pure functions of the
shape::

    def parse_x(body, markets, recv_ms, stats) -> list[StressEvent]

They go through :func:`read`, the policy of :meth:`.base.Parser.parse` for these bodies: a
body that is not JSON, not of the endpoint's envelope, or an error answer of the venue is
counted in ``stats`` and gives ``[]``; a bad row is counted and skipped, the body's other rows
kept; an event that fails :func:`problem` is counted and dropped; nothing but a
``MemoryError`` escapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import msgspec

from ..events import AdlLevel, AdlRisk, Basis, InsuranceFund, Positioning, StressEvent
from ..validate import BAD_PRICE, BAD_TIME, MAX_VALUE, NON_FINITE, TOO_LARGE, TS_MAX_MS
from .base import (
    INVALID_FRAME,
    INVALID_JSON,
    TOO_DEEP,
    Instrument,
    ParseError,
    ParseStats,
)

VENUE_ERROR: Final = "venue_error"
"""The venue answered with its error envelope (Bybit ``retCode`` ≠ 0, OKX ``code`` ≠ "0")."""
INVALID_ROW: Final = "invalid_row"
"""A row of a body that is not of the endpoint's row shape (a missing field, a word where a
number belongs)."""
UNKNOWN_RATING: Final = "unknown_rating"
BAD_SHARE: Final = "bad_share"
BAD_RATIO: Final = "bad_ratio"
MAX_PERIOD_S: Final = 31 * 86_400

STABLE_AT_PAR: Final = frozenset({"USD", "USDT", "USDC"})
"""Assets valued one USD each. Binance's ``BNFCR`` (a futures credit) is left out: its USD
value is not published with the balance."""

RATINGS: Final = {"low": AdlLevel.LOW, "medium": AdlLevel.MEDIUM, "high": AdlLevel.HIGH}

T = TypeVar("T")
Body = bytes | str | Any
"""A REST body as received (bytes or text), or already decoded JSON."""


def read(
    venue: str, stats: ParseStats, body: Body, parse: Callable[[Any], list[StressEvent]]
) -> list[StressEvent]:
    """``parse`` applied to ``body`` (decoded first when it is bytes or text), under the
    failure policy of this module; never raises but ``MemoryError``."""
    try:
        doc = msgspec.json.decode(body) if isinstance(body, (bytes, str)) else body
        events = parse(doc)
    except msgspec.DecodeError:
        stats.error(venue, INVALID_JSON, body)
        return []
    except msgspec.ValidationError:
        stats.error(venue, INVALID_FRAME, body)
        return []
    except ParseError as exc:
        stats.error(venue, exc.reason, body)
        return []
    except RecursionError:
        stats.error(venue, TOO_DEEP, body)
        return []
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - counted and logged, as Parser.parse does
        stats.bug(venue, exc, body)
        return []
    out: list[StressEvent] = []
    for ev in events:
        reason = problem(ev)
        if reason is None:
            out.append(ev)
        else:
            stats.error(venue, reason, ev)
    return out


def rows(venue: str, stats: ParseStats, items: object, row_type: type[T]) -> Iterator[T]:
    """The items of the list ``items`` as ``row_type`` (numbers read from text); a row of
    another shape is counted (:data:`INVALID_ROW`) and skipped. ``items`` that is not a list
    raises :class:`ParseError` (:data:`INVALID_FRAME`)."""
    if not isinstance(items, list):
        raise ParseError(INVALID_FRAME)
    for item in items:
        try:
            yield msgspec.convert(item, row_type, strict=False)
        except msgspec.ValidationError:
            stats.error(venue, INVALID_ROW, item)


def instrument(
    venue: str, stats: ParseStats, markets: Mapping[str, Instrument], symbol: str
) -> Instrument | None:
    """The metadata of ``symbol``, or ``None`` counted as filtered (a symbol this service
    does not list: all-market bodies carry many)."""
    inst = markets.get(symbol)
    if inst is None:
        stats.filtered += 1
    return inst


def level_of_rating(rating: str) -> AdlLevel:
    """A venue's ``low``/``medium``/``high`` rating on the :class:`AdlLevel` scale; raises
    :class:`ParseError` (:data:`UNKNOWN_RATING`) on any other word."""
    level = RATINGS.get(rating.strip().lower())
    if level is None:
        raise ParseError(UNKNOWN_RATING)
    return level


def level_of_progress(value: float, trigger: float) -> AdlLevel:
    """The level of a ratio ``value`` that triggers ADL once it passes ``trigger`` (both
    drawdowns, so negative): how far it has come, in thirds; :attr:`AdlLevel.ACTIVE` past the
    trigger. A ratio of the other sign than its trigger has not started: ``LOW``."""
    if trigger == 0.0:
        return AdlLevel.LOW
    progress = value / trigger
    if progress > 1.0:
        return AdlLevel.ACTIVE
    if progress >= 2 / 3:
        return AdlLevel.HIGH
    if progress >= 1 / 3:
        return AdlLevel.MEDIUM
    return AdlLevel.LOW


def usd_at_par(asset: str, balance: float) -> float | None:
    """``balance`` of ``asset`` in USD when the asset is one of :data:`STABLE_AT_PAR`."""
    return balance if asset.upper() in STABLE_AT_PAR else None


def pool_base(markets: Mapping[str, Instrument], symbols: tuple[str, ...]) -> str:
    """The one base asset of a pool's ``symbols`` we know, else ``*`` (several, or none)."""
    bases = {markets[s].base for s in symbols if s in markets}
    return bases.pop() if len(bases) == 1 else "*"


def share_ratio(long_share: float, short_share: float) -> float:
    """Long over short from two shares; raises :class:`ParseError` (:data:`BAD_SHARE`) when
    the short share is not positive."""
    if not short_share > 0.0:
        raise ParseError(BAD_SHARE)
    return long_share / short_share


def problem(ev: StressEvent) -> str | None:
    """Why ``ev`` cannot be a real stress event, or ``None``: times that are not epoch
    milliseconds before 2100, a NaN or infinity, a size beyond :data:`MAX_VALUE`, a price
    that is not positive, a share outside ``[0, 1]``, a negative ratio."""
    if not (0 <= ev.ts_ms <= TS_MAX_MS and 0 <= ev.recv_ms <= TS_MAX_MS):
        return BAD_TIME
    numbers: tuple[float | None, ...]
    if type(ev) is AdlRisk:
        numbers = (ev.trigger, ev.pool_balance)
    elif type(ev) is InsuranceFund:
        numbers = (ev.balance, ev.balance_usd, ev.change)
    elif type(ev) is Positioning:
        numbers = (ev.long_short_ratio, ev.long_share, ev.native_ratio, ev.buy_volume,
                   ev.sell_volume)  # fmt: skip
    else:
        assert type(ev) is Basis
        numbers = (ev.futures_price, ev.index_price, ev.basis, ev.basis_rate, ev.annualized_rate)
    for x in numbers:
        if x is not None and not math.isfinite(x):
            return NON_FINITE
        if x is not None and abs(x) >= MAX_VALUE:
            return TOO_LARGE
    if type(ev) is Positioning:
        if not 0 < ev.period_s <= MAX_PERIOD_S:
            return BAD_TIME
        if not ev.long_short_ratio >= 0.0:
            return BAD_RATIO
        if ev.long_share is not None and not 0.0 <= ev.long_share <= 1.0:
            return BAD_SHARE
    if type(ev) is Basis and not (ev.futures_price > 0.0 and ev.index_price > 0.0):
        return BAD_PRICE
    return None


# -- polling plans ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limit:
    """One published request limit of a venue: at most ``capacity`` units (request weight, or
    requests) in any ``window_s`` seconds."""

    name: str
    capacity: int
    window_s: float


BodyParser = Callable[[bytes, int, ParseStats], list[StressEvent]]
"""A plan's parse function: ``(body, recv_ms, stats) -> events``."""


@dataclass(frozen=True, slots=True)
class StressRequest:
    """One REST call a stress poll makes, every ``every_s`` seconds: what it costs against
    each of the venue's :class:`Limit` (``charges``: limit name, units) and how its body
    becomes events (``parse(body, recv_ms, stats)``)."""

    path: str
    params: tuple[tuple[str, str], ...]
    charges: tuple[tuple[str, int], ...]
    every_s: float
    parse: BodyParser


def units_per_window(plan: list[StressRequest], limit: Limit) -> float:
    """The units of ``limit`` that ``plan`` spends in one of its windows at its nominal
    cadence: what must stay below the share of the limit the plan is given."""
    return sum(
        units * limit.window_s / r.every_s
        for r in plan
        for name, units in r.charges
        if name == limit.name
    )
