"""The simulator's ``futures.obu``, ``futures.book_ticker`` and ``futures.trades``: books and a
tape shaped from the simulated market's quote, in Gate's shapes.

* ``futures.obu`` (``ob.<contract>.<levels>``, 50 or 400 levels): one book per contract and
  depth, shared by its subscribers, as the venue's. The whole book (``full`` true, ``u`` its
  id) to each new subscriber, then the levels that changed with ``U`` (the previous ``u``
  plus one) and ``u``; a side with no change has no key. Prices as Gate prints them, sizes
  as decimal text in contracts (what the probes saw with or without the size header).
* ``futures.book_ticker``: the book's best bid and ask with their sizes (JSON numbers of
  contracts), ``u`` an increasing update id (the push time here).
* ``futures.trades``: a second's liquidation fills and calm tape
  (:func:`~service.simulate.wirekit.tape`), ``size`` signed by the taker, in contracts.

The shape is deterministic: the best bid and ask are the quote's spread around the mark
(:func:`~service.simulate.wirekit.book_prices`), the levels behind them a fixed grid every
:data:`LEVEL_STEP_BP` of the first mark seen (:class:`~service.simulate.bookkit.LevelGrid`),
each holding :data:`LEVEL_SIZE_OF_OI` of the open interest times the quote's depth
multiplier. So the deleveraging phases, which widen the spread and thin the depth, widen
and thin these books too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ....events import Side
from ....simulate.bookkit import LevelGrid, Levels, sig2
from ....simulate.market import LiquidationPrint, Quote
from ....simulate.wirekit import book_prices, tape
from .wire import BOOK, Contract, fmt, frame

LEVELS: Final = frozenset({50, 400})
"""The depths ``futures.obu`` serves."""
LEVEL_STEP_BP: Final = 0.75
"""The grid behind the best levels: 400 levels reach 3 % of mid."""
LEVEL_SIZE_OF_OI: Final = 0.0004
"""Each level's size as a share of the open interest."""


def _contracts(qty_base: float, at: float, c: Contract) -> float:
    """A base quantity in contracts to one decimal (inverse: USD, whole), at least one tenth."""
    if c.linear:
        return max(0.1, round(qty_base / c.multiplier, 1))
    return float(max(1, round(qty_base * at)))


def _text(n: float) -> str:
    return f"{n:.1f}".removesuffix(".0")


def top(q: Quote, c: Contract) -> tuple[float, float, float]:
    """``(bid, ask, contracts at each)`` of the simulated book now."""
    bid, ask = book_prices(q.mark, q.spread_bp, c.tick)
    qty_base = sig2(q.oi_base * LEVEL_SIZE_OF_OI * q.depth)
    return bid, ask, _contracts(qty_base, q.mark, c)


@dataclass(slots=True)
class DepthBook:
    """One contract's ``futures.obu`` stream, as last sent."""

    contract: Contract
    levels: int
    u: int = 1_000_000
    grid: LevelGrid | None = None
    key: tuple[float, float, float] | None = None

    @property
    def stream(self) -> str:
        return f"ob.{self.contract.name}.{self.levels}"

    def update(self, q: Quote) -> tuple[int, Levels, Levels] | None:
        """Move to ``q``: ``(U, bids, asks)`` of the levels that changed, ``None`` when none
        did; ``u`` advances by one when some did."""
        c = self.contract
        if self.grid is None:
            step = max(c.tick, round(q.mark * LEVEL_STEP_BP / 10_000 / c.tick) * c.tick)
            self.grid = LevelGrid(self.levels, step, lambda x: fmt(x, c.tick))
        bid, ask, qty = top(q, c)
        if (bid, ask, qty) == self.key:
            return None
        self.key = (bid, ask, qty)
        changed = self.grid.move(bid, ask, _text(qty))
        if changed is None:
            return None
        self.u += 1
        return self.u, *changed

    def full(self, now_ms: int) -> str:
        """The whole book, best first on each side."""
        assert self.grid is not None, "a full book follows the first update"
        b, a = self.grid.best_first()
        result = {"t": now_ms, "full": True, "s": self.stream, "u": self.u, "b": b, "a": a}
        return frame(BOOK, "update", result, now_ms)

    def delta(self, now_ms: int, first: int, b: Levels, a: Levels) -> str:
        """``{"t":...,"s":"ob.<contract>.<levels>","U":...,"u":...,"b":[...],"a":[...]}``."""
        result: dict[str, Any] = {"t": now_ms, "s": self.stream, "U": first, "u": self.u}
        if b:
            result["b"] = b
        if a:
            result["a"] = a
        return frame(BOOK, "update", result, now_ms)


def book_ticker(q: Quote, c: Contract, u: int, now_ms: int) -> dict[str, Any]:
    """A ``futures.book_ticker`` result: ``{"t":...,"u":...,"s":...,"b":"54696.6","B":37000,
    "a":"54696.7","A":47061}`` (sizes: JSON numbers of contracts)."""
    bid, ask, qty = top(q, c)
    size: float = qty if qty % 1 else int(qty)
    return {"t": now_ms, "u": u, "s": c.name, "b": fmt(bid, c.tick), "B": size,
            "a": fmt(ask, c.tick), "A": size}  # fmt: skip


def trade_rows(
    q: Quote, c: Contract, now_ms: int, fills: list[LiquidationPrint], first_id: int,
    *, decimal_sizes: bool,
) -> list[dict[str, Any]]:  # fmt: skip
    """One second's ``futures.trades`` rows of a contract: the liquidations' fills (the
    liquidated position's close is the taker: a long's close sells), then the calm tape as
    one taker buy at the ask and one taker sell at the bid. ``size`` in contracts, negative
    for a selling taker (text with ``X-Gate-Size-Decimal: 1``, else whole contracts); ids
    count up from ``first_id``."""
    bid, ask, _ = top(q, c)
    buy, sell = tape(q)
    prints = [(p.side is Side.SHORT, p.qty_base, p.price, p.ts_ms) for p in fills]
    prints += [(True, buy, ask, now_ms), (False, sell, bid, now_ms)]
    rows: list[dict[str, Any]] = []
    for taker_buy, qty_base, at, ts in prints:
        if qty_base <= 0:
            continue
        n = _contracts(qty_base, at, c)
        signed = n if taker_buy else -n
        rows.append({
            "size": _text(signed) if decimal_sizes else round(signed) or (1 if taker_buy else -1),
            "id": first_id + len(rows), "create_time": ts // 1000, "create_time_ms": ts,
            "price": fmt(at, c.tick), "contract": c.name,
        })  # fmt: skip
    return rows
