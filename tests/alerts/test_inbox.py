"""The local receiver the demo uses: it keeps what verifies, refuses what does not, and keeps a
redelivered message once. Whatever a client sends costs it a bounded amount of memory and is
answered with a 4xx, never a 500: checked with real HTTP on loopback."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.alerts.inbox import MAX_BODY_BYTES, WebhookInbox
from service.alerts.payload import sign

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"type":"alert.opened","data":{"id":"a"}}'
MB = 1024 * 1024


def headers(
    msg_id: str, secret: str = SECRET, ts: int | None = None, body: bytes = BODY
) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


class Counted:
    """A chunked request body of ``total`` bytes that counts what the client got to send."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.sent = total, b"x" * chunk, 0

    def __iter__(self) -> Iterator[bytes]:
        while self.sent < self.total:
            self.sent += len(self.chunk)
            yield self.chunk


async def post_blocking(
    url: str, body: Counted | bytes, msg_headers: dict[str, str]
) -> httpx.Response:
    """POST from a blocking client in a thread (a ``Counted`` body goes chunked). An asyncio
    client cannot show an early answer: when the server closes a connection it stopped
    reading, the write fails and asyncio drops the connection, answer unread; a blocking
    socket still reads it."""
    return await asyncio.to_thread(httpx.post, url, content=body, headers=msg_headers, timeout=10)


async def raw_exchange(url: str, request_head: bytes) -> bytes:
    """Send a request's head and no body; return everything the server says until it closes."""
    u = httpx.URL(url)
    reader, writer = await asyncio.open_connection(u.host, u.port)
    try:
        writer.write(request_head)
        await writer.drain()
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()


def head(url: str, fields: dict[str, str]) -> bytes:
    lines = [
        f"POST {httpx.URL(url).path} HTTP/1.1",
        "host: inbox",
        *(f"{k}: {v}" for k, v in fields.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_signed_messages_are_kept_once_and_bad_ones_refused() -> None:
    inbox = WebhookInbox(SECRET)
    async with inbox.serving() as url, httpx.AsyncClient() as http:
        first = await http.post(url, content=BODY, headers=headers("msg_1"))
        again = await http.post(url, content=BODY, headers=headers("msg_1"))
        forged = await http.post(url, content=BODY, headers=headers("msg_2", "whsec_AAAA"))
        stale = await http.post(url, content=BODY, headers=headers("msg_3", ts=1_000_000))
        huge_ts = headers("msg_4") | {"webhook-timestamp": "9" * 400}
        absurd = await http.post(url, content=BODY, headers=huge_ts)
    answers = [r.status_code for r in (first, again, forged, stale, absurd)]
    assert answers == [204, 204, 401, 401, 401]
    assert [d.webhook_id for d in inbox.received] == ["msg_1"]
    assert inbox.received[0].body["type"] == "alert.opened"
    assert (inbox.duplicates, inbox.refused) == (1, 3)


def test_a_secret_that_is_not_base64_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="base64"):
        WebhookInbox("whsec_S3cretPa55w0rd!!")


async def test_a_declared_oversize_body_is_refused_before_a_byte_of_it_is_sent() -> None:
    inbox = WebhookInbox(SECRET)
    async with inbox.serving() as url:
        signed = headers("msg_big") | {"content-length": str(256 * MB)}
        too_large = await raw_exchange(url, head(url, signed))
        absurd = await raw_exchange(url, head(url, signed | {"content-length": "9" * 5000}))
        unsigned = await raw_exchange(url, head(url, {"content-length": str(256 * MB)}))
        stale = headers("msg_old", ts=1_000_000) | {"content-length": str(MAX_BODY_BYTES)}
        stale_answer = await raw_exchange(url, head(url, stale))
    # Each answer came, and the connection closed, while the client had sent no body at all.
    assert too_large.startswith(b"HTTP/1.1 413 ")
    assert absurd.startswith((b"HTTP/1.1 413 ", b"HTTP/1.1 400 "))
    assert unsigned.startswith(b"HTTP/1.1 401 ")
    assert stale_answer.startswith(b"HTTP/1.1 401 ")
    assert inbox.received == []


async def test_a_chunked_oversize_body_is_cut_off_at_the_cap() -> None:
    inbox = WebhookInbox(SECRET)
    forged_sig = headers("msg_forged", "whsec_AAAA")
    async with inbox.serving() as url, httpx.AsyncClient(timeout=10) as http:
        forged = Counted(64 * MB)
        answer = await post_blocking(url, forged, forged_sig)
        after = await http.post(url, content=BODY, headers=headers("msg_ok"))
    assert answer.status_code == 413
    assert forged.sent < 32 * MB  # the server stopped reading: the client could not send it all
    assert after.status_code == 204
    assert [d.webhook_id for d in inbox.received] == ["msg_ok"]


async def test_a_body_that_stops_arriving_is_refused_in_time() -> None:
    inbox = WebhookInbox(SECRET, body_timeout_s=0.5)
    async with inbox.serving() as url:
        partial = head(url, headers("msg_slow") | {"content-length": str(len(BODY))}) + BODY[:5]
        t0 = time.monotonic()
        answer = await raw_exchange(url, partial)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - t0 < 3
    assert inbox.received == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-lists"),
        pytest.param(b'{"a":' * 40_000 + b"1" + b"}" * 40_000, id="nested-objects"),
        pytest.param(b"1" + b"0" * 10_000, id="huge-number"),
        pytest.param(b'["alert.opened"]', id="not-an-object"),
        pytest.param(b'{"type": "alert.op', id="truncated"),
        pytest.param(b'{"type": "\xff\xfe"}', id="not-utf8"),
    ],
)
async def test_a_signed_body_that_is_not_a_json_object_gets_400(body: bytes) -> None:
    assert len(body) <= MAX_BODY_BYTES
    inbox = WebhookInbox(SECRET)
    async with inbox.serving() as url, httpx.AsyncClient() as http:
        bad = await http.post(url, content=body, headers=headers("msg_bad", body=body))
        good = await http.post(url, content=BODY, headers=headers("msg_good"))
    assert (bad.status_code, good.status_code) == (400, 204)
    assert [d.webhook_id for d in inbox.received] == ["msg_good"]
    assert inbox.rejected == 1


SERVE = """
import asyncio, sys
from service.alerts.inbox import WebhookInbox

async def main() -> None:
    async with WebhookInbox(sys.argv[1]).serving() as url:
        print(url, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")  # pragma: no cover


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_the_receivers_memory_does_not_grow_with_what_it_is_sent() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVE, SECRET, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            url = (await proc.stdout.readline()).decode().strip()
        async with httpx.AsyncClient(timeout=10) as http:
            warm = await http.post(url, content=BODY, headers=headers("msg_warm"))
            before = peak_rss_bytes(proc.pid)
            chunked = await post_blocking(url, Counted(64 * MB), headers("msg_x"))
            unsigned = await post_blocking(url, Counted(64 * MB), {})
            declared = await post_blocking(url, b"x" * (8 * MB), headers("msg_y"))
            after = peak_rss_bytes(proc.pid)
    finally:
        proc.kill()
        await proc.wait()
    assert (warm.status_code, chunked.status_code) == (204, 413)
    assert (unsigned.status_code, declared.status_code) == (401, 413)
    assert after - before < 4 * MB, f"peak RSS grew by {(after - before) / MB:.1f} MB"
