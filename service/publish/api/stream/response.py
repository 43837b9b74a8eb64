"""One client's ``text/event-stream`` response: what :meth:`Hub.open` gave it, then its
mailbox as it fills, a heartbeat when nothing else is sent, until it disconnects or is
dropped.

Everything waiting in the mailbox goes in one write. A client that reads nothing for
:data:`SEND_TIMEOUT_S` is given up on: the response ends unfinished (the server closes the
connection); one that reads slowly is dropped by the hub when its mailbox overflows or ages
(a send waiting for its socket is then given up), and is sent why (``dropped``) before the
response ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, Final

import structlog
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ....aio import reap
from ..params import rfc3339
from .events import control
from .hub import Hub, Opening, Subscriber

log = structlog.get_logger(__name__)

MEDIA_TYPE: Final = "text/event-stream"
RETRY_MS: Final = 2000
"""How long an ``EventSource`` waits before it reconnects (sent first)."""
SEND_TIMEOUT_S: Final = 60.0
CHUNK_FRAMES: Final = 500
"""Frames per write while sending what a client missed."""


class EventStreamResponse(Response):
    """The SSE response of one client of the :class:`Hub`."""

    media_type = MEDIA_TYPE

    def __init__(self, hub: Hub, opening: Opening, heartbeat_s: float) -> None:
        # As StreamingResponse does: no body, so no Content-Length.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._hub = hub
        self._opening = opening
        self._heartbeat_s = heartbeat_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sender = asyncio.ensure_future(self._send_all(send))
        watcher = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait((sender, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._hub.leave(self._opening.subscriber)
            await reap(sender, watcher)

    async def _send_all(self, send: Send) -> None:
        opening = self._opening
        sub = opening.subscriber
        start = {"type": "http.response.start", "status": self.status_code,
                 "headers": self.raw_headers}  # fmt: skip
        if not await _timed(send, start):
            return
        first = [f"retry: {RETRY_MS}\n\n".encode()]
        if opening.reset:
            first.append(control("reset", reason="the events after Last-Event-ID are no "
                                 "longer kept; the current scores follow", at=_now()))  # fmt: skip
        frames = first + opening.frames
        for i in range(0, len(frames), CHUNK_FRAMES):
            if not await _body(send, b"".join(frames[i : i + CHUNK_FRAMES])):
                return
        while True:
            try:
                async with asyncio.timeout(self._heartbeat_s):
                    await sub.wake.wait()
            except TimeoutError:
                if not await _body(send, control("heartbeat", at=_now())):
                    return
                continue
            if sub.dropped is not None:
                await _body(send, control("dropped", reason=sub.dropped, at=_now()), more=False)
                return
            if not await _unless_dropped(_body(send, b"".join(sub.take())), sub):
                if sub.dropped is not None:
                    await _body(send, control("dropped", reason=sub.dropped, at=_now()), more=False)
                return


async def _unless_dropped(sending: Coroutine[Any, Any, bool], sub: Subscriber) -> bool:
    """``sending``, given up when the hub drops the client meanwhile (False then). The
    server waits for the client's socket before it writes a body (uvicorn: a paused
    transport is drained first), so a send given up there has written nothing: the client
    resumes exactly after the last event it got."""
    task = asyncio.ensure_future(sending)
    gone = asyncio.ensure_future(sub.gone.wait())
    try:
        await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if task.done():
        return task.result()
    await reap(task)
    return False


async def _body(send: Send, data: bytes, more: bool = True) -> bool:
    return await _timed(send, {"type": "http.response.body", "body": data, "more_body": more})


async def _timed(send: Send, message: dict[str, object]) -> bool:
    """Send, or False when the client has not read for :data:`SEND_TIMEOUT_S`."""
    try:
        async with asyncio.timeout(SEND_TIMEOUT_S):
            await send(message)
    except TimeoutError:
        log.info("stream: client not reading; given up", timeout_s=SEND_TIMEOUT_S)
        return False
    return True


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _now() -> str:
    return rfc3339(int(time.time() * 1000))
