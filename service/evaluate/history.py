"""The warm start of a played run: a day of calm history before the scenario begins.

At start-up the service fills its baselines from the venues' open-interest and funding
history (5-minute OI points and each funding settlement, through ccxt). A played run does
the same with history made by a calm market of the same venue and symbols: stepped in
5-minute steps over :data:`HISTORY_S`, then scaled so that it ends exactly at the values the
scenario starts from (no jump at the seam). The model takes it through ``seed(venue,
symbol, asset, oi, funding)`` when it has one (a model without a warm start ignores it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ..detect.base import Seedable
from ..events import per_hour
from ..simulate.market import Market
from ..simulate.scenario import get_scenario
from ..venues.player import WirePlayer

HISTORY_S: Final = 86_400.0
STEP_S: Final = 300.0


def history(
    player: WirePlayer, seed: int, origin_ms: int, history_s: float = HISTORY_S
) -> dict[str, tuple[list[tuple[int, float, float]], list[tuple[int, float]]]]:
    """Per symbol of ``player``: OI points ``(ts_ms, oi_base, oi_usd)`` every 5 minutes and
    funding points ``(ts_ms, rate_1h)`` at each settlement, over ``history_s`` before
    ``origin_ms``."""
    market = Market(
        get_scenario("calm"), symbols=player.market.symbols, specs=player.specs, seed=seed
    )
    steps = int(history_s // STEP_S)
    start_ms = origin_ms - steps * int(STEP_S * 1000)
    raw: dict[str, list[tuple[int, float, float, float]]] = {s: [] for s in market.symbols}
    for i in range(steps + 1):
        ts = start_ms + i * int(STEP_S * 1000)
        for q in market.quotes():
            raw[q.symbol].append((ts, q.oi_base, q.mark, q.funding_rate_8h))
        if i < steps:
            market.step(STEP_S)
    out: dict[str, tuple[list[tuple[int, float, float]], list[tuple[int, float]]]] = {}
    for symbol, points in raw.items():
        now = player.market.quote(symbol)
        k_oi, k_px = now.oi_base / points[-1][1], now.mark / points[-1][2]
        inst = player.instruments.get(symbol)
        interval_h = inst.funding_interval_h if inst is not None else 8.0
        every_ms = int(interval_h * 3_600_000)
        oi = [(ts, b * k_oi, b * k_oi * m * k_px) for ts, b, m, _ in points]
        funding = [
            (ts, per_hour(f * interval_h / 8.0, interval_h))
            for ts, _, _, f in points
            if ts % every_ms == 0
        ]
        out[symbol] = (oi, funding)
    return out


def warm_start(model: object, players: Sequence[WirePlayer], seed: int, origin_ms: int) -> int:
    """Seed ``model`` with each player's history; the baseline samples it took (0 when the
    model has no warm start)."""
    if not isinstance(model, Seedable):
        return 0
    added = 0
    for i, player in enumerate(players):
        for symbol, (oi, funding) in history(player, seed * 1000 + 500 + i, origin_ms).items():
            asset = player.market.spec(symbol).base
            added += model.seed(player.venue, symbol, asset, oi, funding)
    return added
