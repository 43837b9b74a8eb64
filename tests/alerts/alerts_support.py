"""A real webhook receiver on loopback (asyncio streams, HTTP/1.1 keep-alive) that verifies
every Standard Webhooks signature and answers from a script, then 200."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from service.alerts import verify

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    """Poll ``check`` (Redis state has no change notification here) until true."""
    async with asyncio.timeout(timeout_s):
        while not await check():  # noqa: ASYNC110 - polling a store, not awaiting a task
            await asyncio.sleep(0.02)


@dataclass
class Received:
    status: int
    webhook_id: str
    timestamp: int
    signature_ok: bool
    body: dict[str, Any]


@dataclass
class Receiver:
    """``answers``: (status, headers) per request, in order; 200 once they run out.
    ``default`` replaces that 200."""

    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    default: int = 200
    hang_s: list[float] = field(default_factory=list)
    """Per request, how long to wait before answering (a slow receiver), in order."""
    secret: str = SECRET
    received: list[Received] = field(default_factory=list)
    server: asyncio.Server | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/hook"

    async def start(self) -> Receiver:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def delivered(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    async def wait_for(self, n_delivered: int, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.delivered()) < n_delivered:
                self.arrived.clear()
                await self.arrived.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request_line := await reader.readline():
                if not request_line.strip():
                    continue
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                if self.hang_s:
                    await asyncio.sleep(self.hang_s.pop(0))
                status, extra = self.answers.pop(0) if self.answers else (self.default, {})
                msg_id, ts = headers.get("webhook-id", ""), int(headers["webhook-timestamp"])
                ok = verify(self.secret, msg_id, ts, raw, headers.get("webhook-signature", ""))
                self.received.append(Received(status, msg_id, ts, ok, json.loads(raw)))
                head = f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                writer.write((head + "\r\n").encode())
                await writer.drain()
                self.arrived.set()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
