"""Which per-symbol series exist, and how the others' counters fold into ``symbol="other"``.

Per venue, the symbols with series of their own are the allowlist
(``MetricsSettings.symbols``) when set, else the top ``max_symbols_per_venue`` by open
interest (USD). The top-N is sticky: an outsider takes the place of the weakest chosen
symbol only when its open interest is :data:`SWAP_FACTOR` times larger, so symbols near the
cut do not flap in and out (each flap is a series ending and another starting).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Final

from ..config import MetricsSettings
from ..events import Event, InstrumentId, Kind, OpenInterest, Side

OTHER: Final = "other"
"""The ``symbol`` label of folded liquidation counters."""
SWAP_FACTOR: Final = 1.25

LiqKey = tuple[str, str, Side]
Totals = Mapping[LiqKey, tuple[int, float]]


class Selection:
    """Chooses the instruments with per-symbol series (state: the previous choice)."""

    def __init__(self, settings: MetricsSettings) -> None:
        self._allow = None if settings.symbols is None else frozenset(settings.symbols)
        self._top = settings.max_symbols_per_venue
        self._chosen: dict[str, set[str]] = {}

    def choose(
        self, latest: Mapping[InstrumentId, Mapping[Kind, Event]], known: Iterable[InstrumentId]
    ) -> set[InstrumentId]:
        pairs = set(latest) | set(known)
        if self._allow is not None:
            return {pair for pair in pairs if pair[1] in self._allow}
        oi_usd: dict[str, dict[str, float]] = defaultdict(dict)
        for venue, symbol in pairs:
            oi = latest.get((venue, symbol), {}).get(Kind.OPEN_INTEREST)
            oi_usd[venue][symbol] = oi.oi_usd if isinstance(oi, OpenInterest) else 0.0
        self._chosen = {venue: self._top_n(venue, usd) for venue, usd in oi_usd.items()}
        return {(venue, symbol) for venue, chosen in self._chosen.items() for symbol in chosen}

    def _top_n(self, venue: str, usd: dict[str, float]) -> set[str]:
        chosen = {s for s in self._chosen.get(venue, ()) if s in usd}
        ranked = sorted(usd, key=lambda s: (-usd[s], s))
        for symbol in ranked:
            if len(chosen) >= self._top:
                break
            chosen.add(symbol)
        for symbol in ranked:  # outsiders, largest first
            if symbol in chosen:
                continue
            weakest = min(chosen, key=lambda s: (usd[s], s))
            if usd[symbol] <= 0 or usd[symbol] <= usd[weakest] * SWAP_FACTOR:
                break
            chosen.remove(weakest)
            chosen.add(symbol)
        return chosen


class Folding:
    """Folds the liquidation counters of unselected symbols into ``symbol="other"``, keeping
    ``other`` monotonic when the selection changes (else ``rate()`` would see a reset).

    A symbol that gains its own series leaves its count in ``other`` (as an offset); one that
    loses it gives ``other`` what came after its own series' last value. Each liquidation is
    counted once by ``sum(rate(...))`` across a change, unless a symbol returns to its own
    series within Prometheus's staleness window (5 min; :class:`Selection` makes that rare).
    ``other`` is exported for every (venue, side) seen, from zero, so that its first increase
    is not lost to a series appearing late.
    """

    def __init__(self) -> None:
        self._offsets: dict[tuple[str, Side], list[float]] = {}
        self._shown: dict[LiqKey, tuple[int, float]] = {}
        """Per-symbol values exported at the previous scrape."""
        self._folded: set[LiqKey] = set()
        """Keys counted in ``other`` at the previous scrape."""

    def fold(
        self, totals: Totals, selected: set[InstrumentId]
    ) -> list[tuple[LiqKey, float, float]]:
        """The (venue, symbol, side) -> count, notional USD series to export."""
        shown: dict[LiqKey, tuple[int, float]] = {}
        folded: set[LiqKey] = set()
        other: dict[tuple[str, Side], list[float]] = {}
        for key, (count, usd) in totals.items():
            venue, symbol, side = key
            offset = self._offsets.setdefault((venue, side), [0.0, 0.0])
            if (venue, symbol) in selected:
                shown[key] = (count, usd)
                if key in self._folded:  # promoted: ``other`` keeps what it counted
                    offset[0] += count
                    offset[1] += usd
                continue
            folded.add(key)
            if key in self._shown:  # demoted: its own series showed these
                offset[0] -= self._shown[key][0]
                offset[1] -= self._shown[key][1]
            total = other.setdefault((venue, side), [0.0, 0.0])
            total[0] += count
            total[1] += usd
        self._shown, self._folded = shown, folded
        series: list[tuple[LiqKey, float, float]] = []
        for (venue, side), offset in sorted(self._offsets.items()):
            folded_count, folded_usd = other.get((venue, side), (0.0, 0.0))
            series.append(((venue, OTHER, side), folded_count + offset[0], folded_usd + offset[1]))
        series += [(key, n, usd) for key, (n, usd) in sorted(shown.items())]
        return series
