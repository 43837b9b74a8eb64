"""The live stream's tests: the app served by a real uvicorn on loopback, a Server-Sent Events
reader over a real HTTP connection, and what the detector and the alert service write to
the streams the hub reads (the same encodings)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI

from service.alerts.model import Alert, AlertEvent, EventKind
from service.alerts.model import encode as encode_alert
from service.events import Side
from service.publish.api import end_streams
from service.publish.api.http import HttpProtocol
from service.scores import Pressure, Scope, State, Transition
from service.scores import encode as encode_detect
from service.store import keys


@contextlib.asynccontextmanager
async def serve(app: FastAPI, send_buffer: int | None = None) -> AsyncIterator[str]:
    """``app`` served by uvicorn on a free loopback port (lifespan included); its base URL.
    ``send_buffer``: the connections' kernel send buffer in bytes (fixed: no autotuning),
    so that a client that does not read is noticed after little data."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)  # accepted ones inherit
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="on", http=HttpProtocol)  # the API's
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        end_streams(app)
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@dataclass
class Event:
    type: str
    data: Any
    id: str | None = None
    received_s: float = 0.0


@dataclass
class Reader:
    """Parses one open stream into :class:`Event` s as they arrive."""

    response: httpx.Response
    events: list[Event] = field(default_factory=list)
    _lines: AsyncIterator[str] | None = None

    async def next(self, timeout_s: float = 5.0) -> Event:
        """The next event (retry-only frames skipped)."""
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        kind, data, id_ = "message", None, None
        async with asyncio.timeout(timeout_s):
            async for line in self._lines:
                if line == "":
                    if data is not None:
                        ev = Event(kind, json.loads(data), id_, time.time())
                        self.events.append(ev)
                        return ev
                    kind, data, id_ = "message", None, None
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line.startswith("id: "):
                    id_ = line[4:]
        raise EOFError("the stream ended")

    async def until(self, type_: str, timeout_s: float = 5.0) -> Event:
        deadline = time.monotonic() + timeout_s
        while True:
            ev = await self.next(max(0.01, deadline - time.monotonic()))
            if ev.type == type_:
                return ev

    async def collect(
        self, count: int, timeout_s: float = 5.0, skip: str = "heartbeat"
    ) -> list[Event]:
        """The next ``count`` events not of type ``skip``."""
        out: list[Event] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < count:
            ev = await self.next(max(0.01, deadline - time.monotonic()))
            if ev.type != skip:
                out.append(ev)
        return out


@contextlib.asynccontextmanager
async def stream(
    client: httpx.AsyncClient, url: str, last_event_id: str | None = None
) -> AsyncIterator[Reader]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, response.status_code
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Reader(response)


def score(
    scope: Scope, asset: str, score_: float, state: State = State.CALM, *,
    venue: str = "*", symbol: str = "*", side: Side | None = None,
) -> Pressure:  # fmt: skip
    now = int(time.time() * 1000)
    return Pressure(
        venue=venue, symbol=symbol, asset=asset, score=score_, state=state, side=side,
        updated_ms=now, since_ms=now - 5000, forced_share=None, data_quality=1.0, features={},
        reasons=[f"{asset} {state.value}"], scope=scope,
    )  # fmt: skip


async def add_scores(redis: aioredis.Redis, *scores: Pressure) -> str:
    """One detector round's entry of ``keys.SCORES``; its id."""
    return (await redis.xadd(keys.SCORES, {"e": encode_detect(list(scores))})).decode()


async def add_transition(
    redis: aioredis.Redis, scope: Scope, asset: str, to: State, *, venue: str = "*",
    symbol: str = "*", side: Side | None = Side.LONG,
) -> str:  # fmt: skip
    t = Transition(
        venue=venue, symbol=symbol, asset=asset, from_state=State.CALM, to_state=to, side=side,
        score=64.0, ts_ms=int(time.time() * 1000), reasons=["OI -3% in 5m"], scope=scope,
    )  # fmt: skip
    return (await redis.xadd(keys.transitions(scope.value), {"e": encode_detect(t)})).decode()


async def add_alert(redis: aioredis.Redis, venue: str, symbol: str, asset: str) -> str:
    now = int(time.time() * 1000)
    alert = Alert(
        id=f"00000000000000aa-{now}", fingerprint="00000000000000aa", rule="unwind",
        scope="instrument", key=f"{venue}|{symbol}", venue=venue, symbol=symbol, asset=asset,
        state=State.CASCADE, peak_state=State.CASCADE, side=Side.LONG, score=71.0,
        reasons=["longs liquidated"], opened_ms=now, updated_ms=now, receivers=[],
    )  # fmt: skip
    event = AlertEvent(id=f"{alert.id}.1", kind=EventKind.OPENED, ts_ms=now, alert=alert)
    return (await redis.xadd(keys.ALERT_EVENTS, {"e": encode_alert(event)})).decode()
