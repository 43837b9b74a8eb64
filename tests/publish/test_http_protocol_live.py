"""The API's HTTP layer (:mod:`service.publish.api.http`), on the service's own API over raw
sockets: a request head over 16 KB is refused with 431 and the connection closed, however it
arrives; heads under the bound are served, several on one kept-alive connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from service.config import load_settings
from service.publish.api.http import MAX_HEAD_BYTES
from service.runtime import Component, Runtime
from service.venues import REGISTRY

pytestmark = pytest.mark.integration

Address = tuple[str, int]


@pytest.fixture
async def api(redis_url: str) -> AsyncIterator[Address]:
    settings = load_settings(set(REGISTRY), [], redis_url=redis_url, api={"port": 0})
    runtime = Runtime(settings, {Component.API})  # the API alone: no venue is collected
    task = asyncio.create_task(runtime.run())
    try:
        url = urlsplit(await asyncio.wait_for(runtime.serving(), 30))
        assert url.hostname
        assert url.port
        yield url.hostname, url.port
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _exchange(address: Address, chunks: list[bytes], pause_s: float = 0.0) -> bytes:
    """Send ``chunks`` (``pause_s`` apart, until the server closes), then read until it
    closes; what it sent before a reset is kept."""
    reader, writer = await asyncio.open_connection(*address)
    received = bytearray()
    try:
        for chunk in chunks:
            if reader.at_eof():
                break
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(pause_s)
        async with asyncio.timeout(10):
            while data := await reader.read(65536):
                received += data
    except (ConnectionResetError, BrokenPipeError):
        pass  # refused and closed while this side still wrote
    finally:
        writer.close()
    return bytes(received)


def _get(path: str = "/healthz", pad: int = 0, close: bool = True) -> bytes:
    head = f"GET {path} HTTP/1.1\r\nHost: api\r\n"
    if pad:
        head += f"X-Pad: {'a' * pad}\r\n"
    head += f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
    return head.encode()


@pytest.mark.parametrize(
    "how", ["one header at once", "one header in 1 KB pieces", "a long request line"]
)
async def test_a_request_head_over_the_bound_is_refused_with_431(api: Address, how: str) -> None:
    big = MAX_HEAD_BYTES + 1024
    long_line = how == "a long request line"
    request = _get(f"/healthz?{'q' * big}") if long_line else _get(pad=big)
    if how == "one header in 1 KB pieces":
        chunks = [request[i : i + 1024] for i in range(0, len(request), 1024)]
        answer = await _exchange(api, chunks, pause_s=0.01)
    else:
        answer = await _exchange(api, [request])
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert answer.count(b"HTTP/1.1") == 1  # and closed: nothing served after it


async def test_heads_under_the_bound_are_served_on_one_kept_alive_connection(
    api: Address,
) -> None:
    pad = MAX_HEAD_BYTES * 3 // 4  # three of them are over the bound together, not each
    requests = [_get(pad=pad, close=False), _get(pad=pad, close=False), _get(pad=pad)]
    answer = await _exchange(api, requests, pause_s=0.05)
    assert answer.count(b"HTTP/1.1 200 OK") == 3, answer[:300]


async def test_pipelined_requests_in_one_read_count_their_heads_each_on_its_own(
    api: Address,
) -> None:
    """Ten whole requests and half of the next in one write (over 16 KB in all, each head
    under 2 KB), then the rest of it: eleven answers."""
    requests = [_get(pad=1500, close=False) for _ in range(10)] + [_get(pad=1500)]
    last = requests[-1]
    first = b"".join(requests[:-1]) + last[: len(last) // 2]
    assert len(first) > MAX_HEAD_BYTES
    answer = await _exchange(api, [first, last[len(last) // 2 :]], pause_s=0.1)
    assert answer.count(b"HTTP/1.1 200 OK") == 11, answer[-300:]


async def _head_of(address: Address, request: bytes) -> bytes:
    """The response's head to ``request`` (its body may never end: the live stream)."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()


@pytest.mark.parametrize("version", ["1.0", "1.1"])
async def test_the_live_stream_is_framed_as_the_clients_http_version_reads_it(
    api: Address, version: str
) -> None:
    """The stream has no length: HTTP/1.1 gets it in chunks, HTTP/1.0 (which cannot read
    chunks: nginx proxies in it by default) until the connection closes."""
    request = f"GET /v1/stream HTTP/{version}\r\nHost: api\r\n\r\n".encode()
    head = (await _head_of(api, request)).lower()
    assert head.startswith(b"http/1.1 200 "), head
    chunked = b"transfer-encoding: chunked" in head
    assert chunked is (version == "1.1"), head
