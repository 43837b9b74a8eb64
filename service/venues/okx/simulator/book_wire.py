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

import struct
import zlib
from dataclasses import dataclass
from functools import partial
from typing import Final

from ....simulate.bookkit import LevelGrid, Levels, sig2
from ....simulate.market import Quote
from ....simulate.wirekit import book_prices, encode
from .wire import Contract, fmt

CHANNEL: Final = "books"
LEVELS: Final = 400
LEVEL_STEP_BP: Final = 1.5
"""The grid of the levels behind the best one: 400 levels reach 6 % of mid."""
LEVEL_SIZE_OF_OI: Final = 0.0004
CHECKSUM_LEVELS: Final = 25


def top(q: Quote, c: Contract) -> tuple[float, float, int]:
    """The best bid and ask around the mark at the quote's spread, on the tick grid, and the
    whole contracts resting at each level (the ``tickers`` top is this book's best level):
    :data:`LEVEL_SIZE_OF_OI` of the open interest times the quote's depth multiplier, in
    base coin to two significant digits, as contracts of ``ctVal`` (at least one)."""
    bid, ask = book_prices(q.mark, q.spread_bp, 10.0**-c.price_decimals)
    unit = sig2(q.oi_base * LEVEL_SIZE_OF_OI * q.depth)  # base coin a level
    contracts = unit / c.ct_val if c.linear else unit * q.mark / c.ct_val
    return bid, ask, max(1, round(contracts))


@dataclass(slots=True)
class DepthBook:
    """One instId's book, as last sent."""

    contract: Contract
    checksums: bool = True
    seq: int = 1000
    """The ``seqId`` of the last frame sent (a snapshot's is the book's current one)."""
    key: tuple[float, float, int] | None = None
    grid: LevelGrid | None = None
    """Its levels (from the first quote: the grid's step is set by the first mark)."""

    def update(self, q: Quote) -> tuple[Levels, Levels] | None:
        """Move to ``q``: the levels that changed (bids, asks; size ``"0"``: gone), ``None``
        when none did."""
        c = self.contract
        if self.grid is None:
            tick = 10.0**-c.price_decimals
            step = max(tick, round(q.mark * LEVEL_STEP_BP / 10_000 / tick) * tick)
            self.grid = LevelGrid(LEVELS, step, partial(fmt, decimals=c.price_decimals))
        key = top(q, c)
        if key == self.key:
            return None
        self.key = key
        bid, ask, size = key
        return self.grid.move(bid, ask, str(size))

    def checksum(self) -> int:
        """OKX's CRC32 of the best 25 levels a side, interleaved bid then ask (0: none)."""
        if not self.checksums:
            return 0
        if self.grid is None:
            return 0
        bids, asks = self.grid.best_first(CHECKSUM_LEVELS)
        parts: list[str] = []
        for i in range(max(len(bids), len(asks))):
            if i < len(bids):
                parts.append(":".join(bids[i]))
            if i < len(asks):
                parts.append(":".join(asks[i]))
        return _signed_crc32(":".join(parts))

    def frame(self, action: str, ts: int, b: Levels, a: Levels) -> str:
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
        assert self.grid is not None, "a snapshot follows the first update"
        return self.frame("snapshot", ts, *self.grid.best_first())


def _signed_crc32(text: str) -> int:
    """CRC32 of ``text`` (UTF-8) as OKX sends it, a signed 32-bit integer (the simulator's
    own: it imports nothing of the venue's parser, whose check it serves)."""
    unsigned = struct.pack("<I", zlib.crc32(text.encode()))
    return int(struct.unpack("<i", unsigned)[0])
