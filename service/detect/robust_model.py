"""The pressure model: bucketed history, robust baselines, evidence scores, hysteresis.

Implements :class:`~.base.PressureModel` (see ``docs/detector.md`` for the model):

* :meth:`update`: per event, one dict lookup and a few writes into the instrument's running
  state (:mod:`.rings`); nothing is kept per event;
* :meth:`evaluate`: instruments with new data (or not calm, or whose feeds are about to turn
  stale) are scored (:mod:`.features`, :mod:`.scoring`) and stepped through their
  :class:`~.state.StateMachine`; a calm instrument with nothing but price ticks is looked at
  every :data:`CALM_EVERY` rounds at least (the first time after 5 to 9 rounds, by order of
  arrival, so that instruments listed together do not all come due in one round), one with
  a new liquidation at once. A round scores what fits in ``round_budget_ms`` (at the
  measured cost of one instrument, less the round's choice and its asset and market step)
  and ``max_evaluations_per_round``, the most urgent first (:func:`_within`); the others
  keep their last score and come first in the next round of their class. Assets and the
  market are then combined (:mod:`.aggregate`; the market's sums kept between rounds) and
  have state machines of their own;
* :meth:`seed`: the warm start's history fills an instrument's coarse ring and baselines.

A required feed (open interest, mark) that is stale holds the instrument's last state with
quality 0: a silent feed never reads as calm. So does a venue the caller names as held (the
store unreachable, the venue's input stopped): its instruments keep their states at quality
0, and an asset (the market) whose member (asset) under pressure is held for missing data
moves only to a more severe state, never toward calm, until that member's data is older
than ``stale_after_s``. Baselines are sampled only on fresh data.
"""

from __future__ import annotations

import heapq
import itertools
import math
import operator
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from ..config import DetectorSettings
from ..events import (
    AdlLevel,
    AdlRisk,
    Basis,
    BookDepth,
    BookTop,
    FundingRate,
    HandoffEvent,
    InsuranceFund,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Positioning,
    Volume,
)
from ..scores import ANY, Pressure, Scope, State, Transition
from .aggregate import Combined, MarketSums, Member, Part, combine
from .base import Evaluation
from .features import Baselines, burn_in, sample_baselines, snapshot
from .liquidity import InstrumentLiquidity, fragility, liquidity_features, liquidity_reasons
from .rings import InstrumentHistory, make_rings
from .scoring import EMPTY, Assessment, assess
from .state import SEVERITY, Quality, StateMachine, data_quality
from .stress import Funds, InstrumentStress, stress_features, stress_reasons

_NEVER = 2**63 - 1
_STRESS_ONLY: frozenset[type] = frozenset((AdlRisk, Positioning, Basis))
"""Figures of an instrument that do not make one: only the market data does."""
_LIQUIDITY: frozenset[type] = frozenset((BookTop, Volume, BookDepth))
"""Reported beside the score, never evidence (:mod:`.liquidity`)."""
CALM_EVERY = 5
MIN_PER_ROUND = 20
"""A round scores at least this many instruments, whatever its budget (progress)."""
INITIAL_COST_US = 250.0
"""The assumed cost of scoring one instrument until measured (µs; measured: 100 to 400)."""
COST_SAMPLE = 100
"""Rounds scoring this many instruments or more weigh fully in the measured cost."""
COST_SMOOTHING = 0.2
"""A settled (calm) instrument without new liquidations is scored every this many rounds."""
WARMING_BASELINES = 0.75
"""Quality factor while the reference window's baselines still answer their priors."""
TRANSITION_FEATURES = 8


@dataclass(slots=True)
class _Instrument:
    history: InstrumentHistory
    baselines: Baselines
    machine: StateMachine
    last: Assessment = EMPTY
    quality: Quality = field(default_factory=lambda: Quality(0.0, True, ("no data yet",)))
    dirty: bool = False
    liq_new: bool = False
    settled: bool = False
    next_ms: int = 0
    due_ms: int = 0
    evaluated_ms: int = 0
    phase: int = 0
    """Rounds added to its first calm wait (0 to :data:`CALM_EVERY` - 1, by order of arrival)."""
    pending_ms: int | None = None
    """Since when a non-calm candidate has been seen while calm."""
    held: str | None = None
    """Why the caller holds this instrument's venue (``None``: not held)."""
    warming: str | None = None
    """Why the instrument is still in its burn-in (``None``: its baselines are ready)."""
    stress: InstrumentStress | None = None
    """Its positioning and basis, once published (:mod:`.stress`)."""
    liquidity: InstrumentLiquidity | None = None
    """Its top of book, once its venue sends one (:mod:`.liquidity`)."""


RESERVED_FOR_LONGEST_WAITING = 0.25
"""The share of a round's limit given to the longest waiting, whatever their class: calm
instruments are still looked at while a cascade fills the rounds."""


@dataclass(slots=True)
class _Scope:
    machine: StateMachine
    last: Combined | None = None
    held: bool = False
    """A member under pressure had no fresh data at the last evaluation."""
    part: Part | None = None
    """An asset as a member of the market, as of its last evaluation (``None``: no score
    yet, or no open interest)."""


class RobustModel:
    """The default pressure model (``make_model`` builds it)."""

    def __init__(self, settings: DetectorSettings) -> None:
        self._s = settings
        self._windows = settings.windows_s()
        self._stale_ms = int(settings.stale_after_s * 1000)
        self._round_ms = int(settings.eval_interval_s * 1000)
        self._calm_ms = self._round_ms * CALM_EVERY
        self._tracked = 0
        self._persist_ms = int(settings.enter_persist_s * 1000)
        self._by_venue: dict[str, dict[str, _Instrument]] = {}
        self._venue_liq_ms: dict[str, int] = {}
        self._assets: dict[str, _Scope] = {}
        self._members: dict[str, list[_Instrument]] = {}
        self._market = self._scope()
        self._market_sums = MarketSums(settings)
        """The market's combination, kept between rounds (:class:`~.aggregate.MarketSums`)."""
        self._cost_us = INITIAL_COST_US
        self._choice_s = self._aggregate_s = 0.0
        """The last round's time outside its scoring (s): its choice of what to score, and
        the asset and market step of the last round that had one."""
        self._funds: dict[str, Funds] = {}
        """Per venue, its insurance pools (:mod:`.stress`)."""
        self._foreign: set[tuple[str, str]] = set()
        """Instruments of other detector shards' assets seen (:meth:`update_shard`)."""
        self.own_market = True
        """Whether :meth:`evaluate` combines the market from this model's own assets (one
        detector of everything). A detector shard's model does not: the market's owner calls
        :meth:`evaluate_market` with every shard's :meth:`members`."""

    # -- PressureModel -------------------------------------------------------------------

    def update(self, events: Iterable[HandoffEvent]) -> None:
        by_venue = self._by_venue
        for ev in events:
            symbols = by_venue.get(ev.venue)
            if symbols is None:
                symbols = by_venue[ev.venue] = {}
            kind = type(ev)
            if kind is InsuranceFund:  # a pool: the venue's, not an instrument's
                funds = self._funds.get(ev.venue)
                if funds is None:
                    funds = self._funds[ev.venue] = Funds()
                funds.add(ev)  # type: ignore[arg-type]
                continue
            inst = symbols.get(ev.symbol)
            if inst is None:
                if kind in _STRESS_ONLY or kind in _LIQUIDITY:
                    continue  # a figure of an instrument without data (not followed): nothing
                inst = symbols[ev.symbol] = self._track(ev.venue, ev.symbol, ev.base)
            h = inst.history
            if kind in _LIQUIDITY:  # beside the score, not evidence: not dirty
                if inst.liquidity is None:
                    inst.liquidity = InstrumentLiquidity()
                if kind is BookTop:
                    inst.liquidity.add(ev)  # type: ignore[arg-type]
                elif kind is Volume:
                    inst.liquidity.add_volume(ev)  # type: ignore[arg-type]
                else:
                    inst.liquidity.add_depth(ev)  # type: ignore[arg-type]
                continue
            if kind is MarkPrice:
                h.add_mark(ev)  # type: ignore[arg-type]
            elif kind is Liquidation:
                h.add_liquidation(ev)  # type: ignore[arg-type]
                inst.liq_new = True
                seen = self._venue_liq_ms.get(ev.venue)
                if seen is None or ev.recv_ms > seen:
                    self._venue_liq_ms[ev.venue] = ev.recv_ms
            elif kind is OpenInterest:
                h.add_open_interest(ev)  # type: ignore[arg-type]
            elif kind is FundingRate:
                h.add_funding(ev)  # type: ignore[arg-type]
            elif kind is AdlRisk:
                h.add_adl(ev)  # type: ignore[arg-type]
                if ev.level is AdlLevel.ACTIVE:  # type: ignore[union-attr]
                    inst.liq_new = True  # forced closes: scored at once, as a liquidation
            else:  # positioning, basis: reported beside the score, never evidence
                if inst.stress is None:
                    inst.stress = InstrumentStress()
                inst.stress.add(ev)  # type: ignore[arg-type]
                continue
            inst.dirty = True

    def restore(self, pressures: Iterable[Pressure]) -> None:
        for p in pressures:
            if p.scope is Scope.INSTRUMENT:
                symbols = self._by_venue.setdefault(p.venue, {})
                inst = symbols.get(p.symbol) or self._track(p.venue, p.symbol, p.asset)
                symbols[p.symbol] = inst
                machine = inst.machine
            elif p.scope is Scope.ASSET:
                machine = self._assets.setdefault(p.asset, self._scope()).machine
            else:
                machine = self._market.machine
            machine.state, machine.side, machine.since_ms = p.state, p.side, p.since_ms
            machine.changed = p.state is not State.CALM

    def evaluate(self, now_ms: int, held: Mapping[str, str] | None = None) -> Evaluation:
        steps = self.evaluate_steps(now_ms, held, 0.0)  # slice 0: never yields
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        raise AssertionError("an unsliced round yielded")

    def evaluate_steps(
        self, now_ms: int, held: Mapping[str, str] | None, slice_s: float
    ) -> Generator[None, None, Evaluation]:
        """:meth:`evaluate`, yielding after each ``slice_s`` of scoring (0: never), so that
        the runner can let its event loop run between two slices (a whole round is tens of
        milliseconds at 3,000 instruments). The round's choices (which instruments are due,
        by urgency) are made before the first yield; the budget counts the slices' time,
        the whole round's: the choice (a pass over every instrument) as it took, the asset
        and market step as it took in the last round that had one."""
        began = time.perf_counter()
        out = Evaluation()
        touched: set[str] = set()
        held = held or {}
        held_all = held.get(ANY)
        limit = self._limit()
        # by urgency: a venue turned held (applied at once, cheap, not counted in the limit);
        # not calm; a new liquidation; never scored; a feed turning stale; calm and due
        reasons = {venue: held_all or held.get(venue) for venue in self._by_venue}
        held_now: list[_Instrument] = []
        classes: tuple[list[_Instrument], ...] = ([], [], [], [], [])
        not_calm, liq_new, never, turning_stale, calm_due = classes
        wanted: list[_Instrument] = []  # all of them, in the order they are listed
        for venue, symbols in self._by_venue.items():
            reason = reasons[venue]
            for inst in symbols.values():
                # the common case first (a hot loop: every instrument, every round): settled,
                # nothing new but data, its venue's hold unchanged, its feeds not turning stale
                if (
                    inst.settled
                    and not inst.liq_new
                    and inst.held == reason
                    and now_ms < inst.due_ms
                ):
                    if inst.dirty and now_ms >= inst.next_ms:
                        calm_due.append(inst)
                        wanted.append(inst)
                    continue
                if inst.held != reason:
                    held_now.append(inst)
                elif not inst.settled and inst.evaluated_ms:
                    not_calm.append(inst)
                elif inst.liq_new:
                    liq_new.append(inst)
                elif not inst.evaluated_ms:
                    never.append(inst)
                else:  # settled, nothing new, held as before: its feeds are turning stale
                    turning_stale.append(inst)
                wanted.append(inst)
        deferred = len(wanted) - len(held_now) - limit
        if deferred > 0:
            wanted = _within(held_now, classes, limit)
        deferred = max(0, deferred)
        budget_s = self._s.round_budget_ms / 1000
        limited = budget_s > 0  # (0: no budget)
        started = time.perf_counter()  # the current slice's start
        # the slices' time before the current one: the choice first (at 10,000 instruments
        # with a backlog, 5 to 10 ms that the budget must leave room for)
        spent = chose = started - began
        budget_s -= self._aggregate_s  # and room for this round's asset and market step
        scored = 0
        for inst in wanted:
            reason = reasons[inst.history.venue]
            if inst.held == reason:  # (a venue turned held is applied whatever the budget)
                if (
                    limited
                    and scored >= MIN_PER_ROUND
                    and spent + time.perf_counter() - started > budget_s
                ):
                    deferred += 1  # the measured cost was low for this round's mix: stop
                    continue
                scored += 1
            self._evaluate_one(inst, now_ms, out, reason)
            touched.add(inst.history.asset)
            if slice_s and time.perf_counter() - started > slice_s:
                spent += time.perf_counter() - started
                yield
                started = time.perf_counter()
        self._measure(scored, spent + time.perf_counter() - started - chose)
        if touched:
            aggregate_s, step = 0.0, time.perf_counter()
            for _ in self._evaluate_assets(touched, now_ms, out):
                if slice_s and time.perf_counter() - started > slice_s:
                    aggregate_s += time.perf_counter() - step
                    yield
                    started = step = time.perf_counter()
            self._aggregate_s = aggregate_s + time.perf_counter() - step
        self._choice_s = chose
        if deferred:
            out = replace(out, deferred=deferred)
        return out

    # -- detector shards -----------------------------------------------------------------

    def update_shard(
        self, events: Iterable[HandoffEvent], owns: Callable[[str], bool]
    ) -> list[HandoffEvent]:
        """:meth:`update` with the market events of assets it ``owns`` only (returned); of
        the others' it keeps what a detector of everything shares between instruments, so
        that its own are scored as there: each instrument's order of arrival (its phase among
        the calm rounds) and each venue's newest liquidation (the liquidation feed's
        freshness). Stress events (the stress writer's entries, never mixed with market
        events) are applied, not returned: its own assets' figures, and every insurance pool
        (a pool covers assets of every shard)."""
        foreign, liq_ms = self._foreign, self._venue_liq_ms
        mine: list[HandoffEvent] = []
        stress: list[HandoffEvent] = []
        taken = 0  # mine[:taken] are in the model
        for ev in events:
            kind = type(ev)
            if kind in _STRESS_ONLY or kind is InsuranceFund:
                if kind is InsuranceFund or owns(ev.base):
                    stress.append(ev)
                continue
            if owns(ev.base):
                mine.append(ev)
                continue
            key = (ev.venue, ev.symbol)
            if key not in foreign:  # (rare) after the instruments that arrived before it
                self.update(mine[taken:])
                taken = len(mine)
                foreign.add(key)
                self._tracked += 1
            if type(ev) is Liquidation:
                seen = liq_ms.get(ev.venue)
                if seen is None or ev.recv_ms > seen:
                    liq_ms[ev.venue] = ev.recv_ms
        self.update(mine[taken:])
        if stress:
            self.update(stress)
        return mine

    def restore_shard(self, pressures: Iterable[Pressure], owns: Callable[[str], bool]) -> None:
        """:meth:`restore` of the assets it ``owns``; another shard's instrument counts in
        the order of arrival only (as in :meth:`update_shard`)."""
        for p in pressures:
            if owns(p.asset):
                self.restore((p,))
            elif p.scope is Scope.INSTRUMENT and (p.venue, p.symbol) not in self._foreign:
                self._foreign.add((p.venue, p.symbol))
                self._tracked += 1

    def members(self) -> dict[str, Member]:
        """Each asset of this model as a member of the market, as of its last evaluation."""
        return {asset: _member(asset, scope) for asset, scope in self._assets.items()}

    def evaluate_market(self, now_ms: int, members: Iterable[Member]) -> Evaluation:
        """The market combined from ``members`` (every shard's assets), as :meth:`evaluate`
        combines it from its own assets in a detector of everything."""
        out = Evaluation()
        members = list(members)
        held = any(m.held for m in members)
        self._evaluate_market(((m.asset, m.part) for m in members), held, now_ms, out)
        return out

    # -- warm start ----------------------------------------------------------------------

    def seed(
        self,
        venue: str,
        symbol: str,
        asset: str,
        oi: list[tuple[int, float, float]],
        funding: list[tuple[int, float]],
    ) -> int:
        """Fill an instrument's history and baselines from ``oi`` ``(ts_ms, oi_base,
        oi_usd)`` and ``funding`` ``(ts_ms, rate_1h)`` points; return the baseline samples
        added. The price is taken as ``oi_usd / oi_base`` where both are known."""
        symbols = self._by_venue.setdefault(venue, {})
        inst = symbols.get(symbol) or self._track(venue, symbol, asset)
        symbols[symbol] = inst
        oi = sorted(p for p in oi if p[1] > 0)
        added = 0
        if oi:
            points = [(t, b, u, u / b if u > 0 else math.nan) for t, b, u in oi]
            inst.history.seed_levels(points)
            added += _seed_windows(inst.baselines, oi, self._s)
        rates = [r for _, r in sorted(funding)]
        added += inst.baselines.funding.prepend(rates)
        return added

    def instruments(self) -> list[tuple[str, str, str, float]]:
        """``(venue, symbol, asset, oi_usd)`` of every instrument seen, largest OI first."""
        rows = [
            (venue, symbol, inst.history.asset, inst.history.state[1])
            for venue, symbols in self._by_venue.items()
            for symbol, inst in symbols.items()
        ]
        return sorted(rows, key=lambda r: -(r[3] if r[3] == r[3] else 0.0))

    def _limit(self) -> int:
        """How many instruments this round may score: ``max_evaluations_per_round``, and
        what fits in ``round_budget_ms`` at the measured cost of one, less the last round's
        time outside its scoring (at least :data:`MIN_PER_ROUND`)."""
        limit = self._s.max_evaluations_per_round or _NEVER
        budget_us = self._s.round_budget_ms * 1000
        if budget_us > 0:
            budget_us -= (self._choice_s + self._aggregate_s) * 1e6  # as the last round's
            limit = min(limit, max(MIN_PER_ROUND, int(budget_us / self._cost_us)))
        return limit

    def _measure(self, scored: int, seconds: float) -> None:
        """Update the cost of scoring one instrument (an average over recent rounds, each
        weighted by how many it scored: a round of a few says little)."""
        if scored > 0:
            weight = min(1.0, scored / COST_SAMPLE)
            cost = seconds * 1e6 / scored
            self._cost_us += weight * COST_SMOOTHING * (cost - self._cost_us)

    @property
    def cost_us(self) -> float:
        """The measured CPU cost of scoring one instrument (µs)."""
        return self._cost_us

    def oldest_score_ms(self, now_ms: int) -> int:
        """How old the oldest instrument score is at ``now_ms`` (0 with none): with a
        per-round limit, how long a calm instrument waits for its regular look."""
        ages = [
            now_ms - inst.evaluated_ms
            for symbols in self._by_venue.values()
            for inst in symbols.values()
            if inst.evaluated_ms
        ]
        return max(ages, default=0)

    def baseline_samples(self, venue: str, symbol: str) -> dict[str, int]:
        """Samples per baseline of one instrument (``oi_<window>``, ``funding``...)."""
        inst = self._by_venue.get(venue, {}).get(symbol)
        if inst is None:
            return {}
        b = inst.baselines
        out = {f"oi_{w.span_s:g}s": len(w.oi) for w in b.windows}
        out |= {f"ret_{w.span_s:g}s": len(w.ret) for w in b.windows}
        out |= {"funding": len(b.funding), "premium": len(b.premium)}
        return out

    # -- instruments ---------------------------------------------------------------------

    def _track(self, venue: str, symbol: str, asset: str) -> _Instrument:
        fine, coarse = make_rings(self._windows)
        inst = _Instrument(
            InstrumentHistory(venue, symbol, asset, fine, coarse),
            Baselines.for_settings(self._s),
            self._machine(),
            phase=self._tracked % CALM_EVERY,
        )
        self._tracked += 1
        self._members.setdefault(asset, []).append(inst)
        return inst

    def _machine(self) -> StateMachine:
        s = self._s
        return StateMachine(s.enter_score, s.exit_score, int(s.min_dwell_s * 1000), 0)

    def _scope(self) -> _Scope:
        return _Scope(self._machine())

    def _evaluate_one(
        self, inst: _Instrument, now_ms: int, out: Evaluation, held: str | None = None
    ) -> None:
        h, machine = inst.history, inst.machine
        if machine.since_ms == 0:
            machine.since_ms = now_ms
        inst.dirty = inst.liq_new = False
        inst.held = held
        inst.evaluated_ms = now_ms
        quality = self._quality(inst, now_ms) if held is None else Quality(0.0, True, (held,))
        notes: list[str] = []
        pool = self._funds[h.venue].of(h.symbol, h.asset) if h.venue in self._funds else None
        if not quality.hold:
            snap = snapshot(h, inst.baselines, now_ms, self._s)
            snap.liq_feed = self._venue_liq_ms.get(h.venue) is not None
            a = inst.last = assess(snap, inst.baselines, self._s, machine.state)
            sample_baselines(inst.baselines, snap, now_ms)
            inst.warming = burn_in(inst.baselines, snap, now_ms, self._s)
            side = a.side if a.side_strong or machine.side is None else machine.side
            if inst.warming is not None:
                # no state before the baselines hold enough history: priors are guesses
                candidate = State.CALM
                notes.append(inst.warming)
                quality = Quality(quality.value * WARMING_BASELINES, False, quality.reasons)
            else:
                candidate = self._persisted(inst, a, now_ms, notes)
            before = machine.step(candidate, side, a.score, now_ms)
            if machine.state is not a.candidate:
                notes.append(f"holding {machine.state.value} (hysteresis)")
            stressed: list[str] = []
            if machine.state is not State.CALM or a.candidate is not State.CALM:
                fragile = fragility(inst.liquidity, a.features, now_ms)
                stressed = [
                    *([fragile] if fragile is not None and machine.state is not State.CALM else []),
                    *stress_reasons(inst.stress, pool, now_ms),
                    *liquidity_reasons(inst.liquidity, now_ms),
                ]
                notes += stressed
            if before is not None:
                out.transitions.append(
                    _transition(
                        h.venue,
                        h.symbol,
                        h.asset,
                        Scope.INSTRUMENT,
                        before[0],
                        machine,
                        a.score,
                        [*a.reasons, *stressed],
                        a.features,
                        a.forced_share,
                        quality.value,
                        now_ms,
                    )
                )
        inst.quality = quality
        a = inst.last
        features = dict(a.features)
        features.update(self._ages(inst, now_ms))
        if inst.stress is not None or pool is not None:
            features.update(stress_features(inst.stress, pool, now_ms))
        if inst.liquidity is not None:
            features.update(liquidity_features(inst.liquidity, now_ms))
            # a warning beside the state, on calm too: it never makes one (docs/detector.md)
            warning = fragility(inst.liquidity, a.features, now_ms)
            features["fragile"] = 0.0 if warning is None else 1.0
        out.pressures.append(
            Pressure(
                venue=h.venue,
                symbol=h.symbol,
                asset=h.asset,
                score=a.score,
                state=machine.state,
                side=machine.side,
                updated_ms=now_ms,
                since_ms=machine.since_ms,
                forced_share=a.forced_share,
                data_quality=round(quality.value, 3),
                features=features,
                reasons=[*a.reasons, *notes, *quality.reasons],
            )
        )
        inst.settled = machine.state is State.CALM and a.candidate is State.CALM
        # after its first evaluation, up to CALM_EVERY - 1 rounds more: instruments listed
        # together come due in different rounds, not all in one
        first = inst.next_ms == 0
        inst.next_ms = now_ms + self._calm_ms + (self._round_ms * inst.phase if first else 0)
        inst.due_ms = self._due_ms(inst, now_ms)

    def _persisted(self, inst: _Instrument, a: Assessment, now_ms: int, notes: list[str]) -> State:
        """The candidate the state machine sees. Leaving calm on open-interest evidence alone
        needs the candidate to last ``enter_persist_s``: a one-off step of a polled OI (or
        a burst of noise) in a short window lasts less. A liquidation burst, or a sampled
        feed saturated while open interest falls, or observed ADL, enters at once."""
        if inst.machine.state is not State.CALM or a.candidate is State.CALM:
            inst.pending_ms = None
            return a.candidate
        if inst.pending_ms is None:
            inst.pending_ms = now_ms
        if a.burst >= 1.0 or a.saturated or a.adl:
            return a.candidate
        waited = now_ms - inst.pending_ms
        if waited >= self._persist_ms:
            return a.candidate
        notes.append(f"{a.candidate.value} for {waited / 1000:.0f}s: waiting to persist")
        return State.CALM

    def _stale_after_ms(self, inst: _Instrument) -> int:
        """``stale_after_s``, or twice the open interest's own spacing when that is longer:
        hourly bars are not stale 3 minutes after their close."""
        cadence = inst.history.cadence_ms()
        return self._stale_ms if cadence is None else max(self._stale_ms, 2 * cadence)

    def _quality(self, inst: _Instrument, now_ms: int) -> Quality:
        h = inst.history
        return data_quality(
            now_ms,
            self._stale_after_ms(inst),
            oi_ms=h.oi_seen_ms,
            mark_ms=h.mark_seen_ms,
            funding_ms=h.funding_seen_ms,
            venue_liq_ms=self._venue_liq_ms.get(h.venue),
            oi_samples=h.oi_updates + (2 if h.seeded_from_ms is not None else 0),
        )

    def _ages(self, inst: _Instrument, now_ms: int) -> dict[str, float | None]:
        h = inst.history
        return {
            "oi_age_s": _age_s(now_ms, h.oi_seen_ms),
            "mark_age_s": _age_s(now_ms, h.mark_seen_ms),
            "funding_age_s": _age_s(now_ms, h.funding_seen_ms),
            "venue_liq_age_s": _age_s(now_ms, self._venue_liq_ms.get(h.venue)),
        }

    def _due_ms(self, inst: _Instrument, now_ms: int) -> int:
        """The next time this instrument must be looked at even without new data."""
        h = inst.history
        stale_ms = self._stale_after_ms(inst)
        due = _NEVER
        for seen in (h.oi_seen_ms, h.mark_seen_ms, h.funding_seen_ms,
                     self._venue_liq_ms.get(h.venue)):  # fmt: skip
            if seen is not None and seen + stale_ms >= now_ms:
                due = min(due, seen + stale_ms + 1)
        return due

    # -- assets and market ---------------------------------------------------------------

    def _evaluate_assets(self, touched: set[str], now_ms: int, out: Evaluation) -> Iterator[None]:
        """The ``touched`` assets, then the market; yields after each asset (where a sliced
        round may pause: a round that touched hundreds of assets spends milliseconds here)."""
        members = self._members
        for asset in touched:
            scope = self._assets.setdefault(asset, self._scope())
            parts = [self._part(i) for i in members[asset]]
            combined = combine([p for p in parts if p.oi_usd > 0], self._s)
            features = _asset_liquidations(members[asset], self._s.window_s)
            scope.held = any(self._missing(i, now_ms) for i in members[asset])
            self._step_scope(scope, combined, Scope.ASSET, asset, now_ms, out, features)
            scope.part = _market_part(asset, scope, members[asset])
            yield
        # the assets not evaluated this round weigh in as of their last evaluation (their
        # open interest then): a few rounds old at most unless the round budget defers them,
        # and the market is combined from every asset each round without a pass over every
        # instrument (at 10,000 instruments that pass took longer than the round's budget);
        # the sums over the assets are kept, and only the parts that changed recomputed
        if self.own_market:
            scopes = self._assets
            held = any(_member_held(scope) for scope in scopes.values())
            market = ((asset, scope.part) for asset, scope in scopes.items())
            self._evaluate_market(market, held, now_ms, out)

    def _evaluate_market(
        self, members: Iterable[tuple[str, Part | None]], held: bool, now_ms: int, out: Evaluation
    ) -> None:
        """The market from ``members`` ``(asset, part)``; ``held``: a member holds it."""
        market = self._market_sums.combine(members)
        self._market.held = held
        self._step_scope(self._market, market, Scope.MARKET, ANY, now_ms, out, {})

    def _missing(self, inst: _Instrument, now_ms: int) -> bool:
        """True for a member under pressure whose data is missing, not yet stale: its asset
        must not read its absence as calm."""
        if not inst.quality.hold or inst.machine.state is State.CALM:
            return False
        h = inst.history
        newest = max(h.oi_seen_ms or 0, h.mark_seen_ms or 0)
        return now_ms - newest <= self._stale_after_ms(inst)

    def _part(self, inst: _Instrument) -> Part:
        h, a = inst.history, inst.last
        factor = self._s.sampled_weight if h.liq_sampled else 1.0
        name = f"{h.venue} {h.symbol}"
        quality = 0.0 if inst.warming is not None else inst.quality.value  # no state yet
        return Part(name, _oi(inst), quality, factor, a.x_unwind, a.x_build,
                    a.candidate, inst.machine.state, inst.machine.side, a.score,
                    a.reasons[0] if a.reasons else None)  # fmt: skip

    def _step_scope(
        self,
        scope: _Scope,
        c: Combined | None,
        kind: Scope,
        asset: str,
        now_ms: int,
        out: Evaluation,
        extra: dict[str, float | None],
    ) -> None:
        machine = scope.machine
        if machine.since_ms == 0:
            machine.since_ms = now_ms
        notes: list[str] = []
        if c is not None and scope.held and not _escalation(machine, c, self._s.enter_score):
            quality = c.quality  # the held members weigh nothing in it
            c = scope.last or c
            notes.append("a member under pressure has no fresh data: holding the last state")
        elif c is None:
            c = scope.last
            quality = 0.0
            notes.append("no fresh data: holding the last state")
        else:
            scope.last = c
            quality = c.quality
            before = machine.step(c.candidate, c.side, c.score, now_ms)
            if before is not None:
                out.aggregate_transitions.append(
                    _transition(
                        ANY,
                        ANY,
                        asset,
                        kind,
                        before[0],
                        machine,
                        c.score,
                        c.reasons,
                        c.features | extra,
                        None,
                        quality,
                        now_ms,
                    )
                )
        if c is None:
            return
        out.aggregates.append(
            Pressure(
                venue=ANY,
                symbol=ANY,
                asset=asset,
                score=c.score,
                state=machine.state,
                side=machine.side,
                updated_ms=now_ms,
                since_ms=machine.since_ms,
                forced_share=None,
                data_quality=round(quality, 3),
                features=c.features | extra,
                reasons=[*c.reasons, *notes],
                scope=kind,
            )
        )


def _within(
    held: list[_Instrument], classes: tuple[list[_Instrument], ...], limit: int
) -> list[_Instrument]:
    """What a round over its limit scores: ``held`` (a venue turned held: cheap, outside
    the limit), then ``classes`` in order, the longest waiting first within a class, except
    :data:`RESERVED_FOR_LONGEST_WAITING` of the limit, which goes to the longest waiting of
    what is left, whatever its class."""
    reserved = int(limit * RESERVED_FOR_LONGEST_WAITING)
    room = limit - reserved
    urgent: list[_Instrument] = []
    left: list[_Instrument] = []
    for due in classes:
        if room >= len(due):
            urgent += due
            room -= len(due)
        elif room > 0:
            waited = [i.evaluated_ms for i in due]
            first = heapq.nsmallest(room, range(len(due)), key=waited.__getitem__)
            taken = set(first)
            urgent += [due[i] for i in first]
            left += [d for i, d in enumerate(due) if i not in taken]
            room = 0
        else:
            left += due
    longest = heapq.nsmallest(reserved, left, key=_WAITING)
    # the longest waiting interleaved with the urgent, one after every few: a round cut
    # short by its time budget still gives them their share
    chosen = list(held)
    step = max(1, round(1 / RESERVED_FOR_LONGEST_WAITING) - 1) if longest else len(urgent) or 1
    for n, k in enumerate(range(0, max(len(urgent), len(longest) * step), step)):
        chosen += urgent[k : k + step]
        if n < len(longest):
            chosen.append(longest[n])
    return chosen


_WAITING = operator.attrgetter("evaluated_ms")


def _market_part(asset: str, scope: _Scope, members: list[_Instrument]) -> Part | None:
    """The asset as a member of the market (``None``: no score yet, or no open interest)."""
    c = scope.last
    if c is None:
        return None
    oi = sum(_oi(i) for i in members)
    if oi <= 0:
        return None
    return Part(asset, oi, c.quality, 1.0, c.x_unwind, c.x_build, c.candidate,
                scope.machine.state, scope.machine.side, c.score,
                c.reasons[0] if c.reasons else None)  # fmt: skip


def _member(asset: str, scope: _Scope) -> Member:
    return Member(asset, scope.part, _member_held(scope))


def _member_held(scope: _Scope) -> bool:
    """Whether an asset holds the market: under pressure, a member's data missing."""
    return scope.held and scope.machine.state is not State.CALM


def _escalation(machine: StateMachine, c: Combined, enter: float) -> bool:
    """Whether ``c`` would move the scope to a more severe state (allowed while held)."""
    return c.score >= enter and SEVERITY[c.candidate] > SEVERITY[machine.state]


def _oi(inst: _Instrument) -> float:
    v = inst.history.state[1]
    return v if v > 0 else 0.0


def _asset_liquidations(insts: list[_Instrument], window_s: float) -> dict[str, float | None]:
    """Liquidations of an asset over the reference window: complete feeds, sampled feeds (a
    lower bound) and the total estimated from the complete feeds' share of open interest."""
    complete = sampled = oi_complete = oi_total = 0.0
    for inst in insts:
        f = inst.last.features
        usd = (f.get("liq_long_usd") or 0.0) + (f.get("liq_short_usd") or 0.0)
        oi = _oi(inst) if inst.quality.value > 0 else 0.0
        oi_total += oi
        if inst.history.liq_sampled:
            sampled += usd
        elif inst.history.liq_sampled is not None:
            complete += usd
            oi_complete += oi
    share = oi_complete / oi_total if oi_total > 0 else 0.0
    return {
        "oi_usd": round(oi_total, 0),
        "liq_usd_complete": round(complete, 0),
        "liq_usd_sampled": round(sampled, 0),
        "liq_complete_oi_share": round(share, 4),
        "liq_usd_est": round(complete / share, 0) if share > 0 else None,
    }


def _seed_windows(b: Baselines, oi: list[tuple[int, float, float]], s: DetectorSettings) -> int:
    """Baseline samples of each window's OI change and price return from history points."""
    ts = [p[0] for p in oi]
    if len(ts) < 3:
        return 0
    step_ms = sorted(b - a for a, b in itertools.pairwise(ts))[len(ts) // 2]
    base = [math.log(p[1]) for p in oi]
    price = [math.log(p[2] / p[1]) if p[2] > 0 else math.nan for p in oi]
    added = 0
    for wb in b.windows:
        span_ms = int(wb.span_s * 1000)
        if span_ms < step_ms:
            continue  # history too coarse for this window
        oi_samples: list[float] = []
        ret_samples: list[float] = []
        lookback_ms = s.lookback_s(wb.span_s) * 1000
        # both ends of the window walk back through ``ts``: one pass each, no bisect
        end, start = _Walk(ts), _Walk(ts)
        t = ts[-1]
        while t - span_ms >= ts[0] and ts[-1] - t <= lookback_ms:
            i, j = end.index(t), start.index(t - span_ms)
            oi_samples.append(100 * (_at(ts, base, i, t) - _at(ts, base, j, t - span_ms)))
            ret_samples.append(100 * (_at(ts, price, i, t) - _at(ts, price, j, t - span_ms)))
            t -= wb.interval_ms
        oi_samples.reverse()
        ret_samples.reverse()
        added += wb.oi.prepend(oi_samples)
        added += wb.ret.prepend(ret_samples)
    return added


class _Walk:
    """``bisect_right(ts, t)`` for times ``t`` that only go back: a pointer moved down."""

    __slots__ = ("_i", "_ts")

    def __init__(self, ts: list[int]) -> None:
        self._ts = ts
        self._i = len(ts)

    def index(self, t: int) -> int:
        ts, i = self._ts, self._i
        while i > 0 and ts[i - 1] > t:
            i -= 1
        self._i = i
        return i


def _at(ts: list[int], values: list[float], i: int, t: int) -> float:
    """``values`` interpolated at ``t``, where ``i`` is ``bisect_right(ts, t)``."""
    if i == 0:
        return values[0]
    if i == len(ts):
        return values[-1]
    t0, t1 = ts[i - 1], ts[i]
    return values[i - 1] + (values[i] - values[i - 1]) * (t - t0) / (t1 - t0)


def _transition(
    venue: str,
    symbol: str,
    asset: str,
    scope: Scope,
    before: State,
    machine: StateMachine,
    score: float,
    reasons: list[str],
    features: dict[str, float | None],
    forced_share: float | None,
    quality: float,
    now_ms: int,
) -> Transition:
    top = {k: v for k, v in features.items() if k.startswith(("evidence_", "confirm_"))}
    for key in ("oi_change_base_pct", "mark_return_pct", "liq_bp_of_oi", "funding_1h"):
        if key in features:
            top[key] = features[key]
    return Transition(
        venue=venue,
        symbol=symbol,
        asset=asset,
        from_state=before,
        to_state=machine.state,
        side=machine.side,
        score=score,
        ts_ms=now_ms,
        reasons=list(reasons),
        scope=scope,
        forced_share=forced_share,
        data_quality=round(quality, 3),
        features=dict(list(top.items())[: TRANSITION_FEATURES + 4]) if top else dict(features),
    )


def _age_s(now_ms: int, seen_ms: int | None) -> float | None:
    return None if seen_ms is None else max(0.0, (now_ms - seen_ms) / 1000)
