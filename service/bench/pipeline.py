"""``deleverage bench pipeline``: throughput of the in-process path, printed as JSON.

A replay of Binance USDⓈ-M frames in the venue's real wire shapes (all-market mark-price
arrays over the recorded instrument list, and a burst of liquidation orders) goes through:

1. ``parse_only``: the venue parser alone (what cryptofeed's parse-only rate measures);
2. ``full_path``: parser → deduplicator → :class:`EventSink` (pipelined batches into a real
   Redis: per-instrument streams, latest hashes, hand-off) → the detector reading the
   hand-off stream into its model. The clock stops when the detector has taken in the last
   event. CPU is this process's; Redis runs as its own process (its CPU is reported too).

Run against a private Redis (started here) unless ``--redis-url`` is given. Nothing here
is a test: figures vary with the machine; compare runs on the same machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from importlib import resources
from typing import Any

import click
import redis.asyncio as aioredis

from ..config import DetectorSettings, StoreSettings, redacted
from ..detect.factory import make_model
from ..store import reader
from ..store.client import connect
from ..store.embedded import embedded_redis
from ..store.writer import EventSink
from ..venues.base import Instrument
from ..venues.binance.usdm import VENUE, BinanceUsdmParser
from ..venues.dedup import Deduplicator


def _instruments() -> dict[str, Instrument]:
    data = resources.files("service.venues.binance.simulator").joinpath(
        "data/usdm/exchangeInfo.json"
    )
    info = json.loads(data.read_text())
    return {
        s["symbol"]: Instrument(VENUE, s["symbol"], s["baseAsset"], s["quoteAsset"], True)
        for s in info["symbols"]
        if s.get("contractType") == "PERPETUAL"
    }


def replay_frames(markets: dict[str, Instrument], seconds: int, liq_per_s: int) -> list[bytes]:
    """``seconds`` of all-market mark-price arrays, each followed by ``liq_per_s``
    liquidation frames (a cascade: far above the 1-per-symbol-per-second sample)."""
    symbols = sorted(markets)
    frames: list[bytes] = []
    t0 = 1_760_130_000_000
    for sec in range(seconds):
        ts = t0 + sec * 1000
        arr = [
            {
                "e": "markPriceUpdate",
                "E": ts,
                "s": s,
                "p": f"{100 + i + sec * 0.01:.8f}",
                "i": f"{100 + i:.8f}",
                "P": f"{100 + i:.8f}",
                "r": "0.00010000",
                "T": t0 + 8 * 3600_000,
            }
            for i, s in enumerate(symbols)
        ]
        frames.append(json.dumps({"stream": "!markPrice@arr@1s", "data": arr}).encode())
        for j in range(liq_per_s):
            s = symbols[j % len(symbols)]
            order = {
                "s": s,
                "S": "SELL" if j % 3 else "BUY",
                "o": "LIMIT",
                "f": "IOC",
                "q": f"{1 + j % 7}.000",
                "p": "99.50",
                "ap": "99.60",
                "X": "FILLED",
                "l": "1.000",
                "z": f"{1 + j % 7}.000",
                "T": ts + j,
            }
            frames.append(
                json.dumps(
                    {
                        "stream": "!forceOrder@arr",
                        "data": {"e": "forceOrder", "E": ts + j, "o": order},
                    }
                ).encode()
            )
    return frames


def parse_only(markets: dict[str, Instrument], frames: list[bytes]) -> dict[str, Any]:
    parser = BinanceUsdmParser(VENUE, markets, None)
    t0, c0 = time.perf_counter(), time.process_time()
    events = sum(len(parser.parse(f, 0)) for f in frames)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "frames": len(frames),
        "events": events,
        "wall_s": round(wall, 3),
        "events_per_s": round(events / wall),
        "events_per_cpu_s": round(events / cpu),
    }


async def full_path(
    markets: dict[str, Instrument], frames: list[bytes], redis_url: str, *, flush: bool = False
) -> dict[str, Any]:
    client = connect(redis_url)
    if await client.dbsize() and not flush:
        await client.aclose()
        raise click.ClickException(
            f"{redacted(redis_url)} is not empty: the bench writes and then deletes its data; "
            "point it at an empty database, or pass --flush to empty this one"
        )
    await client.flushdb()
    sink = EventSink(client, StoreSettings())
    parser = BinanceUsdmParser(VENUE, markets, None)
    dedup = Deduplicator()
    model = make_model(DetectorSettings())
    expected = sum(len(parser.parse(f, 0)) for f in frames)
    parser = BinanceUsdmParser(VENUE, markets, None)
    consumed = 0

    async def detector() -> None:
        nonlocal consumed
        last = {VENUE: "0-0"}
        while consumed < expected:
            for venue, sid, events in await reader.read_handoff(client, last, block_ms=100):
                last[venue] = sid
                model.update(events)
                consumed += len(events)

    redis_cpu0 = await _redis_cpu(client)
    flusher = asyncio.create_task(sink.run())
    consumer = asyncio.create_task(detector())
    t0, c0 = time.perf_counter(), time.process_time()
    for i, frame in enumerate(frames):
        events = dedup.filter(parser.parse(frame, 0))
        sink.put_nowait(events)
        if sink.backlogged:
            await sink.wait_for_room()
        if i % 64 == 0:
            await asyncio.sleep(0)  # a websocket read yields to the loop between frames
    await asyncio.wait_for(consumer, 300)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    redis_cpu = await _redis_cpu(client) - redis_cpu0
    flusher.cancel()
    result = {
        "events": expected,
        "wall_s": round(wall, 3),
        "events_per_s": round(expected / wall),
        "events_per_cpu_s": round(expected / cpu),
        "process_cpu_s": round(cpu, 3),
        "redis_cpu_s": round(redis_cpu, 3),
        "redis_batches": sink.written_batches,
        "mean_batch_events": round(sink.written_events / max(1, sink.written_batches)),
    }
    await client.flushdb()
    await client.aclose()
    return result


async def _redis_cpu(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def run_pipeline(
    seconds: int, liq_per_s: int, redis_url: str | None, flush: bool
) -> dict[str, Any]:
    """The ``pipeline`` scenario: parse-only, then the full path into Redis and the model."""
    markets = _instruments()
    frames = replay_frames(markets, seconds, liq_per_s)
    out: dict[str, Any] = {
        "scenario": "pipeline",
        "replay": {
            "venue": VENUE,
            "instruments": len(markets),
            "seconds": seconds,
            "liquidation_frames_per_s": liq_per_s,
            "frames": len(frames),
        },
        "parse_only": parse_only(markets, frames),
    }
    if redis_url is None:
        async with embedded_redis() as url:
            out["full_path"] = await full_path(markets, frames, url)
    else:
        out["full_path"] = await full_path(markets, frames, redis_url, flush=flush)
    out["cpus"] = os.cpu_count()
    return out
