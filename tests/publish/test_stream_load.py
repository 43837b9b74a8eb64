"""``/v1/stream`` under load, against the running demo (``deleverage demo``: the simulators
playing the long-side deleveraging, a private Redis, the whole service in its own process):
200 clients for 2 minutes, 10 of them reading a few hundred bytes a second.

* The fast clients' latency, from each event's stamp (its id: the time Redis stored the
  entry) to its receipt, stays within 250 ms at the 99th percentile.
* Every fast client gets every event (the same count as the others), none is dropped.
* Each slow client is dropped by the service and told why (its stream ends with a
  ``dropped`` event, read once it drains what its socket held).
* The service's own figures (``/metrics``) agree: 200 clients, 10 dropped.

The clients are plain sockets (HTTP/1.0: the body is the stream itself) scanning what
arrives for ids: 200 clients parsing events in Python would measure the test, not the
service. The one long test of the suite (about 2.5 minutes).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from procs_support import free_port, start_demo, stop

CLIENTS, SLOW = 200, 10
DURATION_S = 120.0
SLOW_BYTES_PER_S = 400
"""A slow client's reading rate: far below the stream's (tens of kB/s during the unwind)."""
SLOW_DRAIN_AFTER_S = 100.0
"""Then, or once the service counts every slow client dropped (within ``stream_max_lag_s``,
30 s, of falling behind), it reads as fast as it can, to find out why its stream ended."""
P99_MS = 250.0
ID = re.compile(rb"\nid: ([0-9]{13,15})-")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


@dataclass
class Client:
    slow: bool
    events: int = 0
    snapshot: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    tail: bytes = b""
    ended: bool = False
    dropped_reason: bytes = b""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    port = free_port()
    proc = start_demo(log, port)
    try:
        deadline = time.monotonic() + 60
        while "in a browser" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the demo did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc, 30)


async def _open(address: str, slow: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = address.split(":")
    sock = socket.socket()
    if slow:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
    writer.write(f"GET /v1/stream HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return reader, writer


async def _run(
    client: Client, address: str, until: float, started: float, dropped: asyncio.Event
) -> None:
    reader, writer = await _open(address, client.slow)
    try:
        while time.time() < until:
            drain = (
                client.slow and not dropped.is_set() and time.time() - started < SLOW_DRAIN_AFTER_S
            )
            size = SLOW_BYTES_PER_S // 4 if drain else 1 << 16
            try:
                async with asyncio.timeout(max(0.01, until - time.time())):
                    chunk = await reader.read(size)
            except TimeoutError:
                break
            if not chunk:
                client.ended = True
                break
            _scan(client, chunk, time.time() * 1000)
            if drain:
                await asyncio.sleep(0.25)
    finally:
        writer.close()


def _scan(client: Client, chunk: bytes, now_ms: float) -> None:
    """Count the events in ``chunk`` (a frame may straddle two chunks) and time the live
    ones from their ids."""
    data = client.tail + chunk
    end = data.rfind(b"\n\n")
    if end < 0:
        client.tail = data
        return
    frames, client.tail = data[: end + 2], data[end + 2 :]
    n = frames.count(b"\n\n")
    stamps = ID.findall(b"\n" + frames)
    client.events += len(stamps)
    client.snapshot += n - len(stamps)
    if not client.slow:
        client.latencies_ms += [now_ms - int(ms) for ms in stamps]
    if b"event: dropped" in frames:
        client.dropped_reason = frames[frames.rfind(b"event: dropped") :]


async def _watch_drops(http: httpx.AsyncClient, dropped: asyncio.Event) -> None:
    """Set ``dropped`` once the service counts every slow client dropped."""
    name = "deleverage_stream_clients_dropped_total"
    while _metric((await http.get("/metrics")).text, name) < SLOW:  # noqa: ASYNC110 (polls HTTP)
        await asyncio.sleep(1)
    dropped.set()


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    assert match, name
    return float(match[1])


@pytest.mark.timeout(300)
async def test_200_clients_10_slow_for_two_minutes(demo: str) -> None:
    clients = [Client(slow=i < SLOW) for i in range(CLIENTS)]
    started = time.time()
    until = started + DURATION_S
    dropped = asyncio.Event()
    tasks = [asyncio.create_task(_run(c, demo, until, started, dropped)) for c in clients]
    await asyncio.sleep(5)
    async with httpx.AsyncClient(base_url=f"http://{demo}", timeout=10) as http:
        connected = _metric((await http.get("/metrics")).text, "deleverage_stream_clients")
        watch = asyncio.create_task(_watch_drops(http, dropped))
        await asyncio.gather(*tasks)
        watch.cancel()
        metrics = (await http.get("/metrics")).text
    fast, slow = clients[SLOW:], clients[:SLOW]
    latencies = sorted(x for c in fast for x in c.latencies_ms)
    counts = sorted(c.events for c in fast)
    p50, p99 = (latencies[int(len(latencies) * q)] for q in (0.5, 0.99))
    print(
        f"\n{len(fast)} fast clients: events each min {counts[0]} median "
        f"{statistics.median(counts):.0f} max {counts[-1]}; latency p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms ({len(latencies)} samples)\n"
        f"{len(slow)} slow clients: events before dropped "
        f"{[c.events for c in slow]}, ended {[c.ended for c in slow]}\n"
        f"service: clients at 5 s {connected:.0f}, events "
        f"{_metric(metrics, 'deleverage_stream_events_total'):.0f}, dropped "
        f"{_metric(metrics, 'deleverage_stream_clients_dropped_total'):.0f}"
    )
    assert connected == CLIENTS
    assert counts[0] > 5000, counts  # the unwind was streamed
    assert counts[-1] - counts[0] <= counts[-1] * 0.01, counts  # each got (about) everything
    assert not any(c.ended or c.dropped_reason for c in fast)
    assert p99 <= P99_MS, (p50, p99)
    for c in slow:
        assert c.ended, "a slow client was not disconnected"
        assert b"fell behind" in c.dropped_reason, c.dropped_reason[:300]
    assert _metric(metrics, "deleverage_stream_clients_dropped_total") == SLOW
