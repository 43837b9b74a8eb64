"""The floor of ``deleverage bench wire``: the least a Python consumer of the same frames does.

``python -m service.bench.floor SPEC``: opens the connections listed in the JSON file
``SPEC`` (``{"frames": N, "connections": [{"venue", "url", "subscribe": [...]}]}``), sends
their subscribe requests, prints ``ready`` on stdout, then reads frames with the
``websockets`` client, decodes each (orjson when installed, else msgspec, untyped) and
takes out what an event is made of (side and USD notional of a liquidation, the number of a
mark, funding or open-interest update), storing nothing. After ``N`` frames it prints one
JSON line: frames, events it read, and the process CPU seconds from ``ready`` to the last
frame.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

try:
    import orjson

    loads: Callable[[str | bytes], Any] = orjson.loads
    DECODER = f"orjson {orjson.__version__}"
except ImportError:  # pragma: no cover - orjson comes with ccxt
    import msgspec

    loads = msgspec.json.decode
    DECODER = f"msgspec {msgspec.__version__}"


def _liquidation(long: bool, size: str, price: str) -> int:
    """The side and USD notional of one liquidation: one event."""
    side = "long" if long else "short"
    return 1 if side and float(size) * float(price) >= 0 else 0


def events_in(venue: str, msg: Any) -> int:
    """Decode ``msg``'s numbers as the service would need them; the events it carries."""
    if venue == "binance_usdm":
        data = msg["data"]
        if isinstance(data, list):  # !markPrice@arr@1s: a mark and a funding rate a row
            return sum(2 for row in data if float(row["p"]) >= 0 and float(row["r"]) > -1)
        o = data["o"]
        return _liquidation(o["S"] == "SELL", o["z"], o["ap"])
    if venue == "bybit":
        data = msg["data"]
        if msg["topic"].startswith("tickers."):
            fields = ("markPrice", "fundingRate", "openInterest")
            return sum(1 for f in fields if f in data and float(data[f]) >= -1)
        return sum(_liquidation(row["S"] == "Buy", row["v"], row["p"]) for row in data)
    channel, n = msg["arg"]["channel"], 0
    for row in msg["data"]:
        if channel == "mark-price":
            n += float(row["markPx"]) >= 0
        elif channel == "open-interest":
            n += float(row["oiUsd"]) >= 0
        else:
            n += sum(_liquidation(d["side"] == "sell", d["sz"], d["bkPx"]) for d in row["details"])
    return n


async def _read(ws: ClientConnection, venue: str, state: dict[str, int], done: asyncio.Event,
                total: int) -> None:  # fmt: skip
    async for message in ws:
        state["events"] += events_in(venue, loads(message))
        state["frames"] += 1
        if state["frames"] >= total:
            done.set()


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    total = int(spec["frames"])
    state = {"frames": 0, "events": 0}
    done = asyncio.Event()
    conns: list[tuple[str, ClientConnection]] = []
    for c in spec["connections"]:
        ws = await connect(c["url"], compression=None, max_size=2**24, ping_interval=None)
        for message in c["subscribe"]:
            await ws.send(message)
        conns.append((c["venue"], ws))
    readers = [asyncio.create_task(_read(ws, v, state, done, total)) for v, ws in conns]
    print("ready", flush=True)
    c0 = time.process_time()
    finished = asyncio.create_task(done.wait())
    await asyncio.wait([finished, *readers], return_when=asyncio.FIRST_COMPLETED)
    for task in readers:
        if task.done() and (exc := task.exception()) is not None:
            raise exc  # a frame the floor cannot read: a bug of the plan or of the floor
    cpu = time.process_time() - c0
    for task in readers:
        task.cancel()
    for _, ws in conns:
        await ws.close()
    return {**state, "cpu_s": cpu, "decoder": DECODER}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))), flush=True)
