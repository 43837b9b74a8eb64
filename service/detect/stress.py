"""The leverage-stress figures the detector reports beside its score (pure): positioning,
basis and the insurance funds, each against a robust baseline of its own; never evidence.

What the venues publish of the stress behind a deleveraging ([stress.md](docs/stress.md))
reaches the detector through the hand-off with the market data (the stress writer adds it).
Observed ADL is evidence (:mod:`.scoring`); the rest describes the leverage a move runs
into, and is reported, not scored:

* **positioning**: the share of accounts net long (``accounts``, the venue's all-trader
  figure), against its baseline; a crowded side is the one a move forces out;
* **basis**: the perpetual's premium over its index from the venue's basis figures, in bp,
  against its baseline; a collapse (longs closing into the bid) or a blow-out;
* **insurance fund**: the change over the last hour of the pool that covers the instrument
  (by the pool's listed symbols, else its base asset), in %, against the baseline of that
  change; a fund that drains pays for bankrupt positions, the step before ADL.

Each baseline is sampled with each new publication (the z of a figure is taken against the
samples before it), holds :data:`SAMPLES` and answers after :data:`MIN_SAMPLES`: at the
venues' 5-minute cadence, from about 100 minutes on. A figure is a feature as long as it is
younger than :data:`FRESH_MS`; an instrument that is not calm gets a reason for each
figure :data:`REASON_Z` sigmas or more from its baseline. The baselines are not in the
checkpoint: after a restart they fill again.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from ..events import Basis, InsuranceFund, Positioning, PositioningMetric
from .baseline import Baseline

SAMPLES: Final = 288
MIN_SAMPLES: Final = 20
PRIOR_SCALE: Final = 2.0
LONG_SHARE_FLOOR: Final = 0.01
"""Floor of the long share's sigma (one point of the accounts)."""
BASIS_FLOOR_BP: Final = 1.0
FUND_FLOOR_PCT: Final = 0.2
FUND_WINDOW_MS: Final = 3_600_000
FRESH_MS: Final = 3 * FUND_WINDOW_MS
"""A figure older than this (a poller that stopped, a delisted pool) is not reported."""
REASON_Z: Final = 3.0


def _baseline() -> Baseline:
    return Baseline(SAMPLES, MIN_SAMPLES, fat_tails=True, typecode="f")


class Figure:
    """The newest value of one published figure, its z against the earlier ones, and when."""

    __slots__ = ("baseline", "floor", "ts_ms", "value", "z")

    def __init__(self, floor: float) -> None:
        self.baseline = _baseline()
        self.floor = floor
        self.value = 0.0
        self.z: float | None = None
        self.ts_ms = -1

    def add(self, value: float, ts_ms: int) -> None:
        """A new publication (one not newer than the last is a repeat: ignored)."""
        if ts_ms <= self.ts_ms or value != value:
            return
        b = self.baseline
        self.z = b.z(value, self.floor, PRIOR_SCALE) if b.ready else None
        b.add(value)
        self.value, self.ts_ms = value, ts_ms

    def fresh(self, now_ms: int) -> bool:
        return self.ts_ms >= 0 and now_ms - self.ts_ms <= FRESH_MS


class InstrumentStress:
    """One instrument's positioning and basis (created at its first such publication)."""

    __slots__ = ("basis", "long_share")

    def __init__(self) -> None:
        self.long_share = Figure(LONG_SHARE_FLOOR)
        self.basis = Figure(BASIS_FLOOR_BP)

    def add(self, ev: Positioning | Basis) -> None:
        if type(ev) is Positioning:
            if ev.metric is PositioningMetric.ACCOUNTS and ev.long_share is not None:
                self.long_share.add(ev.long_share, ev.ts_ms)
        elif type(ev) is Basis and ev.contract == "perpetual":
            self.basis.add(ev.basis_rate * 1e4, ev.ts_ms)


class _Pool:
    __slots__ = ("balances", "base", "change", "name", "symbols")

    def __init__(self, name: str, base: str, symbols: tuple[str, ...]) -> None:
        self.name = name
        self.base = base
        self.symbols = frozenset(symbols)
        self.balances: deque[tuple[int, float]] = deque()
        self.change = Figure(FUND_FLOOR_PCT)


class Funds:
    """One venue's insurance pools: each one's USD balance over the last hour, and which
    instruments it covers."""

    __slots__ = ("_by_base", "_by_symbol", "pools")

    def __init__(self) -> None:
        self.pools: dict[tuple[str, str], _Pool] = {}
        self._by_symbol: dict[str, _Pool] = {}
        self._by_base: dict[str, _Pool] = {}

    def add(self, ev: InsuranceFund) -> None:
        usd = ev.balance_usd
        if usd is None or usd != usd:
            return  # a pool in a coin the venue gives no USD value for
        key = (ev.pool, ev.asset)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = _Pool(f"{ev.pool} {ev.asset}", ev.base, ev.symbols)
            self._by_symbol.update(dict.fromkeys(ev.symbols, pool))
            if ev.base != "*":
                self._by_base.setdefault(ev.base, pool)
        balances = pool.balances
        if balances and ev.ts_ms <= balances[-1][0]:
            return
        balances.append((ev.ts_ms, usd))
        while balances[0][0] < ev.ts_ms - FUND_WINDOW_MS:
            balances.popleft()
        first = balances[0][1]
        if len(balances) > 1 and first > 0:
            pool.change.add((usd / first - 1.0) * 100.0, ev.ts_ms)

    def of(self, symbol: str, base: str) -> _Pool | None:
        """The pool that covers ``symbol`` (listed in it), else the one of its base asset."""
        return self._by_symbol.get(symbol) or self._by_base.get(base)


def stress_features(
    inst: InstrumentStress | None, pool: _Pool | None, now_ms: int
) -> dict[str, float | None]:
    """The fresh figures of one instrument, with their z (``None`` until the baseline is)."""
    out: dict[str, float | None] = {}
    if inst is not None:
        if inst.long_share.fresh(now_ms):
            out["long_share_accounts"] = round(inst.long_share.value, 4)
            out["long_share_z"] = rounded_z(inst.long_share.z)
        if inst.basis.fresh(now_ms):
            out["basis_bp"] = round(inst.basis.value, 2)
            out["basis_z"] = rounded_z(inst.basis.z)
    if pool is not None and pool.change.fresh(now_ms):
        out["insurance_change_1h_pct"] = round(pool.change.value, 3)
        out["insurance_change_z"] = rounded_z(pool.change.z)
    return out


def stress_reasons(inst: InstrumentStress | None, pool: _Pool | None, now_ms: int) -> list[str]:
    """One reason per fresh figure at least :data:`REASON_Z` sigmas from its baseline."""
    out: list[str] = []
    if inst is not None:
        f = inst.long_share
        if f.fresh(now_ms) and f.z is not None and abs(f.z) >= REASON_Z:
            side = "long" if f.value >= 0.5 else "short"
            share = f.value if side == "long" else 1.0 - f.value
            out.append(f"accounts {share:.0%} {side} (z {f.z:+.1f}): a crowded side")
        f = inst.basis
        if f.fresh(now_ms) and f.z is not None and abs(f.z) >= REASON_Z:
            how = "collapse" if f.z < 0 else "blow-out"
            out.append(f"basis {f.value:+.1f} bp (z {f.z:+.1f}): a {how}")
    if pool is not None:
        f = pool.change
        if f.fresh(now_ms) and f.z is not None and f.z <= -REASON_Z:
            out.append(f"insurance fund {pool.name} {f.value:+.1f}% in 1h (z {f.z:+.1f})")
    return out


def rounded_z(z: float | None) -> float | None:
    """A figure's z as reported (two decimals; ``None`` until its baseline answers)."""
    return None if z is None else round(z, 2)
