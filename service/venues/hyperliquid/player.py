"""The Hyperliquid wire player for ``deleverage evaluate``. Hyperliquid has no liquidation
feed: the collector watches the liquidator vaults' fills, which show only the backstop
liquidations (:data:`HL_BACKSTOP_SHARE` of the prints, drawn by a seeded sampler); a new
subscription re-sends the vaults' recent fills."""

from __future__ import annotations

import random
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any, ClassVar, Final

from ...simulate.market import LiquidationPrint, SymbolSpec
from ...simulate.scenario import Scenario
from ..base import Instrument, Parser
from ..player import WirePlayer
from .instruments import parse_meta
from .simulator import book_wire
from .simulator import wire as hyperliquid_wire
from .venue import BOOK_SIG_FIGS, Hyperliquid, HyperliquidParser

HL_BACKSTOP_SHARE: Final = 0.3
HL_SNAPSHOT_SIZE: Final = 50
"""The share of prints a liquidator vault takes over, and how many recent fills a new
``userFills`` subscription gets (the loopback server's defaults)."""


class HyperliquidPlayer(WirePlayer):
    venue: ClassVar[str] = Hyperliquid.id
    parser_class: ClassVar[type[Parser]] = HyperliquidParser
    specs: ClassVar[tuple[SymbolSpec, ...]] = hyperliquid_wire.HL_SPECS

    def __init__(
        self, scenario: Scenario, seed: int, assets: Sequence[str], all_contracts: bool = False
    ) -> None:
        self._listed = {a.name: a for a in hyperliquid_wire.LISTING if not a.delisted}
        super().__init__(scenario, seed, assets, all_contracts)
        self.vaults = {
            a: hyperliquid_wire.Vault(a, 10**12 + i * 10**9, 10**11 + i * 10**9)
            for i, a in enumerate(hyperliquid_wire.LIQUIDATORS)
        }
        self._recent = {a: deque[dict[str, Any]](maxlen=HL_SNAPSHOT_SIZE) for a in self.vaults}
        self._chooser = random.Random(f"hyperliquid-backstop-{seed}")
        self._snapshot_due = True
        self.depth_books: dict[str, book_wire.WholeBook] = {}

    def follow_depth(self) -> bool:
        """Every coin's ``l2Book`` at the collector's precision, whole, with the contexts."""
        self.depth_books = {
            c: book_wire.WholeBook(c, self._listed[c].sz_decimals, BOOK_SIG_FIGS)
            for c in self.market.symbols
        }
        return True

    def _instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        listed = parse_meta(hyperliquid_wire.meta(hyperliquid_wire.LISTING))
        return {i.symbol: i for i in listed if i.symbol in symbols}

    def _reconnected(self, now_ms: int) -> None:
        self._snapshot_due = True

    def _frames(self, now_ms: int, prints: list[LiquidationPrint], quotes_due: bool) -> list[str]:
        out: list[str] = []
        if quotes_due or self._snapshot_due:
            for coin in self.market.symbols:
                q, a = self.market.quote(coin), self._listed[coin]
                body = hyperliquid_wire.ctx(q, a.sz_decimals, self.market.spec(coin).price)
                out.append(hyperliquid_wire.ctx_push(coin, body))
            for coin, book in self.depth_books.items():  # whole books: nothing to resync
                out.append(book.push(self.market.quote(coin), now_ms))
        if self._snapshot_due:
            self._snapshot_due = False
            for address, recent in self._recent.items():
                fills = list(reversed(recent))
                out.append(hyperliquid_wire.fills_push(address, fills, snapshot=True))
        addresses = sorted(self.vaults)
        pending: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        for p in prints:
            if self._chooser.random() >= HL_BACKSTOP_SHARE:
                continue  # a market liquidation through the book: nobody watches its fills
            vault = self.vaults[self._chooser.choice(addresses)]
            mark = self.market.mark(p.symbol)
            sz_decimals = self._listed[p.symbol].sz_decimals
            pending[vault.address] += hyperliquid_wire.backstop(vault, p, mark, sz_decimals)
        for address, fills in pending.items():
            self._recent[address].extend(fills)
            out.append(hyperliquid_wire.fills_push(address, fills))
        return out
