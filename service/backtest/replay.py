"""Bars through a pressure model: events per bar, model time scaled to the bar size. Pure.

Every bar is played as ``bar_as_s`` seconds of *model time* (default 60: one bar is one
minute to the detector, whose windows are thus counted in bars: with hourly bars the 5-minute
window spans five hours). Model time starts at the first bar and maps back to real time with
``real = first + (model - first) * bar_s / bar_as_s``: every time reported is real.

Per instrument and bar, at model offsets within the bar:

* marks: open at 0, then the bar's extremes (high then low when it closed down, low then
  high otherwise) at 1/3 and 2/3, and the close at the bar's end; only the close when the
  file has no open/high/low;
* open interest at the bar's end (USD from base at the close, or the reverse);
* funding at the bar's end: the last known rate, carried forward (the live feeds repeat it);
  its interval from the column or from the spacing of the funding rows;
* liquidations: each side's USD spread evenly over ``min(bar_as_s, 60)`` prints across the
  bar (a bar is a flow, not one print), unsampled.

The model is evaluated at each of the four points of every bar. Transitions and scores come
back in real time as :class:`StateInterval` s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..detect.base import PressureModel
from ..detect.model import Pressure, Scope, State, Transition
from ..events import Event, FundingRate, Liquidation, MarkPrice, OpenInterest, Side, per_hour
from .bars import Bar, funding_intervals

POINTS = 4
"""Evaluations (and mark points) per bar."""


@dataclass(slots=True)
class StateInterval:
    """One stretch of a non-calm state, in real time."""

    scope: str
    venue: str
    symbol: str
    asset: str
    state: State
    side: str | None
    start_ms: int
    end_ms: int | None
    """``None``: still open at the end of the file."""
    peak_score: float
    reasons: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Coverage:
    """How much of the time each instrument could be scored."""

    evaluations: int = 0
    held: int = 0
    """Evaluations where a required feed (OI, mark) was missing or stale."""
    hold_reasons: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Result:
    bar_s: int
    bar_as_s: float
    first_ms: int
    last_ms: int
    intervals: list[StateInterval]
    coverage: dict[tuple[str, str], Coverage]
    transitions: list[Transition]


class Clock:
    """Real ↔ model time."""

    def __init__(self, first_ms: int, bar_s: int, bar_as_s: float) -> None:
        self.first_ms, self.scale = first_ms, bar_s / bar_as_s

    def model(self, real_ms: int) -> int:
        return self.first_ms + round((real_ms - self.first_ms) / self.scale)

    def real(self, model_ms: int) -> int:
        return self.first_ms + round((model_ms - self.first_ms) * self.scale)


def asset_of(symbol: str) -> str:
    """``BTC`` from ``BTC``, ``BTCUSDT``, ``BTC-USDT-SWAP``, ``BTC/USDT:USDT``, ``BTCUSD_PERP``."""
    head = symbol.replace("/", "-").replace("_", "-").replace(":", "-").split("-")[0]
    for quote in ("USDT", "USDC", "USD", "BUSD"):
        if head.endswith(quote) and len(head) > len(quote):
            return head[: -len(quote)]
    return head


def bar_events(
    b: Bar, start: int, span: int, funding: tuple[float, float] | None, asset: str
) -> list[tuple[int, Event]]:
    """The events of one bar at model times in ``[start, start + span)``: (offset, event)."""
    end = start + span - 1
    out: list[tuple[int, Event]] = []

    def mark(at: int, price: float) -> None:
        out.append((at, MarkPrice(venue=b.venue, symbol=b.symbol, base=asset, ts_ms=at,
                                  recv_ms=at, mark_price=price, index_price=None)))  # fmt: skip

    close, o, hi, lo = b.price, b.open, b.high, b.low
    if close is not None and o is not None and hi is not None and lo is not None:
        first, second = (hi, lo) if close < o else (lo, hi)
        for k, px in enumerate((o, first, second)):
            mark(start + k * span // 3, px)
    if close is not None:
        mark(end, close)
    oi = _oi(b, close)
    if oi is not None:
        base, usd = oi
        out.append((end, OpenInterest(venue=b.venue, symbol=b.symbol, base=asset, ts_ms=end,
                    recv_ms=end, oi_contracts=base, oi_base=base, oi_usd=usd)))  # fmt: skip
    if funding is not None:
        rate, hours = funding
        out.append((end, FundingRate(venue=b.venue, symbol=b.symbol, base=asset, ts_ms=end,
                    recv_ms=end, funding_rate=rate, interval_h=hours,
                    funding_rate_1h=per_hour(rate, hours), next_funding_ms=None)))  # fmt: skip
    price = close or b.open
    if price:
        for side, usd in ((Side.LONG, b.liq_long_usd or 0.0), (Side.SHORT, b.liq_short_usd or 0.0)):
            out.extend(_liquidations(b, asset, side, usd, price, start, span))
    return out


def _oi(b: Bar, close: float | None) -> tuple[float, float] | None:
    if b.oi_base is not None and b.oi_usd is not None:
        return b.oi_base, b.oi_usd
    if b.oi_base is not None and close:
        return b.oi_base, b.oi_base * close
    if b.oi_usd is not None and close:
        return b.oi_usd / close, b.oi_usd
    return None


def _liquidations(
    b: Bar, asset: str, side: Side, usd: float, price: float, start: int, span: int
) -> list[tuple[int, Event]]:
    if usd <= 0:
        return []
    n = max(1, min(60, span // 1000))
    each = usd / n
    out: list[tuple[int, Event]] = []
    qty = each / price
    for k in range(n):
        at = start + (k * span) // n
        ident = f"{b.ts_ms}-{side}-{k}"
        out.append((at, Liquidation(venue=b.venue, symbol=b.symbol, base=asset, ts_ms=at,
                    recv_ms=at, side=side, price=price, quantity=qty, quantity_base=qty,
                    notional_usd=each, sampled=False, event_id=ident)))  # fmt: skip
    return out


def replay(
    bars: Sequence[Bar],
    model: PressureModel,
    bar_s: int,
    bar_as_s: float = 60.0,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Play ``bars`` (sorted by time) through ``model``; its state intervals in real time."""
    if not bars:
        raise ValueError("no bars to play")
    first, last = bars[0].ts_ms, bars[-1].ts_ms
    clock = Clock(first, bar_s, bar_as_s)
    span = round(bar_as_s * 1000)
    intervals_h = funding_intervals(bars)
    rates: dict[tuple[str, str], float] = {}
    assets = {b.key: asset_of(b.symbol) for b in bars}
    tracker = _Tracker(clock)
    by_time: dict[int, list[Bar]] = {}
    for b in bars:
        by_time.setdefault(b.ts_ms, []).append(b)
    times = sorted(by_time)
    for n, ts in enumerate(times):
        start = clock.model(ts)
        timed: list[tuple[int, Event]] = []
        for b in by_time[ts]:
            if b.funding_rate is not None:
                rates[b.key] = b.funding_rate
            hours: float = b.funding_interval_h or intervals_h.get(b.key, 8.0)
            funding = (rates[b.key], hours) if b.key in rates else None
            timed.extend(bar_events(b, start, span, funding, assets[b.key]))
        timed.sort(key=lambda te: te[0])
        cursor = 0
        for k in range(1, POINTS + 1):
            at = start + (k * span) // POINTS - (1 if k == POINTS else 0)
            upto = cursor
            while upto < len(timed) and timed[upto][0] <= at:
                upto += 1
            model.update(e for _, e in timed[cursor:upto])
            cursor = upto
            tracker.take(model.evaluate(at))
        if progress is not None:
            progress(n + 1, len(times))
    return Result(bar_s, bar_as_s, first, last, tracker.close(), tracker.coverage, tracker.seen)


class _Tracker:
    """Turns evaluations into intervals (instrument and asset scopes) and coverage."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.open: dict[tuple[str, str, str], StateInterval] = {}
        self.done: list[StateInterval] = []
        self.coverage: dict[tuple[str, str], Coverage] = {}
        self.seen: list[Transition] = []

    def take(self, ev: object) -> None:
        transitions: Iterable[Transition] = [
            *getattr(ev, "transitions", []),
            *getattr(ev, "aggregate_transitions", []),
        ]
        for tr in transitions:
            self.seen.append(tr)
            self._transition(tr)
        pressures: list[Pressure] = [*getattr(ev, "pressures", []), *getattr(ev, "aggregates", [])]
        for p in pressures:
            key = (str(p.scope), p.venue, p.symbol)
            if key in self.open:
                self.open[key].peak_score = max(self.open[key].peak_score, p.score)
            if p.scope is Scope.INSTRUMENT:
                cov = self.coverage.setdefault((p.venue, p.symbol), Coverage())
                cov.evaluations += 1
                if p.data_quality == 0:
                    cov.held += 1
                    cov.hold_reasons.update(r for r in p.reasons if r.startswith("stale feed"))

    def _transition(self, tr: Transition) -> None:
        key = (str(tr.scope), tr.venue, tr.symbol)
        real = self.clock.real(tr.ts_ms)
        old = self.open.pop(key, None)
        if old is not None:
            old.end_ms = real
            self.done.append(old)
        if tr.to_state is not State.CALM:
            self.open[key] = StateInterval(
                str(tr.scope), tr.venue, tr.symbol, tr.asset, tr.to_state,
                None if tr.side is None else str(tr.side), real, None, tr.score,
                list(tr.reasons),
            )  # fmt: skip

    def close(self) -> list[StateInterval]:
        out = self.done + list(self.open.values())
        return sorted(out, key=lambda i: (i.start_ms, i.scope, i.venue, i.symbol))
