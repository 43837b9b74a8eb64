"""Ground truth against detector output: how a detection is matched to a label. Pure.

Definitions (times in ms; ``grace`` is :attr:`Rules.grace_s`, ``warm-up`` :attr:`Rules.warmup_s`
from the start of the run):

* **Label**: a maximal stretch during which the scenario puts one asset in one non-calm
  regime (``building``, ``unwinding`` or ``cascade``) on one side. Consecutive phases with
  the same regime and side on an asset make one label. Its *onset* is its start.
* **Span**: a maximal stretch during which the detector holds one instrument (venue and
  symbol) in one non-calm state with one side, from the transition into it to the next
  transition (or the end of the run).
* **Trial**: a label and one instrument of its asset (every venue's contracts on that asset).
  The trial is **detected** when a span of that instrument has the label's state (the same
  class: a cascade label needs ``cascade``, an unwinding label ``unwinding``) and overlaps
  ``[onset, end + grace]``; the first such span gives the **detection time**
  ``max(span start, onset)`` and the **side** (right when it equals the label's).
* **Label detected**: when any of its trials is; its **delay** is the earliest detection
  time minus the onset (what a user watching the asset on every venue would see), and its
  side is that of the earliest detection.
* **Precision**: spans that begin inside some label of their asset (any non-calm regime,
  within ``[onset, end + grace]``), over all spans that begin after the warm-up.
* **False transitions out of calm**: transitions from ``calm`` to any other state, after the
  warm-up, at a time when the instrument's asset is outside every ``[onset, end + grace]``.
  The exposure is the matching calm time summed over instruments, in days
  (instrument-days): the rate is false transitions per instrument-day of calm.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..events import Side
from ..scores import State, Transition
from ..simulate.scenario import Regime, Scenario

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Rules:
    grace_s: float = 900.0
    """A detection may come (and a state may linger) this long after a label ends."""
    warmup_s: float = 1800.0
    """The start of each run, where baselines fill: no false transition or span counts."""


@dataclass(frozen=True, slots=True)
class InstrumentRef:
    venue: str
    symbol: str
    asset: str


@dataclass(frozen=True, slots=True)
class Label:
    asset: str
    regime: Regime
    side: Side
    start_ms: int
    end_ms: int
    after_cascade: bool = False
    """An unwinding that follows a cascade on the same asset without a calm gap (the
    aftermath), rather than a gradual unwind."""
    adl: bool = False
    """A cascade of auto-deleveraging (the venues say ADL is active), not of liquidations."""

    @property
    def group(self) -> str:
        """``cascade``, ``cascade by ADL``, ``unwinding``, ``unwinding after cascade`` or
        ``building``."""
        if self.adl:
            return f"{self.regime.value} by ADL"
        return f"{self.regime.value} after cascade" if self.after_cascade else self.regime.value


@dataclass(frozen=True, slots=True)
class Span:
    venue: str
    symbol: str
    asset: str
    state: State
    side: Side | None
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Trial:
    label: Label
    instrument: InstrumentRef
    detected_ms: int | None
    side: Side | None

    @property
    def side_ok(self) -> bool | None:
        return None if self.detected_ms is None else self.side is self.label.side


@dataclass(frozen=True, slots=True)
class LabelResult:
    label: Label
    trials: tuple[Trial, ...]

    @property
    def first(self) -> Trial | None:
        hits = [t for t in self.trials if t.detected_ms is not None]
        return min(hits, key=lambda t: t.detected_ms or 0) if hits else None

    @property
    def delay_s(self) -> float | None:
        first = self.first
        if first is None or first.detected_ms is None:
            return None
        return (first.detected_ms - self.label.start_ms) / 1000


@dataclass(frozen=True, slots=True)
class Outcome:
    """Everything one run is scored on."""

    labels: tuple[LabelResult, ...]
    spans_total: int
    spans_true: int
    false_transitions: int
    calm_instrument_days: float


def labels_of(scenario: Scenario, origin_ms: int) -> list[Label]:
    """The labels of a non-looping scenario starting at ``origin_ms``."""
    out: list[Label] = []
    open_: dict[str, Label] = {}
    t_ms = float(origin_ms)
    for phase in scenario.phases:
        start, end = round(t_ms), round(t_ms + phase.duration_s * 1000)
        lab = phase.label
        now = set(lab.assets) if lab.regime is not Regime.CALM and lab.side else set()
        ended: dict[str, Label] = {}
        for asset in list(open_):
            ending = open_[asset]
            if asset not in now or (ending.regime, ending.side) != (lab.regime, lab.side):
                out.append(open_.pop(asset))
                ended[asset] = ending
        for asset in sorted(now):
            assert lab.side is not None
            cur = open_.get(asset)
            if cur is None:
                prev = ended.get(asset)
                after = prev is not None and prev.regime is Regime.CASCADE
                adl = phase.drift(asset).adl
                cur = Label(asset, lab.regime, lab.side, start, end, after, adl)
            open_[asset] = Label(
                asset, cur.regime, cur.side, cur.start_ms, end, cur.after_cascade, cur.adl
            )
        t_ms += phase.duration_s * 1000
    out.extend(open_.values())
    return sorted(out, key=lambda lb: (lb.start_ms, lb.asset))


def spans_of(
    transitions: Iterable[Transition], instruments: Iterable[InstrumentRef], end_ms: int
) -> list[Span]:
    """Non-calm spans per instrument; every instrument starts calm."""
    by_inst: dict[tuple[str, str], list[Transition]] = {}
    for tr in transitions:
        by_inst.setdefault((tr.venue, tr.symbol), []).append(tr)
    assets = {(i.venue, i.symbol): i.asset for i in instruments}
    out: list[Span] = []
    for key, trs in by_inst.items():
        trs.sort(key=lambda tr: tr.ts_ms)
        asset = assets.get(key, trs[0].asset)
        for tr, nxt in zip(trs, [*trs[1:], None], strict=True):
            if tr.to_state is State.CALM:
                continue
            stop = end_ms if nxt is None else nxt.ts_ms
            out.append(Span(key[0], key[1], asset, tr.to_state, tr.side, tr.ts_ms, stop))
    return out


def _window(label: Label, rules: Rules) -> tuple[int, int]:
    return label.start_ms, label.end_ms + int(rules.grace_s * 1000)


def match(
    labels: Sequence[Label],
    spans: Sequence[Span],
    instruments: Sequence[InstrumentRef],
    rules: Rules,
) -> list[LabelResult]:
    """Each label's trials (see the module docstring)."""
    results: list[LabelResult] = []
    for label in labels:
        lo, hi = _window(label, rules)
        trials: list[Trial] = []
        for inst in (i for i in instruments if i.asset == label.asset):
            hits = [
                s
                for s in spans
                if (s.venue, s.symbol) == (inst.venue, inst.symbol)
                and s.state.value == label.regime.value
                and s.start_ms <= hi
                and s.end_ms > lo
            ]
            if hits:
                first = min(hits, key=lambda s: s.start_ms)
                trials.append(Trial(label, inst, max(first.start_ms, lo), first.side))
            else:
                trials.append(Trial(label, inst, None, None))
        results.append(LabelResult(label, tuple(trials)))
    return results


def score(
    labels: Sequence[Label],
    transitions: Sequence[Transition],
    instruments: Sequence[InstrumentRef],
    origin_ms: int,
    end_ms: int,
    rules: Rules,
) -> Outcome:
    """Score one run from ``origin_ms`` to ``end_ms``."""
    spans = spans_of(transitions, instruments, end_ms)
    warm_ms = origin_ms + int(rules.warmup_s * 1000)
    windows: dict[str, list[tuple[int, int]]] = {}
    for label in labels:
        windows.setdefault(label.asset, []).append(_window(label, rules))

    def inside(asset: str, ts: int) -> bool:
        return any(lo <= ts <= hi for lo, hi in windows.get(asset, ()))

    counted = [s for s in spans if s.start_ms >= warm_ms]
    true = sum(1 for s in counted if inside(s.asset, s.start_ms))
    assets = {(i.venue, i.symbol): i.asset for i in instruments}
    false = sum(
        1
        for tr in transitions
        if tr.from_state is State.CALM
        and tr.to_state is not State.CALM
        and tr.ts_ms >= warm_ms
        and not inside(assets.get((tr.venue, tr.symbol), tr.asset), tr.ts_ms)
    )
    calm_ms = sum(_calm_ms(windows.get(i.asset, []), warm_ms, end_ms) for i in instruments)
    return Outcome(
        labels=tuple(match(labels, spans, instruments, rules)),
        spans_total=len(counted),
        spans_true=true,
        false_transitions=false,
        calm_instrument_days=calm_ms / DAY_MS,
    )


def _calm_ms(windows: Sequence[tuple[int, int]], start: int, end: int) -> int:
    """Length of ``[start, end]`` outside the union of ``windows``."""
    covered, cursor = 0, start
    for lo, hi in sorted(windows):
        lo, hi = max(lo, cursor), min(hi, end)
        if hi > lo:
            covered += hi - lo
            cursor = hi
    return max(0, end - start - covered)
