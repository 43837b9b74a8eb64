"""Entries already in Redis that cannot be used: what they are, and how they are counted.

Redis may hold anything: entries written by an older version, by hand, or before a
validation existed (a liquidation stored with ``"price": null`` from a venue's ``NaN``). A
reader that meets one skips it, calls :func:`record`, and goes on: one bad entry never fails
a read, a request or the detector. Each ``(what, reason)`` is logged once per process, with
the key and a sample; every one is counted, and ``/metrics`` exports the counts
(``deleverage_store_decode_errors_total``).

``what`` names what the entry should have been (``liquidation``, ``latest``, ``pressure``,
``health``, ``transition``, ``alert``...); ``reason`` is a :class:`Reason`.

The checks below are those a stored value must pass to be served: numbers are already finite
(JSON has no ``NaN``, and the decoders refuse numbers out of the float range), so what is left
is sizes and prices that are negative, times outside 1970-9999, scores outside 0-100, and
values stored under another instrument's key.
"""

from __future__ import annotations

import enum
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final, TypeVar

import msgspec
import structlog
from redis.exceptions import ResponseError

from ..events import (
    BookDepth,
    BookTop,
    Event,
    FundingRate,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Volume,
)
from ..events import decode as decode_event
from ..health import HealthSnapshot
from ..scores import Pressure, Transition

log = structlog.get_logger(__name__)
T = TypeVar("T")

MAX_TS_MS: Final = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the last time an RFC 3339 string can carry."""
SAMPLE_CHARS: Final = 200


class Reason(enum.StrEnum):
    UNDECODABLE = "undecodable"
    """Not the JSON of the expected type: bad JSON or UTF-8, a null or a string where a number
    belongs, a missing field, a missing stream field."""
    INVALID = "invalid"
    """Decodes, but a value is impossible: a negative size, a time out of range, a score over
    100, an event under another instrument's key or hash field."""
    WRONG_TYPE = "wrong_type"
    """The key holds another Redis type (``WRONGTYPE``)."""


class PoisonCounter:
    """Counts of unusable entries by ``(what, reason)``; logs the first of each."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, Reason]] = Counter()
        self._lock = threading.Lock()  # /metrics may be scraped from another thread

    def record(self, what: str, reason: Reason, key: str, detail: object) -> None:
        with self._lock:
            self._counts[(what, reason)] += 1
            first = self._counts[(what, reason)] == 1
        if first:  # later ones only count: a poisoned stream must not flood the log
            log.warning(
                "store: unusable entry skipped (further ones of this kind are only counted)",
                what=what, reason=reason.value, key=key, sample=str(detail)[:SAMPLE_CHARS],
            )  # fmt: skip

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return {(what, reason.value): n for (what, reason), n in self._counts.items()}


COUNTER: Final = PoisonCounter()
"""The process's counter (like ``prometheus_client``'s default registry: one per process)."""


def record(what: str, reason: Reason, key: str, detail: object) -> None:
    """Count (and the first time, log) an entry of ``key`` that was skipped."""
    COUNTER.record(what, reason, key, detail)


def counts() -> dict[tuple[str, str], int]:
    """Entries skipped since the process started, by ``(what, reason)``."""
    return COUNTER.counts()


def _time_problem(**times: int | None) -> str | None:
    for name, value in times.items():
        if value is not None and not 0 <= value <= MAX_TS_MS:
            return f"{name} {value} is outside 1970-9999"
    return None


def _negative(**values: float | None) -> str | None:
    for name, value in values.items():
        if value is not None and value < 0:
            return f"{name} {value} is negative"
    return None


def _score_problem(score: float) -> str | None:
    return None if 0 <= score <= 100 else f"score {score} is outside 0-100"


def _all_usable(e: Event) -> bool:
    """Whether ``e`` passes :func:`event_problem`'s checks, tested inline: a reader of the
    whole market checks thousands of events a second, and the named checks (keyword
    arguments, a dict each) cost ten times the event's decoding. ``False`` only sends
    ``e`` to them (NaN fails ``>= 0`` here, and passes ``< 0`` there: the same answer).
    By exact type, the commonest first (no event class has a subclass; one would be sent
    to the named checks)."""
    if not (0 <= e.ts_ms <= MAX_TS_MS and 0 <= e.recv_ms <= MAX_TS_MS):
        return False
    if type(e) is MarkPrice:
        return e.mark_price >= 0 and (e.index_price is None or e.index_price >= 0)
    if type(e) is Liquidation:
        return e.price >= 0 and e.quantity >= 0 and e.quantity_base >= 0 and e.notional_usd >= 0
    if type(e) is BookTop:
        return (
            e.bid_price >= 0 and e.ask_price >= 0 and e.bid_base >= 0 and e.ask_base >= 0
            and e.bid_usd >= 0 and e.ask_usd >= 0
        )  # fmt: skip
    if type(e) is FundingRate:
        next_ms = e.next_funding_ms
        return (next_ms is None or 0 <= next_ms <= MAX_TS_MS) and e.interval_h >= 0
    if type(e) is OpenInterest:
        return e.oi_contracts >= 0 and e.oi_base >= 0 and e.oi_usd >= 0
    if type(e) is Volume:
        return (
            e.taker_buy_base >= 0 and e.taker_buy_usd >= 0 and e.taker_sell_base >= 0
            and e.taker_sell_usd >= 0 and e.trades >= 0
        )  # fmt: skip
    if type(e) is BookDepth:
        return (
            e.mid >= 0 and e.bid_usd_0p5 >= 0 and e.bid_usd_1 >= 0 and e.bid_usd_2 >= 0
            and e.ask_usd_0p5 >= 0 and e.ask_usd_1 >= 0 and e.ask_usd_2 >= 0
        )  # fmt: skip
    return False


def event_problem(e: Event) -> str | None:
    """Why a stored event cannot be served, or ``None``."""
    if _all_usable(e):
        return None
    problem = _time_problem(ts_ms=e.ts_ms, recv_ms=e.recv_ms)
    if problem is not None:
        return problem
    if isinstance(e, Liquidation):
        return _negative(
            price=e.price, quantity=e.quantity, quantity_base=e.quantity_base,
            notional_usd=e.notional_usd,
        )  # fmt: skip
    if isinstance(e, OpenInterest):
        return _negative(oi_contracts=e.oi_contracts, oi_base=e.oi_base, oi_usd=e.oi_usd)
    if isinstance(e, MarkPrice):
        return _negative(mark_price=e.mark_price, index_price=e.index_price)
    if isinstance(e, BookTop):
        return _negative(
            bid_price=e.bid_price, ask_price=e.ask_price, bid_base=e.bid_base,
            ask_base=e.ask_base, bid_usd=e.bid_usd, ask_usd=e.ask_usd,
        )  # fmt: skip
    if isinstance(e, Volume):
        return _negative(
            taker_buy_base=e.taker_buy_base, taker_buy_usd=e.taker_buy_usd,
            taker_sell_base=e.taker_sell_base, taker_sell_usd=e.taker_sell_usd,
            trades=e.trades,
        )  # fmt: skip
    if isinstance(e, BookDepth):
        return _negative(
            mid=e.mid, bid_usd_0p5=e.bid_usd_0p5, bid_usd_1=e.bid_usd_1, bid_usd_2=e.bid_usd_2,
            ask_usd_0p5=e.ask_usd_0p5, ask_usd_1=e.ask_usd_1, ask_usd_2=e.ask_usd_2,
        )  # fmt: skip
    assert isinstance(e, FundingRate)
    return _time_problem(next_funding_ms=e.next_funding_ms) or _negative(interval_h=e.interval_h)


def pressure_problem(p: Pressure) -> str | None:
    if 0 <= p.score <= 100 and 0 <= p.updated_ms <= MAX_TS_MS and 0 <= p.since_ms <= MAX_TS_MS:
        return None  # (inline, as in _all_usable: every score of the market, every read)
    return _score_problem(p.score) or _time_problem(updated_ms=p.updated_ms, since_ms=p.since_ms)


def transition_problem(t: Transition) -> str | None:
    return _score_problem(t.score) or _time_problem(ts_ms=t.ts_ms)


def snapshot_problem(s: HealthSnapshot) -> str | None:
    return _time_problem(
        updated_ms=s.updated_ms, connected_since_ms=s.connected_since_ms,
        last_message_ms=s.last_message_ms, last_event_ms=s.last_event_ms,
    )  # fmt: skip


def times_problem(times: Iterable[tuple[str, int | None]]) -> str | None:
    """The first of ``(name, epoch ms)`` outside 1970-9999, for values checked elsewhere."""
    return _time_problem(**dict(times))


def decode_or_record(
    decoder: msgspec.json.Decoder[T], raw: bytes | str | msgspec.Raw, what: str, key: str
) -> T | None:
    """``raw`` decoded, or ``None`` (recorded as undecodable)."""
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as exc:  # ValidationError included
        record(what, Reason.UNDECODABLE, key, f"{exc}: {raw!r}")
        return None


# --- reading what Redis holds, whatever it holds ----------------------------------------------


def readable(reply: Any, what: str, key: str) -> bool:
    """False (recorded) for a reply that is a ``WRONGTYPE`` refusal (pipelined replies are
    values); any other refusal is raised."""
    if not isinstance(reply, Exception):
        return True
    if isinstance(reply, ResponseError) and str(reply).startswith("WRONGTYPE"):
        record(what, Reason.WRONG_TYPE, key, reply)
        return False
    raise reply


def utf8(value: bytes | str, what: str, key: str) -> str | None:
    """``value`` as text, or ``None`` (recorded) when it is not UTF-8."""
    try:
        return value.decode() if isinstance(value, bytes) else value
    except UnicodeDecodeError:
        record(what, Reason.UNDECODABLE, key, value)
        return None


def entry_field(fields: dict[Any, Any], name: str) -> Any:
    """A stream entry's field (``None`` when it has none)."""
    return fields.get(name.encode(), fields.get(name))


def usable_event(raw: Any, what: str, key: str, pair: tuple[str, str]) -> Event | None:
    """A stored event of instrument ``pair``, or ``None`` (recorded) when it cannot be used."""
    if raw is None:
        record(what, Reason.UNDECODABLE, key, "no field 'e'")
        return None
    try:
        event = decode_event(raw)
    except msgspec.DecodeError as exc:
        record(what, Reason.UNDECODABLE, key, f"{exc}: {raw!r}")
        return None
    problem = event_problem(event)
    if problem is None and (event.venue, event.symbol) != pair:
        problem = f"an event of {event.venue}|{event.symbol}"
    if problem is not None:
        record(what, Reason.INVALID, key, problem)
        return None
    return event
