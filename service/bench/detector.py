"""``deleverage bench detector``: the pressure model's cost per event and per evaluation.

The model is the service's (:func:`~service.detect.factory.make_model`, default settings).
``n`` instruments spread over three venues (asset ``i // 3`` listed on each, so the asset
and market scores aggregate across venues) are first seeded with a day of history, as the
warm start does (5-minute open interest, 8-hourly funding), so that every instrument is
scored, not warming up. Then each simulated second brings what a live venue sends: a mark
and a funding rate for every instrument (Binance's all-market array), open interest for a
third of them, liquidations on ``liq_share`` of them, and (``liquidity``, the service's
default) every instrument's top of book and traded volume and the order book depth of the
top :data:`DEPTH_PER_VENUE` of each venue (the collectors' default); the model takes that second's
events (:meth:`update`, timed) and evaluates once (:meth:`evaluate`, one tick of the
runner, timed). The clock is the events' own: nothing waits.

As the service does after its warm start, what the seeding built is moved out of the garbage
collector's reach (``gc.freeze``). The first tick after the warm start scores every
instrument (nothing was scored yet): it is reported on its own (``first_tick_ms``);
``tick_ms_*`` are over the ticks after it. Each size runs once per ``round_budget_ms`` asked
(the setting's default, and 0: no limit), with what the budget costs in freshness:
instruments deferred per tick, and the age of the oldest instrument score at the end (how
long a calm instrument waits for its regular look). The resident memory the run grew by
(``rss_grown_mb``, after a full collection: the model and the scores it keeps) is the memory
per instrument.

``memory`` (:func:`measure_memory`, a process of its own per size, untimed) counts the
model's bytes with ``tracemalloc``: every allocation still live after the same seeding and
seconds, per instrument, split by where it was allocated (the history rings, the baselines,
the rest: scores, states, dicts); and the bytes of one instrument *at capacity*
(:func:`capacity_bytes`: every ring allocated, every baseline full, as after its longest
lookback, 30 days of the 1 d window), the bound that does not grow with time or events.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import statistics
import time
import tracemalloc
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from ..config import DetectorSettings
from ..detect import baseline as baseline_module
from ..detect import rings as rings_module
from ..detect.base import Seedable
from ..detect.factory import make_model
from ..detect.features import Baselines
from ..detect.rings import make_rings
from ..events import (
    BookDepth,
    BookTop,
    Event,
    FundingRate,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Side,
    Volume,
)
from ..logs import configure as configure_logs
from ..process import settle_heap

VENUES = ("binance_usdm", "bybit", "okx")
T0_MS = 1_760_000_000_000
DAY_MS = 86_400_000
OI_STEP_MS = 300_000
DEPTH_PER_VENUE = 20
"""Instruments with an order book per venue (``depth.top_n``'s default)."""


def _instrument(i: int) -> tuple[str, str, str]:
    """``(venue, symbol, asset)`` of instrument ``i``."""
    asset = f"A{i // 3:05d}"
    return VENUES[i % 3], f"{asset}USDT", asset


def _second(n: int, s: int, liq_every: int, liquidity: bool = True) -> list[Event]:
    """The events of second ``s`` over ``n`` instruments."""
    ts = T0_MS + s * 1000
    out: list[Event] = []
    for i in range(n):
        venue, symbol, asset = _instrument(i)
        px = 10.0 + i % 97 + s * 0.01
        common: dict[str, Any] = {
            "venue": venue, "symbol": symbol, "base": asset, "ts_ms": ts, "recv_ms": ts
        }  # fmt: skip
        out.append(MarkPrice(**common, mark_price=px, index_price=px))
        funding = FundingRate(
            **common, funding_rate=1e-4, interval_h=8.0, funding_rate_1h=1.25e-5,
            next_funding_ms=ts + 3_600_000,
        )  # fmt: skip
        out.append(funding)
        if i % 3 == s % 3:
            oi = 1e6 - s * 10.0
            out.append(OpenInterest(**common, oi_contracts=oi, oi_base=oi, oi_usd=oi * px))
        if liq_every and (i + s) % liq_every == 0:
            out.append(
                Liquidation(**common, side=Side.LONG, price=px, quantity=5.0, quantity_base=5.0,
                            notional_usd=5.0 * px, sampled=False, event_id=f"{s}:{i}")
            )  # fmt: skip
        if liquidity:
            out.extend(_liquidity(common, px, i, s))
    return out


def _liquidity(common: dict[str, Any], px: float, i: int, s: int) -> list[Event]:
    """Instrument ``i``'s liquidity events of second ``s``: its top of book and traded
    volume, and its depth when it is among the first :data:`DEPTH_PER_VENUE` of its venue.
    The book thins a little every second, so that the baselines move."""
    bid, ask = px * 0.9999, px * 1.0001
    size = 50.0 - (s % 10)
    out: list[Event] = [
        BookTop(**common, bid_price=bid, ask_price=ask, bid_base=size, ask_base=size,
                bid_usd=size * bid, ask_usd=size * ask, spread_bp=2.0),
        Volume(**common, taker_buy_base=3.0, taker_buy_usd=3.0 * px, taker_sell_base=2.0,
               taker_sell_usd=2.0 * px, trades=4),
    ]  # fmt: skip
    if i // len(VENUES) < DEPTH_PER_VENUE:
        usd = 1e6 * (1 - (s % 30) / 100)
        out.append(
            BookDepth(**common, mid=px, bid_usd_0p5=usd / 4, bid_usd_1=usd / 2, bid_usd_2=usd,
                      ask_usd_0p5=usd / 4, ask_usd_1=usd / 2, ask_usd_2=usd,
                      bid_reach_pct=3.0, ask_reach_pct=3.0)
        )  # fmt: skip
    return out


def _seed(model: Seedable, n: int) -> None:
    for i in range(n):
        venue, symbol, asset = _instrument(i)
        oi = [
            (T0_MS - DAY_MS + k * OI_STEP_MS, 1e6 + (k % 7) * 100.0, (1e6 + (k % 7) * 100.0) * 20)
            for k in range(DAY_MS // OI_STEP_MS)
        ]
        funding = [(T0_MS - DAY_MS + k * 28_800_000, 1.25e-5) for k in range(3)]
        model.seed(venue, symbol, asset, oi, funding)


def measure(
    n: int,
    seconds: int,
    liq_share: float,
    budget_ms: float | None = None,
    limit: int = 0,
    liquidity: bool = True,
) -> dict[str, Any]:
    """The model's cost over ``seconds`` simulated seconds of ``n`` instruments
    (``budget_ms``: ``round_budget_ms``, the setting's default when ``None``; ``limit``:
    ``max_evaluations_per_round``; ``liquidity``: the liquidity events too)."""
    settings = DetectorSettings(max_evaluations_per_round=limit)
    if budget_ms is not None:
        settings = settings.model_copy(update={"round_budget_ms": budget_ms})
    gc.collect()
    rss_before = _rss_bytes()
    model = make_model(settings)
    t = time.perf_counter()
    if isinstance(model, Seedable):
        _seed(model, n)
    seed_s = time.perf_counter() - t
    liq_every = round(1 / liq_share) if liq_share > 0 else 0
    update_s, events, ticks, scored, deferred = 0.0, 0, [], [], []
    settle_heap("seeded")  # as the service does after its warm start
    now_ms = T0_MS
    for s in range(seconds + 1):
        batch = _second(n, s, liq_every, liquidity)
        t = time.perf_counter()
        model.update(batch)
        t1 = time.perf_counter()
        now_ms = T0_MS + s * 1000 + 500
        evaluation = model.evaluate(now_ms)
        ticks.append(time.perf_counter() - t1)
        scored.append(len(evaluation.pressures))
        deferred.append(evaluation.deferred)
        update_s += t1 - t
        events += len(batch)
    gc.collect()
    rss_grown = _rss_bytes() - rss_before
    first_ms, first_scored = ticks.pop(0) * 1000, scored.pop(0)
    deferred.pop(0)
    ticks_ms = sorted(x * 1000 for x in ticks)
    oldest = getattr(model, "oldest_score_ms", None)
    cost = getattr(model, "cost_us", None)
    return {
        "instruments": n,
        "round_budget_ms": settings.round_budget_ms,
        "max_evaluations_per_round": settings.max_evaluations_per_round,
        "seconds": seconds,
        "events": events,
        "seed_s": round(seed_s, 3),
        "update_us_per_event": round(update_s / max(1, events) * 1e6, 2),
        "first_tick_ms": round(first_ms, 2),
        "first_tick_scored": first_scored,
        "tick_ms_p50": round(statistics.median(ticks_ms), 2),
        "tick_ms_p99": round(_quantile(ticks_ms, 0.99), 2),
        "tick_ms_max": round(ticks_ms[-1], 2),
        "scored_per_tick": round(statistics.fmean(scored), 1),
        "us_per_scored": round(sum(ticks_ms) * 1000 / max(1, sum(scored)), 1),
        "deferred_per_tick_max": max(deferred),
        "oldest_score_s": None if oldest is None else round(oldest(now_ms) / 1000, 1),
        "model_cost_us": None if cost is None else round(cost, 1),
        "rss_grown_mb": round(rss_grown / 2**20, 1),
        "kb_per_instrument": round(rss_grown / 1024 / n, 1),
    }


def measure_memory(
    n: int, seconds: int, liq_share: float, liquidity: bool = True
) -> dict[str, Any]:
    """The model's live bytes per instrument (``tracemalloc``) after seeding ``n``
    instruments with a day and playing ``seconds``, as :func:`measure` does; and at
    capacity (:func:`capacity_bytes`)."""
    settings = DetectorSettings()
    tracemalloc.start()
    model = make_model(settings)
    if isinstance(model, Seedable):
        _seed(model, n)
    liq_every = round(1 / liq_share) if liq_share > 0 else 0
    for s in range(seconds + 1):
        model.update(_second(n, s, liq_every, liquidity))
        model.evaluate(T0_MS + s * 1000 + 500)
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    by_file = {st.traceback[0].filename: st.size for st in snapshot.statistics("filename")}
    total = sum(by_file.values())
    rings = by_file.get(rings_module.__file__, 0)
    baselines = by_file.get(baseline_module.__file__, 0)
    return {
        "instruments": n,
        "seconds": seconds,
        "bytes_per_instrument": round(total / n),
        "rings": round(rings / n),
        "baselines": round(baselines / n),
        "other": round((total - rings - baselines) / n),
        "at_capacity": capacity_bytes(settings),
    }


def capacity_bytes(settings: DetectorSettings, n: int = 100) -> dict[str, int]:
    """Bytes per instrument of ``n`` instruments' rings and baselines with every baseline
    holding its ``capacity`` samples (``tracemalloc``): the most they hold, whatever the
    time or the event rate (the rings are allocated whole from the start)."""
    windows = settings.windows_s()
    tracemalloc.start()
    kept: list[object] = []
    for _ in range(n):
        fine, coarse = make_rings(windows)
        kept.append((fine, coarse))
    rings = tracemalloc.get_traced_memory()[0]
    for _ in range(n):
        b = Baselines.for_settings(settings)
        for base in (b.funding, b.premium, *(x for w in b.windows for x in _window_baselines(w))):
            for k in range(base.capacity):
                base.add(float(k % 97))
        kept.append(b)
    total = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {
        "bytes_per_instrument": round(total / n),
        "rings": round(rings / n),
        "baselines": round((total - rings) / n),
    }


def _window_baselines(w: Any) -> tuple[Any, ...]:
    return (w.oi, w.ret, w.liq, w.oi_noise, w.ret_noise)


def _rss_bytes() -> int:
    """The process's resident memory (Linux; 0 elsewhere). What the model holds is the
    growth over a run: its history rings and baselines, seeded and then fed."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _quantile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_detector(
    sizes: Sequence[int],
    seconds: int,
    liq_share: float,
    budgets_ms: Sequence[float | None] = (None, 0.0),
    limit: int = 0,
    memory: bool = True,
    liquidity: bool = True,
) -> dict[str, Any]:
    """The ``detector`` scenario at each of ``sizes`` instruments, once per round budget
    (and, with ``memory``, once more per size to count its bytes)."""
    # each run in a process of its own: its memory figures are its own (a process's resident
    # memory does not shrink when a run's model is freed; the next run would reuse it); its
    # logs go to stderr as this process's do, so that stdout is the JSON alone
    spawn = multiprocessing.get_context("spawn")
    runs = []
    for n in sizes:
        for budget in budgets_ms:
            with ProcessPoolExecutor(1, spawn, initializer=configure_logs) as pool:
                runs.append(
                    pool.submit(measure, n, seconds, liq_share, budget, limit, liquidity).result()
                )
    counted = []
    for n in sizes if memory else ():
        with ProcessPoolExecutor(1, spawn, initializer=configure_logs) as pool:
            counted.append(pool.submit(measure_memory, n, seconds, liq_share, liquidity).result())
    return {
        "scenario": "detector",
        "model": type(make_model(DetectorSettings())).__name__,
        "liquidation_share_per_second": liq_share,
        "liquidity": liquidity,
        "runs": runs,
        "memory": counted,
    }
