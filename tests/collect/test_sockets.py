"""The collectors' sockets keep a bounded kernel receive buffer and lose nothing when the
reader falls behind."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import time

import pytest
from picows import WSParsedURL
from picows.url import parse_url
from picows.websockets import connect
from picows.websockets.exceptions import ConnectionClosed

from service.collect.sockets import RCVBUF_BYTES, socket_factory

FRAMES = 60_000
PAYLOAD = b'{"e":"forceOrder","o":{"s":"BTCUSDT","S":"SELL","q":"0.010","p":"65000.1","i":%06d}}'
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _frame(i: int) -> bytes:
    payload = PAYLOAD % i
    return bytes([0x81, len(payload)]) + payload  # a server's unmasked text frame


async def _blast(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A websocket server that answers the upgrade, then sends :data:`FRAMES` numbered frames
    as fast as the socket takes them, then a normal close."""
    request = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    for start in range(0, FRAMES, 1000):
        writer.write(b"".join(_frame(i) for i in range(start, start + 1000)))
        await writer.drain()
    writer.write(bytes([0x88, 2, 0x03, 0xE8]))
    await writer.drain()
    await reader.read()  # until the client closes
    writer.close()


async def test_a_stalled_reader_keeps_a_bounded_receive_buffer_and_gets_every_frame() -> None:
    server = await asyncio.start_server(_blast, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sockets: list[socket.socket] = []

    async def factory(url: WSParsedURL) -> socket.socket:
        sock = await socket_factory(url)
        sockets.append(sock)
        return sock

    got: list[int] = []
    rcvbuf: set[int] = set()
    async with server, connect(
        f"ws://127.0.0.1:{port}", compression=None, socket_factory=factory
    ) as ws:  # fmt: skip
        try:
            while True:
                frame = await ws.recv(decode=False)
                got.append(int(frame[-7:-2]))
                if len(got) % 10_000 == 0:
                    time.sleep(0.1)  # noqa: ASYNC251  # the event loop falls behind: the kernel buffers
                    rcvbuf.add(sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        except ConnectionClosed:
            pass
    assert got == list(range(FRAMES))  # nothing lost or reordered
    # Linux doubles the value asked for, and autotuning never grows it past that.
    assert rcvbuf
    assert max(rcvbuf) <= 2 * RCVBUF_BYTES


async def test_a_host_that_refuses_raises_the_connection_error() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # bound, not listening: the connection is refused
        with pytest.raises(ConnectionRefusedError):
            await socket_factory(parse_url(f"ws://127.0.0.1:{port}/"))
