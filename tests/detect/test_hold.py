"""Missing data is not calm: a venue the runner holds (the store unreachable, its input
stopped) keeps its instruments' states at quality 0, and an asset or the market does not move
toward calm while a member under pressure is held."""

from __future__ import annotations

from tape import Market, Tape, ms
from test_robust_model import OI0, P0, long_cascade

from service.config import DetectorSettings
from service.detect.inputs import InputWatch
from service.detect.robust_model import RobustModel
from service.events import Side
from service.scores import ANY, Pressure, Scope, State

SETTINGS = DetectorSettings(stale_after_s=600, burn_in_samples=0)  # no staleness, no burn-in
REASON = "no data: the store is unreachable; holding the last state"


def _cascading_btc() -> tuple[RobustModel, Market, Market]:
    """BTC on two venues, ``sim`` (60 % of the open interest) in a long cascade at 470 s."""
    model = RobustModel(SETTINGS)
    hot = long_cascade()
    calm = Market(price=lambda t: P0, oi_base=lambda t: OI0 * 2 / 3, tape=Tape(venue="other"))
    for t in range(0, 470):
        model.update([*hot.events(t), *calm.events(t)])
        model.evaluate(ms(t))
    return model, hot, calm


def _go_on(
    model: RobustModel,
    markets: list[Market],
    held: dict[str, str] | None,
    from_s: int = 470,
    until_s: int = 900,
) -> tuple[dict[tuple[Scope, str, str], list[Pressure]], list[tuple[str, State]]]:
    """Evaluate over ``[from_s, until_s)``, feeding only ``markets``; every pressure and
    every move."""
    seen: dict[tuple[Scope, str, str], list[Pressure]] = {}
    moves: list[tuple[str, State]] = []
    for t in range(from_s, until_s):
        for m in markets:
            model.update(m.events(t))
        ev = model.evaluate(ms(t), held)
        for p in [*ev.pressures, *ev.aggregates]:
            seen.setdefault((p.scope, p.venue, p.asset), []).append(p)
        moves += [(t.venue, t.to_state) for t in ev.transitions]
        moves += [(t.scope.value, t.to_state) for t in ev.aggregate_transitions]
    return seen, moves


def test_a_held_venue_keeps_its_states_at_quality_zero() -> None:
    model, _, _ = _cascading_btc()
    seen, moves = _go_on(model, [], {ANY: REASON})
    assert moves == []
    instrument = seen[(Scope.INSTRUMENT, "sim", "BTC")]
    held = {(p.state, p.side, p.data_quality) for p in instrument}
    assert held == {(State.CASCADE, Side.LONG, 0.0)}
    assert all(REASON in p.reasons for p in instrument)
    for scope in ((Scope.ASSET, ANY, "BTC"), (Scope.MARKET, ANY, ANY)):
        assert {p.state for p in seen[scope]} == {State.CASCADE}


def test_without_the_hold_the_same_silence_reads_as_calm() -> None:
    model, _, _ = _cascading_btc()
    _, moves = _go_on(model, [], None)
    assert ("sim", State.CALM) in moves  # what the hold prevents


def test_an_asset_does_not_go_calm_while_its_member_under_pressure_is_held() -> None:
    model, _, calm = _cascading_btc()
    # the other venue keeps sending calm data; the cascading one is silent, and held
    seen, moves = _go_on(model, [calm], {"sim": "no data from sim for 12 s"})
    assert moves == []
    asset = seen[(Scope.ASSET, ANY, "BTC")]
    assert {p.state for p in asset} == {State.CASCADE}
    assert any("a member under pressure has no fresh data" in r for r in asset[-1].reasons)
    assert asset[-1].data_quality < 0.5  # the held member weighs nothing
    assert {p.state for p in seen[(Scope.MARKET, ANY, ANY)]} == {State.CASCADE}
    assert seen[(Scope.INSTRUMENT, "other", "BTC")][-1].data_quality > 0


def test_a_hold_ends_when_the_data_comes_back() -> None:
    model, _, calm = _cascading_btc()
    seen, _ = _go_on(model, [calm], {"sim": "no data from sim for 12 s"}, until_s=500)
    assert seen[(Scope.INSTRUMENT, "sim", "BTC")][-1].data_quality == 0.0
    # the venue's data arrives again (the calm after the cascade): scoring resumes
    flat = Market(price=lambda t: P0 * 0.94, oi_base=lambda t: OI0 * 0.96)
    seen, moves = _go_on(model, [flat, calm], None, from_s=500, until_s=1400)
    assert seen[(Scope.INSTRUMENT, "sim", "BTC")][-1].data_quality > 0
    assert ("sim", State.CALM) in moves


def test_the_input_watch_names_what_is_missing() -> None:
    watch = InputWatch(["sim", "polled"], {"polled": 120.0})
    t = Tape(venue="sim", t0_ms=1_000_000)
    watch.screen([t.mark(0, P0)], "sim", 1_000_000)
    watch.screen([Tape(venue="polled", t0_ms=1_000_000).mark(0, P0)], "polled", 1_000_000)
    assert watch.holds(1_002_000) == {}
    assert watch.read_failed()
    assert watch.holds(1_003_000) == {ANY: REASON}
    # the store answers again at 1_004 s: held until the events up to then have been read
    assert watch.read_done(1_004_000)
    watch.screen([t.mark(1.5, P0)], "sim", 1_004_000)  # the writer's backlog, not all of it
    assert "catching up" in watch.holds(1_004_100)["sim"]
    watch.screen([t.mark(3.9, P0)], "sim", 1_004_200)
    assert watch.holds(1_004_300) == {}
    # silent for more than 10 s; the polled venue has 120 s
    assert list(watch.holds(1_014_000)) == ["sim"]


def test_the_input_watch_drops_impossible_events_and_counts_them() -> None:
    watch = InputWatch(["sim"])
    t = Tape()
    good, bad = t.mark(0, P0), t.mark(1, -1.0)
    assert watch.screen([good, bad], "sim", ms(2)) == [good]
    assert watch.events_dropped == 1
