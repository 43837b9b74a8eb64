"""The simulator's ``books``: a 400-level book shaped from the simulated market's quote, a
``snapshot`` to each new subscriber, then ``update`` frames of the levels that changed, chained
by ``prevSeqId``/``seqId``, each with the CRC32 ``checksum`` of its best 25 levels a side (one
book per instId, shared by its subscribers, as the venue's).

The shape is the Bybit simulator's (:mod:`service.venues.bybit.simulator.book_wire`): the best
bid and ask around the mark at the quote's spread, the other levels on a fixed grid every
:data:`LEVEL_STEP_BP` of the first mark seen, each the same size, :data:`LEVEL_SIZE_OF_OI` of
the open interest times the quote's depth multiplier (two significant digits), in whole
**contracts** (linear: ``ctVal`` base coin, inverse: ``ctVal`` USD), so a phase that unwinds
thins every level. OKX's ``seqId`` steps by more than one: here by the levels changed.

OKX stopped sending the checksum (always ``0``) on 2026-06-23; the simulator still sends the
real one, which the collector then checks: ``checksums=False`` sends ``0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from ....simulate.market import Quote
from ....simulate.wirekit import book_prices, encode
from ..book import signed_crc32
from .wire import Contract, fmt

CHANNEL: Final = "books"
LEVELS: Final = 400
LEVEL_STEP_BP: Final = 1.5
"""The grid of the levels behind the best one: 400 levels reach 6 % of mid."""
LEVEL_SIZE_OF_OI: Final = 0.0004
CHECKSUM_LEVELS: Final = 25


def _sig2(x: float) -> float:
    return float(f"{x:.2g}")


@dataclass(slots=True)
class DepthBook:
    """One instId's book, as last sent."""

    contract: Contract
    checksums: bool = True
    seq: int = 1000
    """The ``seqId`` of the last frame sent (a snapshot's is the book's current one)."""
    step: float = 0.0
    key: tuple[float, float, int] | None = None
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)
    grids: dict[int, tuple[tuple[int, str], dict[str, str]]] = field(default_factory=dict)
    """Per side (-1 bids, 1 asks), the grid levels behind the best one and what they were
    built for (the first grid point, the size): rebuilt only when one of them moves."""

    def update(self, q: Quote) -> tuple[list[list[str]], list[list[str]]] | None:
        """Move to ``q``: the levels that changed (bids, asks; size ``"0"``: gone), ``None``
        when none did."""
        c = self.contract
        tick = 10.0**-c.price_decimals
        if not self.step:
            self.step = max(tick, round(q.mark * LEVEL_STEP_BP / 10_000 / tick) * tick)
        bid, ask = book_prices(q.mark, q.spread_bp, tick)
        unit = _sig2(q.oi_base * LEVEL_SIZE_OF_OI * q.depth)  # base coin a level
        contracts = unit / c.ct_val if c.linear else unit * q.mark / c.ct_val
        key = (bid, ask, max(1, round(contracts)))
        if key == self.key:
            return None
        self.key = key
        qty = str(key[2])
        bids, asks = self._side(bid, -1, qty), self._side(ask, 1, qty)
        changed = (_diff(self.bids, bids), _diff(self.asks, asks))
        self.bids, self.asks = bids, asks
        if not changed[0] and not changed[1]:
            return None
        return changed

    def _side(self, best: float, way: int, qty: str) -> dict[str, str]:
        """``best`` and the grid points beyond it (``way`` -1: below, bids; 1: above)."""
        step, decimals = self.step, self.contract.price_decimals
        start = (math.floor if way < 0 else math.ceil)(best / step)
        if start * step == best:
            start += way
        built = self.grids.get(way)
        if built is None or built[0] != (start, qty):
            prices = [(start + way * i) * step for i in range(LEVELS - 1)]
            grid = {fmt(p, decimals): qty for p in prices if p > 0}
            built = self.grids[way] = ((start, qty), grid)
        return {fmt(best, decimals): qty, **built[1]}

    def checksum(self) -> int:
        """OKX's CRC32 of the best 25 levels a side, interleaved bid then ask (0: none)."""
        if not self.checksums:
            return 0
        bids = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))[:CHECKSUM_LEVELS]
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))[:CHECKSUM_LEVELS]
        parts: list[str] = []
        for i in range(max(len(bids), len(asks))):
            if i < len(bids):
                parts.append(":".join(bids[i]))
            if i < len(asks):
                parts.append(":".join(asks[i]))
        return signed_crc32(":".join(parts))

    def frame(self, action: str, ts: int, b: list[list[str]], a: list[list[str]]) -> str:
        """``{"arg":{"channel":"books","instId":...},"action":<action>,"data":[{"asks":[...],
        "bids":[...],"ts":...,"checksum":...,"prevSeqId":...,"seqId":...}]}``: an update
        advances ``seqId`` by the levels it carries."""
        prev = -1 if action == "snapshot" else self.seq
        if action == "update":
            self.seq += max(1, len(a) + len(b))
        row = {
            "asks": [[p, q, "0", "1" if q != "0" else "0"] for p, q in a],
            "bids": [[p, q, "0", "1" if q != "0" else "0"] for p, q in b],
            "ts": str(ts),
            "checksum": self.checksum(),
            "prevSeqId": prev,
            "seqId": self.seq,
        }
        return encode(
            {"arg": {"channel": CHANNEL, "instId": self.contract.inst_id}, "action": action,
             "data": [row]}
        )  # fmt: skip

    def snapshot(self, ts: int) -> str:
        """The whole book, best first on each side."""
        bids = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))
        return self.frame("snapshot", ts, [list(x) for x in bids], [list(x) for x in asks])


def _diff(old: dict[str, str], new: dict[str, str]) -> list[list[str]]:
    """The levels of ``new`` that differ from ``old``, and ``old``'s gone ones at ``"0"``."""
    out = [[p, q] for p, q in new.items() if old.get(p) != q]
    out += [[p, "0"] for p in old if p not in new]
    return out
