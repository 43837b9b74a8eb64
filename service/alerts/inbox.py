"""A local webhook receiver that checks Standard Webhooks signatures: what ``deleverage demo``
sends its alerts to, and a way to rehearse a receiver before pointing the service at a real
one.

``async with WebhookInbox(secret).serving() as url`` listens on 127.0.0.1 (a free port) and
keeps what arrives in :attr:`WebhookInbox.received`, newest last. Each message is answered
``204`` when its signature verifies (or no secret is set), ``401`` otherwise, and ``204``
again for a ``webhook-id`` already seen, without keeping it twice: what a receiver should do
with at-least-once delivery.

Whatever a client sends costs a bounded amount of memory and never a ``500``: headers are
checked before the body is read (``401``, and the connection is closed unread); a body over
:attr:`WebhookInbox.max_body_bytes` is refused with ``413``, at once when its
``Content-Length`` says so, otherwise as soon as the bytes read pass the cap (chunked
bodies included); a body still arriving after :attr:`WebhookInbox.body_timeout_s` is
refused with ``408``. Only then is the signature checked on the raw bytes, and only a
verified body is parsed: one that is not a JSON object (malformed, too deeply nested) gets
``400``.
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
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .payload import sign, verify

MAX_SKEW_S = 300
"""Signatures older or newer than this are refused (replay protection, as the spec says)."""
MAX_BODY_BYTES = 256 * 1024
"""The largest body read. The service's biggest message (a group of 10 alerts) is ~20 KB."""
BODY_TIMEOUT_S = 10.0
"""A body still arriving after this long is refused (a slow sender holds nothing longer)."""
MAX_CONNECTIONS = 64
"""Beyond this many open connections uvicorn answers ``503``: with the cap, a memory bound."""
_MAX_ID_CHARS = 256
_MAX_SIGNATURE_CHARS = 4096
_MAX_TIMESTAMP_CHARS = 20

_CLOSE = {"connection": "close"}
"""On a refusal before the body is read: uvicorn then closes instead of draining the rest."""


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process's owner handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _BodyTooLarge(Exception):
    pass


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
    rejected: int = 0
    """Messages refused for their size, their pace or their content (4xx other than 401)."""
    max_body_bytes: int = MAX_BODY_BYTES
    body_timeout_s: float = BODY_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.secret is not None:
            sign(self.secret, "probe", 0, b"")  # a secret that is not base64 fails here, not later

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        msg_id = request.headers.get("webhook-id", "")
        ts = self._signed_at(request, msg_id)
        if self.secret is not None and ts is None:
            self.refused += 1
            return Response(status_code=401, headers=_CLOSE)
        if _declares_more(request.headers.get("content-length", ""), self.max_body_bytes):
            return self._reject(413)
        try:
            async with asyncio.timeout(self.body_timeout_s):
                raw = await self._read_capped(request)
        except _BodyTooLarge:
            return self._reject(413)
        except TimeoutError:
            return self._reject(408)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it
        if self.secret is not None:
            assert ts is not None
            if not verify(self.secret, msg_id, ts, raw, request.headers["webhook-signature"]):
                self.refused += 1
                return Response(status_code=401)
        if any(d.webhook_id == msg_id for d in self.received):
            self.duplicates += 1
            return Response(status_code=204)
        body = _json_object(raw)
        if body is None:
            self.rejected += 1
            return Response(status_code=400)
        self.received.append(Delivered(msg_id, body))
        return Response(status_code=204)

    def _signed_at(self, request: Request, msg_id: str) -> int | None:
        """The signature's timestamp when the headers can carry a valid signature, else
        ``None``: what can be refused without reading a byte of the body."""
        signature = request.headers.get("webhook-signature", "")
        if not msg_id or len(msg_id) > _MAX_ID_CHARS or len(signature) > _MAX_SIGNATURE_CHARS:
            return None
        if not any(s.startswith("v1,") for s in signature.split()):
            return None
        raw_ts = request.headers.get("webhook-timestamp", "")
        if len(raw_ts) > _MAX_TIMESTAMP_CHARS:  # a float cannot hold it: OverflowError
            return None
        try:
            ts = int(raw_ts)
        except ValueError:
            return None
        return ts if abs(time.time() - ts) <= MAX_SKEW_S else None

    async def _read_capped(self, request: Request) -> bytes:
        """The body, read as it comes; raises :class:`_BodyTooLarge` as soon as it passes the
        cap, whatever the headers said."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def _reject(self, status: int) -> Response:
        self.rejected += 1
        return Response(status_code=status, headers=_CLOSE)

    @contextlib.asynccontextmanager
    async def serving(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve until the block ends; yields the URL to configure (``http://host:port/hook``)."""
        config = uvicorn.Config(
            self.app(), host=host, port=port, log_level="warning", access_log=False,
            lifespan="off", loop="none", limit_concurrency=MAX_CONNECTIONS,
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


def _declares_more(content_length: str, cap: int) -> bool:
    """Whether a ``Content-Length`` (digits: h11 checked them) exceeds ``cap``, without
    converting thousands of digits."""
    digits = content_length.lstrip("0")
    return len(digits) > len(str(cap)) or int(digits or 0) > cap


def _json_object(raw: bytes) -> dict[str, Any] | None:
    """``raw`` as a JSON object, or ``None`` when it is not one (malformed, not UTF-8, a
    number too long to convert, nesting deeper than the interpreter's recursion limit)."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return doc if isinstance(doc, dict) else None
