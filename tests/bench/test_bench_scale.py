"""``deleverage bench scale`` at a tiny size: the JSON's shape and its invariants (every event
stored once, the shards' shares a partition), on a single Redis and on a cluster; and the
blaster's pre-framed path, which a real websocket client must read as the frames sent.
Timings are never checked."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from click.testing import CliRunner
from websockets.asyncio.client import connect

from service.bench.blaster import Blaster, ws_text_frame
from service.bench.frames import OKX, OKX_LIQUIDATIONS, Frame
from service.cli import main

RUN_KEYS = {
    "command", "events_stored", "events_lost", "wall_s", "send_s", "events_per_s",
    "shard_cpu_s", "shard_events_share", "shard_cpu_us_per_event", "shard_busy_share",
    "shard_cpu_wait_share", "redis_cpu_s", "redis_cpu_us_per_event", "redis_busy_share",
    "redis_cpu_wait_share", "generator_cpu_us_per_event",
    "machine_busy_cores", "other_busy_cores", "latency_ms",
}  # fmt: skip


def _bench(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["bench", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 70_000])
def test_a_prepared_frame_has_the_header_rfc_6455_gives_its_length(size: int) -> None:
    framed = ws_text_frame(b"x" * size)
    assert framed[0] == 0x81  # FIN, text
    if size < 126:
        assert (framed[1], len(framed)) == (size, 2 + size)
    elif size < 65_536:
        assert framed[1] == 126
        assert int.from_bytes(framed[2:4], "big") == size
        assert len(framed) == 4 + size
    else:
        assert framed[1] == 127
        assert int.from_bytes(framed[2:10], "big") == size
        assert len(framed) == 10 + size


@pytest.mark.integration
async def test_blast_delivers_each_frame_in_order_to_every_subscriber_of_its_topic() -> None:
    mark = "mark-price:BTC-USDT-SWAP"
    sub_all = json.dumps({"op": "subscribe", "args": [{"channel": "liquidation-orders",
                                                       "instType": "SWAP"}]})  # fmt: skip
    sub_mark = json.dumps(
        {"op": "subscribe", "args": [{"channel": "mark-price", "instId": "BTC-USDT-SWAP"}]}
    )
    # Sizes on both sides of the 126 and 65,536 length encodings, and many chunks' worth.
    texts = [json.dumps({"n": i, "pad": "y" * (i * 37 % 70_000)}) for i in range(300)]
    frames = [Frame(OKX, OKX_LIQUIDATIONS if i % 2 else mark, t) for i, t in enumerate(texts)]
    async with (
        Blaster() as blaster,
        connect(blaster.url(OKX), max_size=2**24) as a,
        connect(blaster.url(OKX), max_size=2**24) as b,
    ):
        await a.send(sub_all)
        await a.send(sub_mark)
        await b.send(sub_all)
        await blaster.wait_subscribed(frames, 10)
        await blaster.blast(blaster.prepare(frames))
        async with asyncio.timeout(20):
            got_a = [await a.recv() for _ in range(len(frames))]
            got_b = [await b.recv() for _ in range(len(frames) // 2)]
    assert got_a == texts
    assert got_b == [f.text for f in frames if f.topic == OKX_LIQUIDATIONS]


def _check(out: dict[str, Any], store: str, counts: list[int]) -> None:
    assert out["scenario"] == "scale"
    assert out["store"] == store
    load = out["load"]
    assert load["venue"] == OKX
    assert load["swaps"] > 0
    assert load["events_sent"] >= 1000
    assert out["floor"]["cpu_us_per_event"] > 0
    assert set(out["runs"]) == {str(n) for n in counts}
    for n, run in out["runs"].items():
        assert set(run) == RUN_KEYS, set(run) ^ RUN_KEYS
        assert run["command"] == f"run --only collect --shard I/{n}"
        assert run["events_lost"] == 0, run
        assert run["events_stored"] == load["events_sent"]
        assert len(run["shard_cpu_s"]) == len(run["shard_events_share"]) == int(n)
        assert sum(run["shard_events_share"]) == pytest.approx(1.0, abs=0.01)
        assert run["events_per_s"] > 0
        assert run["redis_cpu_us_per_event"] > 0
        assert set(run["latency_ms"]) == {"p50", "p90", "p99", "max"}
        assert 0 <= run["latency_ms"]["p50"] <= run["latency_ms"]["max"]
    assert set(out["speedup"]) == set(out["runs"])
    assert out["speedup"]["1"] == 1.0


@pytest.mark.integration
def test_scale_on_a_single_redis_stores_every_event_once_through_1_and_2_shards() -> None:
    out = _bench("scale", "--events", "1500", "--shards", "1", "--shards", "2",
                 "--liquidations", "3")  # fmt: skip
    _check(out, "single", [1, 2])
    assert set(out["runs"]["1"]["redis_cpu_s"]) == {"single"}


@pytest.mark.integration
def test_scale_on_a_cluster_stores_every_event_once_and_reads_every_node() -> None:
    out = _bench("scale", "--events", "1000", "--shards", "1", "--store", "cluster")
    _check(out, "cluster", [1])
    roles = sorted(k.split(":")[0] for k in out["runs"]["1"]["redis_cpu_s"])
    assert roles == ["primary"] * 3 + ["replica"] * 3
