"""What a venue would have sent over one step of a simulated market, as the service's events:
the step's liquidations, then a mark price and the open interest of each symbol."""

from __future__ import annotations

from service.events import Event, Liquidation, MarkPrice, OpenInterest
from service.simulate.market import Market


def market_events(
    venue: str, market: Market, scenario_s: float, span_s: float, now_ms: int, step: int
) -> list[Event]:
    """``market`` moved ``scenario_s`` of scenario time, its prints spread over ``span_s`` of
    wall time ending at ``now_ms``; liquidation ids are ``<step>-<i>``."""
    out: list[Event] = []
    prints = market.step(scenario_s, ts_ms=now_ms, span_ms=span_s * 1000)
    for i, p in enumerate(prints):
        out.append(Liquidation(
            venue=venue, symbol=p.symbol, base=p.base, ts_ms=p.ts_ms, recv_ms=now_ms,
            side=p.side, price=p.price, quantity=p.qty_base, quantity_base=p.qty_base,
            notional_usd=p.notional_usd, sampled=False, event_id=f"{step}-{i}",
        ))  # fmt: skip
    for q in market.quotes():
        out.append(MarkPrice(venue=venue, symbol=q.symbol, base=q.base, ts_ms=now_ms,
                             recv_ms=now_ms, mark_price=q.mark, index_price=q.index))  # fmt: skip
        out.append(OpenInterest(venue=venue, symbol=q.symbol, base=q.base, ts_ms=now_ms,
                                recv_ms=now_ms, oi_contracts=q.oi_base, oi_base=q.oi_base,
                                oi_usd=q.oi_base * q.mark))  # fmt: skip
    return out
