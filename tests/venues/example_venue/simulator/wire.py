"""The example venue's frames, encoded from the simulated market (pure)."""

from __future__ import annotations

import json
from typing import Any, Final

from service.simulate.market import LiquidationPrint, Quote, SymbolSpec

EXAMPLE_SPECS: Final = (
    SymbolSpec("BTC-PERP", "BTC", 60_000.0, 50_000.0, 0.001),
    SymbolSpec("ETH-PERP", "ETH", 3_000.0, 900_000.0, 0.01),
)
FUNDING_EVERY_MS: Final = 8 * 3600 * 1000
SUBSCRIBED: Final = '{"event":"subscribed"}'


def ticker(quotes: list[Quote], ts_ms: int) -> str:
    nxt = (ts_ms // FUNDING_EVERY_MS + 1) * FUNDING_EVERY_MS
    rows = [
        {"s": q.symbol, "mark": q.mark, "index": q.index, "funding": q.funding_rate_8h,
         "next_funding": nxt, "oi": q.oi_base}
        for q in quotes
    ]  # fmt: skip
    return json.dumps({"ch": "ticker", "ts": ts_ms, "data": rows})


def liquidation_row(p: LiquidationPrint, order_id: int) -> dict[str, Any]:
    return {"id": str(order_id), "s": p.symbol, "side": p.side.value, "px": p.price,
            "qty": p.qty_base, "t": p.ts_ms}  # fmt: skip


def liquidations(rows: list[dict[str, Any]], ts_ms: int) -> str:
    return json.dumps({"ch": "liquidation", "ts": ts_ms, "data": rows})


def instruments(specs: tuple[SymbolSpec, ...]) -> dict[str, Any]:
    return {"instruments": [{"symbol": s.symbol, "base": s.base, "quote": "USD"} for s in specs]}
