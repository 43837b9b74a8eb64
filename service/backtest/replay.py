"""Bars through a pressure model, in real time. Pure.

Every bar is played at its own times: the detector's windows, baselines, dwell and
persistence are in real time, so 1-minute, hourly and daily bars play through the same
configuration (a window shorter than the data's spacing is simply not measurable, see
``docs/detector.md``). A bar starting at ``ts`` closes at ``ts + bar``; per instrument:

* marks: the open at ``ts``, then the bar's extremes (high then low when it closed down, low
  then high otherwise) at 1/3 and 2/3 of the bar, and the close at the close; only the close
  when the file has no open/high/low;
* open interest at the close (base units; USD is converted with the close);
* funding at the close: the last known rate, carried forward (the live feeds repeat it);
  its interval from the column or from the spacing of the funding rows;
* liquidations: each side's USD spread evenly over ``min(60, bar seconds)`` prints across
  the bar (a bar is a flow, not one print), flagged ``sampled`` for the venues named so.

The model is evaluated at each close (a bar's data is complete only then: nothing is read
before it is known) and once more ``settle_s`` later (what a live detector, evaluating every
second, would conclude once a persistence requirement is met). Transitions come back as
:class:`StateInterval` s.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

from ..detect.base import PressureModel
from ..events import Event, FundingRate, Liquidation, MarkPrice, OpenInterest, Side, per_hour
from ..scores import WARMING, Pressure, Scope, State, Transition
from .bars import Bar, funding_intervals


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
    warming: int = 0
    """Evaluations in the burn-in (baselines not ready: no state reported)."""
    warm_until_ms: int | None = None
    """The last evaluation still in the burn-in."""


@dataclass(slots=True)
class Result:
    bar_s: int
    first_ms: int
    last_ms: int
    intervals: list[StateInterval]
    coverage: dict[tuple[str, str], Coverage]
    transitions: list[Transition]


def asset_of(symbol: str) -> str:
    """``BTC`` from ``BTC``, ``BTCUSDT``, ``BTC-USDT-SWAP``, ``BTC/USDT:USDT``, ``BTCUSD_PERP``."""
    head = symbol.replace("/", "-").replace("_", "-").replace(":", "-").split("-")[0]
    for quote in ("USDT", "USDC", "USD", "BUSD"):
        if head.endswith(quote) and len(head) > len(quote):
            return head[: -len(quote)]
    return head


def bar_events(
    b: Bar,
    span_ms: int,
    funding: tuple[float, float] | None,
    asset: str,
    sampled: bool = False,
) -> list[tuple[int, Event]]:
    """The events of one bar at real times in ``[ts, ts + span]``: (time, event)."""
    start, end = b.ts_ms, b.ts_ms + span_ms
    out: list[tuple[int, Event]] = []

    def mark(at: int, price: float) -> None:
        out.append((at, MarkPrice(venue=b.venue, symbol=b.symbol, base=asset, ts_ms=at,
                                  recv_ms=at, mark_price=price, index_price=None)))  # fmt: skip

    close, o, hi, lo = b.price, b.open, b.high, b.low
    if close is not None and o is not None and hi is not None and lo is not None:
        first, second = (hi, lo) if close < o else (lo, hi)
        for k, px in enumerate((o, first, second)):
            mark(start + k * span_ms // 3, px)
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
            out.extend(_liquidations(b, asset, side, usd, price, span_ms, sampled))
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
    b: Bar, asset: str, side: Side, usd: float, price: float, span_ms: int, sampled: bool
) -> list[tuple[int, Event]]:
    if usd <= 0:
        return []
    n = max(1, min(60, span_ms // 1000))
    each = usd / n
    out: list[tuple[int, Event]] = []
    qty = each / price
    for k in range(n):
        at = b.ts_ms + ((2 * k + 1) * span_ms) // (2 * n)
        ident = f"{b.ts_ms}-{side}-{k}"
        out.append((at, Liquidation(venue=b.venue, symbol=b.symbol, base=asset, ts_ms=at,
                    recv_ms=at, side=side, price=price, quantity=qty, quantity_base=qty,
                    notional_usd=each, sampled=sampled, event_id=ident)))  # fmt: skip
    return out


def replay(
    bars: Sequence[Bar],
    model: PressureModel,
    bar_s: int,
    *,
    settle_s: float = 0.0,
    sampled: Collection[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Play ``bars`` (sorted by time) through ``model`` in real time; its state intervals.
    ``sampled`` names the venues whose liquidation columns come from a sampled feed."""
    if not bars:
        raise ValueError("no bars to play")
    span = bar_s * 1000
    settle = round(settle_s * 1000) if 0 < settle_s * 1000 < span else 0
    intervals_h = funding_intervals(bars)
    rates: dict[tuple[str, str], float] = {}
    assets = {b.key: asset_of(b.symbol) for b in bars}
    tracker = _Tracker()
    by_time: dict[int, list[Bar]] = {}
    for b in bars:
        by_time.setdefault(b.ts_ms, []).append(b)
    times = sorted(by_time)
    pending: list[tuple[int, Event]] = []
    nxt = 0

    def step(at: int) -> None:
        nonlocal nxt, pending
        while nxt < len(times) and times[nxt] <= at:
            for b in by_time[times[nxt]]:
                if b.funding_rate is not None:
                    rates[b.key] = b.funding_rate
                hours: float = b.funding_interval_h or intervals_h.get(b.key, 8.0)
                funding = (rates[b.key], hours) if b.key in rates else None
                pending.extend(bar_events(b, span, funding, assets[b.key], b.venue in sampled))
            nxt += 1
        pending.sort(key=lambda te: te[0])
        cut = 0
        while cut < len(pending) and pending[cut][0] <= at:
            cut += 1
        model.update(e for _, e in pending[:cut])
        pending = pending[cut:]
        tracker.take(model.evaluate(at))

    for n, ts in enumerate(times):
        close = ts + span
        step(close)
        if settle:
            step(close + settle)
        if progress is not None:
            progress(n + 1, len(times))
    return Result(bar_s, times[0], times[-1], tracker.close(), tracker.coverage, tracker.seen)


class _Tracker:
    """Turns evaluations into intervals (instrument and asset scopes) and coverage."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, str, str, str], StateInterval] = {}
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
            key = (str(p.scope), p.venue, p.symbol, p.asset)
            if key in self.open:
                self.open[key].peak_score = max(self.open[key].peak_score, p.score)
            if p.scope is Scope.INSTRUMENT:
                cov = self.coverage.setdefault((p.venue, p.symbol), Coverage())
                cov.evaluations += 1
                if p.data_quality == 0:
                    cov.held += 1
                    cov.hold_reasons.update(r for r in p.reasons if r.startswith("stale feed"))
                if any(r.startswith(WARMING) for r in p.reasons):
                    cov.warming += 1
                    cov.warm_until_ms = p.updated_ms

    def _transition(self, tr: Transition) -> None:
        key = (str(tr.scope), tr.venue, tr.symbol, tr.asset)
        real = tr.ts_ms
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
