"""Event builders and a scripted market for the detector tests (no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from service.config import DetectorSettings
from service.detect.base import PressureModel
from service.detect.factory import make_model
from service.events import Event, FundingRate, Liquidation, MarkPrice, OpenInterest, Side
from service.scores import Pressure, Transition

T0_MS = 1_760_000_000_000
SETTINGS = DetectorSettings(burn_in_samples=0)
"""The defaults without the burn-in: these tapes test what follows it (a few minutes of
history, not the half hour the reference window's baselines need)."""


def ms(t_s: float) -> int:
    return T0_MS + round(t_s * 1000)


@dataclass(frozen=True)
class Tape:
    """Builds events of one instrument at ``t_s`` seconds after :data:`T0_MS`."""

    venue: str = "sim"
    symbol: str = "BTCUSDT"
    base: str = "BTC"
    t0_ms: int = T0_MS

    def _ms(self, t_s: float) -> int:
        return self.t0_ms + round(t_s * 1000)

    def oi(self, t_s: float, base: float, price: float) -> OpenInterest:
        return OpenInterest(
            venue=self.venue,
            symbol=self.symbol,
            base=self.base,
            ts_ms=self._ms(t_s),
            recv_ms=self._ms(t_s),
            oi_contracts=base,
            oi_base=base,
            oi_usd=base * price,
        )

    def mark(self, t_s: float, price: float) -> MarkPrice:
        return MarkPrice(
            venue=self.venue,
            symbol=self.symbol,
            base=self.base,
            ts_ms=self._ms(t_s),
            recv_ms=self._ms(t_s),
            mark_price=price,
            index_price=price,
        )

    def funding(self, t_s: float, rate_1h: float) -> FundingRate:
        return FundingRate(
            venue=self.venue,
            symbol=self.symbol,
            base=self.base,
            ts_ms=self._ms(t_s),
            recv_ms=self._ms(t_s),
            funding_rate=rate_1h * 8,
            interval_h=8.0,
            funding_rate_1h=rate_1h,
            next_funding_ms=None,
        )

    def liq(
        self, t_s: float, side: Side, usd: float, price: float = 50_000.0, sampled: bool = False
    ) -> Liquidation:
        return Liquidation(
            venue=self.venue,
            symbol=self.symbol,
            base=self.base,
            ts_ms=self._ms(t_s),
            recv_ms=self._ms(t_s),
            side=side,
            price=price,
            quantity=usd / price,
            quantity_base=usd / price,
            notional_usd=usd,
            sampled=sampled,
        )


def ramp(t_s: float, t0: float, t1: float, v0: float, v1: float) -> float:
    """``v0`` before ``t0``, ``v1`` after ``t1``, linear in between."""
    if t_s <= t0:
        return v0
    if t_s >= t1:
        return v1
    return v0 + (v1 - v0) * (t_s - t0) / (t1 - t0)


@dataclass
class Market:
    """A scripted instrument: each second a mark, every ``oi_every_s`` an OI poll and a
    funding update, and whatever liquidations ``liqs`` returns for that second."""

    price: Callable[[float], float]
    oi_base: Callable[[float], float]
    liqs: Callable[[float], list[tuple[Side, float]]] = lambda t: []
    tape: Tape = field(default_factory=Tape)
    oi_every_s: int = 5
    funding_1h: Callable[[float], float] = lambda t: 1e-5

    def events(self, t_s: int) -> list[Event]:
        price = self.price(t_s)
        out: list[Event] = [self.tape.mark(t_s, price)]
        if t_s % self.oi_every_s == 0:
            out.append(self.tape.oi(t_s, self.oi_base(t_s), price))
            out.append(self.tape.funding(t_s, self.funding_1h(t_s)))
        out.extend(self.tape.liq(t_s, side, usd, price) for side, usd in self.liqs(t_s))
        return out


@dataclass
class Run:
    """What a scripted run produced: the newest pressure per second and every transition."""

    pressures: dict[int, Pressure] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)

    def at(self, t_s: int) -> Pressure:
        return self.pressures[max(t for t in self.pressures if t <= t_s)]

    def path(self) -> list[tuple[str, str, str | None]]:
        return [(t.from_state, t.to_state, t.side) for t in self.transitions]


def simulate(
    markets: list[Market],
    start_s: int,
    end_s: int,
    settings: DetectorSettings | None = None,
    model: PressureModel | None = None,
    run: Run | None = None,
    feeds_until_s: int | None = None,
) -> Run:
    """Feed ``markets`` second by second over ``[start_s, end_s)`` and evaluate each second
    (feeds stop after ``feeds_until_s``; evaluation goes on)."""
    model = model if model is not None else make_model(settings or SETTINGS)
    run = run if run is not None else Run()
    for t in range(start_s, end_s):
        if feeds_until_s is None or t < feeds_until_s:
            for market in markets:
                model.update(market.events(t))
        evaluation = model.evaluate(ms(t))
        for p in evaluation.pressures:
            if p.symbol == markets[0].tape.symbol:
                run.pressures[t] = p
        run.transitions.extend(evaluation.transitions)
    return run
