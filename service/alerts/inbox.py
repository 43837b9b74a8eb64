"""A local webhook receiver that checks Standard Webhooks signatures: what ``deleverage demo``
sends its alerts to, and a way to rehearse a receiver before pointing the service at a real
one.

``async with WebhookInbox(secret).serving() as url`` listens on 127.0.0.1 (a free port) and
keeps what arrives in :attr:`WebhookInbox.received`, newest last. Each message is answered
``204`` when its signature verifies (or no secret is set), ``401`` otherwise, and ``204``
again for a ``webhook-id`` already seen, without keeping it twice: what a receiver should do
with at-least-once delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .payload import verify

MAX_SKEW_S = 300
"""Signatures older or newer than this are refused (replay protection, as the spec says)."""


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process's owner handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Delivered:
    webhook_id: str
    body: dict[str, Any]


@dataclass
class WebhookInbox:
    secret: str | None = None
    received: list[Delivered] = field(default_factory=list)
    refused: int = 0
    """Messages whose signature or timestamp did not verify."""
    duplicates: int = 0

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        raw = await request.body()
        msg_id = request.headers.get("webhook-id", "")
        if self.secret is not None and not self._verified(request, msg_id, raw):
            self.refused += 1
            return Response(status_code=401)
        if any(d.webhook_id == msg_id for d in self.received):
            self.duplicates += 1
            return Response(status_code=204)
        try:
            body = json.loads(raw)
        except ValueError:
            return Response(status_code=400)
        self.received.append(Delivered(msg_id, body))
        return Response(status_code=204)

    def _verified(self, request: Request, msg_id: str, raw: bytes) -> bool:
        assert self.secret is not None
        try:
            ts = int(request.headers.get("webhook-timestamp", ""))
        except ValueError:
            return False
        if abs(time.time() - ts) > MAX_SKEW_S:
            return False
        return verify(self.secret, msg_id, ts, raw, request.headers.get("webhook-signature", ""))

    @contextlib.asynccontextmanager
    async def serving(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve until the block ends; yields the URL to configure (``http://host:port/hook``)."""
        config = uvicorn.Config(
            self.app(), host=host, port=port, log_level="warning", access_log=False,
            lifespan="off", loop="none",
        )  # fmt: skip
        server = _QuietServer(config)
        task = asyncio.create_task(server.serve(), name="webhook-inbox")
        try:
            while not server.started:  # uvicorn has no started event
                if task.done():
                    task.result()  # a bind error surfaces here
                await asyncio.sleep(0.02)
            bound = server.servers[0].sockets[0].getsockname()
            yield f"http://{bound[0]}:{bound[1]}/hook"
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await task
