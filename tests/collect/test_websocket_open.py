"""A collector stopped while a connection is opening or closing leaves no socket behind:
picows aborts a cancelled handshake's transport only on its TLS path, so a plain connection
whose caller was cancelled mid-handshake stayed open and unread, and the venue's sends to it
blocked (a simulator that never stopped after its collector had)."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from service.collect.collector import open_websocket

pytestmark = pytest.mark.integration


async def test_a_handshake_cancelled_midway_leaves_no_connection_open() -> None:
    release, handled, closed = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def hold(_: ServerConnection, __: Request) -> None:
        await release.wait()  # the upgrade is answered only when the test says so

    async def handler(conn: ServerConnection) -> None:
        handled.set()
        await conn.wait_closed()
        closed.set()

    async with serve(handler, "127.0.0.1", 0, process_request=hold) as server:
        port = server.sockets[0].getsockname()[1]
        opening = asyncio.create_task(open_websocket(f"ws://127.0.0.1:{port}/", open_timeout=10))
        await asyncio.sleep(0.3)  # connected, the upgrade request sent, no answer yet
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        release.set()  # the handshake completes after its caller was cancelled
        await asyncio.wait_for(handled.wait(), 5)
        await asyncio.wait_for(closed.wait(), 5)  # ...and the connection is dropped at once
