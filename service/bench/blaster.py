"""A loopback websocket server that sends a plan of frames as fast as its clients take them.

Each venue is a path prefix (``ws://127.0.0.1:<port>/<venue>``, and anything under it: the
venue's own connection paths, ``/binance_usdm/stream``, ``/bybit/linear``...). A client
subscribes as it would at the venue (:func:`.frames.topics_of` reads its requests); each
frame then goes to the connection that subscribed to its topic, in plan order, with the
backpressure of ``websockets`` (``send`` waits while the client does not read). Nothing is
acknowledged and pings are read and ignored: the collectors need neither.

:meth:`Blaster.blast` is the cheap way (``bench scale``, where the load generator shares two
cores with what it measures): every frame is framed once, before the clock starts, into one
byte string per connection, and written in 64 KiB chunks straight to the connection's
transport; a frame whose topic several connections subscribed to (an all-market channel that
every collector shard subscribes to) goes to each of them, as a venue sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from .frames import VENUES, Frame, topics_of


class Blaster:
    """``async with Blaster() as b``: :meth:`url` per venue, then :meth:`wait_subscribed`
    and :meth:`send`."""

    def __init__(self) -> None:
        self._server: Server | None = None
        self._routes: dict[tuple[str, str], ServerConnection] = {}
        self._subscribers: dict[tuple[str, str], list[ServerConnection]] = {}
        self._changed = asyncio.Event()
        self.port = 0

    async def __aenter__(self) -> Blaster:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, ping_interval=None, compression=None, max_size=2**24
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url(self, venue: str) -> str:
        return f"ws://127.0.0.1:{self.port}/{venue}"

    async def _handle(self, conn: ServerConnection) -> None:
        path = conn.request.path if conn.request is not None else "/"
        venue = path.strip("/").split("/", 1)[0]
        if venue not in VENUES:
            await conn.close(1008, f"unknown venue {venue!r}")
            return
        mine: list[tuple[str, str]] = []
        try:
            async for message in conn:
                text = message if isinstance(message, str) else message.decode()
                for topic in topics_of(venue, text):
                    self._routes[(venue, topic)] = conn
                    self._subscribers.setdefault((venue, topic), []).append(conn)
                    mine.append((venue, topic))
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            for key in mine:
                if self._routes.get(key) is conn:
                    del self._routes[key]
                subscribers = self._subscribers.get(key, [])
                if conn in subscribers:
                    subscribers.remove(conn)

    async def wait_subscribed(self, frames: Iterable[Frame], timeout_s: float) -> None:
        """Wait until every topic of ``frames`` has a connection; raises ``TimeoutError``."""
        wanted = {(f.venue, f.topic) for f in frames}
        async with asyncio.timeout(timeout_s):
            while missing := wanted - self._routes.keys():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._changed.wait()
                del missing

    async def send(self, frames: Sequence[Frame]) -> float:
        """Send every frame on its subscriber's connection; returns the seconds it took.
        Raises ``LookupError`` for a topic nobody subscribed to (call
        :meth:`wait_subscribed` first) and ``ConnectionClosed`` when a client went away."""
        routes = self._routes
        t0 = time.perf_counter()
        for f in frames:
            await routes[(f.venue, f.topic)].send(f.text)
        return time.perf_counter() - t0

    def missing(self, frames: Iterable[Frame]) -> list[str]:
        """Topics of ``frames`` without a subscriber (for an error message)."""
        return sorted(
            {f"{f.venue}:{f.topic}" for f in frames} - {f"{v}:{t}" for v, t in self._routes}
        )

    def prepare(self, frames: Sequence[Frame]) -> list[tuple[ServerConnection, list[bytes]]]:
        """Each subscriber's frames as websocket text frames (server to client: unmasked),
        joined into chunks of about :data:`CHUNK` bytes that end on a frame boundary, in
        plan order. Call it after :meth:`wait_subscribed`, before the clock starts."""
        parts: dict[ServerConnection, list[bytes]] = {}
        for f in frames:
            framed = ws_text_frame(f.text.encode())
            for conn in self._subscribers[(f.venue, f.topic)]:
                parts.setdefault(conn, []).append(framed)
        out = []
        for conn, framed_list in parts.items():
            chunks, size, current = [], 0, []
            for framed in framed_list:
                current.append(framed)
                size += len(framed)
                if size >= CHUNK:
                    chunks.append(b"".join(current))
                    current, size = [], 0
            if current:
                chunks.append(b"".join(current))
            out.append((conn, chunks))
        return out

    async def blast(self, prepared: list[tuple[ServerConnection, list[bytes]]]) -> float:
        """Write what :meth:`prepare` made, every connection at once, each as fast as its
        client reads (the transport's flow control); returns the seconds it took."""
        t0 = time.perf_counter()
        await asyncio.gather(*(_pump(conn, chunks) for conn, chunks in prepared))
        return time.perf_counter() - t0


CHUNK = 1 << 16


def ws_text_frame(payload: bytes) -> bytes:
    """One final text frame (RFC 6455, 5.2) as a server sends it: no mask."""
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 1 << 16:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + payload


async def _pump(conn: ServerConnection, chunks: list[bytes]) -> None:
    """Write ``chunks`` to ``conn``'s transport, waiting while the client's buffers are full.
    Another frame of the connection's (a pong) may only come between two chunks: each ends
    on a frame boundary."""
    transport = conn.transport
    for chunk in chunks:
        if transport.is_closing():
            raise ConnectionClosedError(None, None)
        transport.write(chunk)
        await conn.drain()
