"""The venues' wire without sockets, for ``deleverage evaluate``: the base of the wire players.

A :class:`WirePlayer` owns one venue's seeded :class:`~service.simulate.market.Market` (in the
venue's own symbols) and, at each step of simulated time, encodes what the venue would send
with the pure encoders of its simulator (``venues/<name>/simulator/wire.py``, the same ones
the loopback server uses), parses those frames with the venue's real parser, and drops
duplicates with the collector's :class:`~.dedup.Deduplicator`. Venue rules that shape the
data are kept (each player's module says which).

During an outage frames are made and thrown away; when the venue comes back the player acts
as a reconnecting collector: a new parser, and whatever a new subscription gets first.

A venue joins the evaluation with one subclass, ``venues/<name>/player.py``, named by its
:class:`~.spec.VenueSpec`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import ClassVar

from ..events import AdlRisk, Event, HandoffEvent
from ..simulate.market import LiquidationPrint, Market, SymbolSpec
from ..simulate.scenario import Scenario
from .base import Instrument, Parser
from .dedup import Deduplicator


class WirePlayer(ABC):
    """One venue's market, encoders and parser, stepped by the caller."""

    venue: ClassVar[str]
    specs: ClassVar[tuple[SymbolSpec, ...]]
    parser_class: ClassVar[type[Parser]]
    """The venue's parser, as the collector runs it (every symbol wanted)."""

    def __init__(
        self, scenario: Scenario, seed: int, assets: Sequence[str], all_contracts: bool = False
    ) -> None:
        """Simulates the venue's contracts on ``assets``: the main one (the first listed in
        :attr:`specs`: mostly the linear USDT perpetual; Deribit's and BitMEX's inverse) or
        all of them."""
        symbols: list[str] = []
        for spec in self.specs:
            if spec.base in assets and (all_contracts or spec.base not in self._bases(symbols)):
                symbols.append(spec.symbol)
        self.market = Market(scenario, symbols=symbols, specs=self.specs, seed=seed)
        self.instruments = self._instruments(symbols)
        self.parser = self._new_parser()
        self.dedup = Deduplicator()
        self.online = True
        self.frames_total = 0
        self.prints_total = 0

    def step(
        self, dt_s: float, now_ms: int, *, quotes_due: bool, online: bool
    ) -> list[HandoffEvent]:
        """Advance the market ``dt_s`` to ``now_ms``; the events the collector would hand
        on. ``quotes_due``: push marks, funding and open interest this step (liquidations go
        out every step)."""
        prints = self.market.step(dt_s, ts_ms=now_ms, span_ms=dt_s * 1000)
        self.prints_total += len(prints)
        if online and not self.online:
            self.parser = self._new_parser()  # the collector's new connection
            self._reconnected(now_ms)
        self.online = online
        frames = self._frames(now_ms, prints, quotes_due)
        if not online:
            return []
        self.frames_total += len(frames)
        parse = self.parser.parse
        events = [e for f in frames for e in parse(f, now_ms)]
        if quotes_due:
            events.extend(self._polled(now_ms))
        out: list[HandoffEvent] = [*self.dedup.filter(events)]
        if quotes_due:
            out.extend(self._adl(now_ms))
        return out

    def _bases(self, symbols: Sequence[str]) -> set[str]:
        by_symbol = {s.symbol: s.base for s in self.specs}
        return {by_symbol[s] for s in symbols}

    @property
    def parse_errors(self) -> int:
        return sum(self.parser.stats.errors.values())

    @abstractmethod
    def _instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        """The simulated symbols as the venue module builds them from the listing."""

    def _new_parser(self) -> Parser:
        return self.parser_class(self.venue, self.instruments, None)

    @abstractmethod
    def _frames(self, now_ms: int, prints: list[LiquidationPrint], quotes_due: bool) -> list[str]:
        """What the venue sends this step."""

    def _polled(self, now_ms: int) -> list[Event]:
        """Events from REST polls due now (venues whose websocket lacks something)."""
        return []

    def _adl(self, now_ms: int) -> list[AdlRisk]:
        """ADL levels from the venue's stress polls due now (those that publish one), as the
        stress poller hands them to the detector."""
        return []

    def follow_depth(self) -> bool:
        """Also send the order book depth frames the venue's simulator serves, from the next
        step on (opt-in: the liquidity lead comparison of :mod:`service.evaluate.lead`; the
        suite's runs stay as fast as they were). ``False``: this player has none."""
        return False

    def _reconnected(self, now_ms: int) -> None:  # noqa: B027 - an optional hook
        """Reset what a new connection resets."""


def by_second(prints: Iterable[LiquidationPrint]) -> list[list[LiquidationPrint]]:
    """Prints grouped by the second they fall in, in time order (a step may span several
    seconds, a venue batches or samples per second)."""
    out: defaultdict[int, list[LiquidationPrint]] = defaultdict(list)
    for p in prints:
        out[p.ts_ms // 1000].append(p)
    return [out[s] for s in sorted(out)]
