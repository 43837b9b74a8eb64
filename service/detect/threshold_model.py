"""The first pressure model: rolling windows, threshold score, hysteresis (pure).

Per event: one dict lookup per venue and symbol and an O(1) append to the instrument's
window. Per round, an instrument is evaluated only when it is *due*: new data arrived, its
window content moves (a sample leaves it), a feed is about to turn stale, or it is not
settled (its state or candidate is not calm: dwell and exit need watching every round).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..config import DetectorSettings
from ..events import Event, FundingRate, Liquidation, MarkPrice, OpenInterest
from .base import Evaluation
from .model import Pressure, State, Transition
from .score import Assessment, Features, assess
from .state import Quality, StateMachine, data_quality
from .windows import InstrumentWindow

_NEVER = 2**63 - 1
_EMPTY = Assessment(0.0, State.CALM, None, Features())


@dataclass(slots=True)
class _Tracked:
    window: InstrumentWindow
    machine: StateMachine
    last: Assessment = _EMPTY
    """The newest assessment made on fresh data (held while the data is stale)."""
    due_ms: int = 0
    settled: bool = False


class ThresholdModel:
    """Implements :class:`~.base.PressureModel` with :mod:`.windows`, :mod:`.score` and
    :mod:`.state`."""

    def __init__(self, settings: DetectorSettings) -> None:
        self._settings = settings
        self._span_ms = int(settings.window_s * 1000)
        self._stale_ms = int(settings.stale_after_s * 1000)
        self._by_venue: dict[str, dict[str, _Tracked]] = {}
        self._venue_liq_ms: dict[str, int] = {}

    def update(self, events: Iterable[Event]) -> None:
        by_venue = self._by_venue
        for ev in events:
            symbols = by_venue.get(ev.venue)
            if symbols is None:
                symbols = by_venue[ev.venue] = {}
            tracked = symbols.get(ev.symbol)
            if tracked is None:
                tracked = symbols[ev.symbol] = self._track(ev.venue, ev.symbol, ev.base)
            window = tracked.window
            if isinstance(ev, MarkPrice):
                window.add_mark(ev)
            elif isinstance(ev, OpenInterest):
                window.add_open_interest(ev)
            elif isinstance(ev, FundingRate):
                window.add_funding(ev)
            else:
                window.add_liquidation(ev)
                self._seen_liquidation(ev)

    def restore(self, pressures: Iterable[Pressure]) -> None:
        for p in pressures:
            symbols = self._by_venue.setdefault(p.venue, {})
            tracked = symbols.get(p.symbol) or self._track(p.venue, p.symbol, p.asset)
            symbols[p.symbol] = tracked
            machine = tracked.machine
            machine.state, machine.side, machine.since_ms = p.state, p.side, p.since_ms
            machine.changed = p.state is not State.CALM

    def evaluate(self, now_ms: int) -> Evaluation:
        out = Evaluation()
        for symbols in self._by_venue.values():
            for tracked in symbols.values():
                if tracked.window.dirty or not tracked.settled or now_ms >= tracked.due_ms:
                    self._evaluate_one(tracked, now_ms, out)
        return out

    def instruments(self) -> int:
        return sum(len(s) for s in self._by_venue.values())

    def _track(self, venue: str, symbol: str, asset: str) -> _Tracked:
        s = self._settings
        machine = StateMachine(s.enter_score, s.exit_score, int(s.min_dwell_s * 1000), 0)
        return _Tracked(InstrumentWindow(venue, symbol, asset, self._span_ms), machine)

    def _seen_liquidation(self, ev: Liquidation) -> None:
        seen = self._venue_liq_ms.get(ev.venue)
        if seen is None or ev.recv_ms > seen:
            self._venue_liq_ms[ev.venue] = ev.recv_ms

    def _evaluate_one(self, tracked: _Tracked, now_ms: int, out: Evaluation) -> None:
        w, machine = tracked.window, tracked.machine
        if machine.since_ms == 0:
            machine.since_ms = now_ms
        w.advance(now_ms)
        w.dirty = False
        quality = self._quality(w, now_ms)
        reasons: list[str] = []
        if not quality.hold:
            tracked.last = assess(w, self._settings)
            a = tracked.last
            before = machine.step(a.candidate, a.side, a.score, now_ms)
            if machine.state is not a.candidate:
                reasons.append(f"holding {machine.state.value} (hysteresis)")
            if before is not None:
                out.transitions.append(_transition(w, before[0], machine, a, now_ms))
        a = tracked.last
        features = a.features.as_dict()
        features.update(self._ages(w, now_ms))
        out.pressures.append(
            Pressure(
                venue=w.venue,
                symbol=w.symbol,
                asset=w.asset,
                score=a.score,
                state=machine.state,
                side=machine.side,
                updated_ms=now_ms,
                since_ms=machine.since_ms,
                forced_share=a.features.forced_share,
                data_quality=quality.value,
                features=features,
                reasons=[*a.reasons, *reasons, *quality.reasons],
            )
        )
        tracked.settled = machine.state is State.CALM and a.candidate is State.CALM
        tracked.due_ms = self._due_ms(w, now_ms)

    def _quality(self, w: InstrumentWindow, now_ms: int) -> Quality:
        return data_quality(
            now_ms,
            self._stale_ms,
            oi_ms=w.oi_seen_ms,
            mark_ms=w.mark_seen_ms,
            funding_ms=w.funding_seen_ms,
            venue_liq_ms=self._venue_liq_ms.get(w.venue),
            oi_samples=len(w.oi_base),
        )

    def _ages(self, w: InstrumentWindow, now_ms: int) -> dict[str, float | None]:
        return {
            "oi_age_s": _age_s(now_ms, w.oi_seen_ms),
            "mark_age_s": _age_s(now_ms, w.mark_seen_ms),
            "funding_age_s": _age_s(now_ms, w.funding_seen_ms),
            "venue_liq_age_s": _age_s(now_ms, self._venue_liq_ms.get(w.venue)),
        }

    def _due_ms(self, w: InstrumentWindow, now_ms: int) -> int:
        """The next time this instrument must be looked at even without new data."""
        due = w.next_change_ms() or _NEVER
        for seen in (w.oi_seen_ms, w.mark_seen_ms, w.funding_seen_ms):
            if seen is not None and seen + self._stale_ms >= now_ms:
                due = min(due, seen + self._stale_ms + 1)
        liq = self._venue_liq_ms.get(w.venue)
        if liq is not None and liq + self._stale_ms >= now_ms:
            due = min(due, liq + self._stale_ms + 1)
        return due


def _transition(
    w: InstrumentWindow, before: State, machine: StateMachine, a: Assessment, now_ms: int
) -> Transition:
    return Transition(
        venue=w.venue,
        symbol=w.symbol,
        asset=w.asset,
        from_state=before,
        to_state=machine.state,
        side=machine.side,
        score=a.score,
        ts_ms=now_ms,
        reasons=list(a.reasons),
    )


def _age_s(now_ms: int, seen_ms: int | None) -> float | None:
    return None if seen_ms is None else max(0.0, (now_ms - seen_ms) / 1000)
