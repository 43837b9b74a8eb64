"""MQTT output: topic tokens and bodies (pure), then a real Mosquitto on loopback (one private
broker per module, on a free port): retained scores on connect, QoS 1 alerts, ``online`` and
``offline`` (a clean stop, and the last will after ``kill -9``), reconnect after a broker
restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import msgspec
import pytest
from procs_support import free_port
from pydantic import ValidationError

from service.events import Side
from service.publish.mqtt import MqttPublisher, MqttSettings, Topics
from service.publish.mqtt.payloads import retained_messages
from service.publish.mqtt.topics import check_prefix, token, untoken
from service.scores import Pressure, Scope, State

REPO = Path(__file__).resolve().parents[2]
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
WAIT_S = 10.0


def pressure(
    venue: str = "binance_usdm",
    symbol: str = "BTCUSDT",
    asset: str = "BTC",
    score: float = 72.5,
    state: State = State.CASCADE,
    side: Side | None = Side.LONG,
) -> Pressure:
    return Pressure(
        venue=venue,
        symbol=symbol,
        asset=asset,
        score=score,
        state=state,
        side=side,
        updated_ms=1_700_000_000_000,
        since_ms=1_699_999_990_000,
        forced_share=0.6,
        data_quality=1.0,
        features={"oi_change_base_pct": -3.2},
        reasons=["OI -3.2% in 5m"],
    )


class StaticSource:
    def __init__(self, items: list[Pressure], scopes: list[Pressure] | None = None) -> None:
        self.items = items
        self.scopes = scopes or []

    def pressures(self) -> list[Pressure]:
        return list(self.items)

    def scope_pressures(self) -> list[Pressure]:
        return list(self.scopes)


# --- pure -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("BTCUSDT", "BTCUSDT"),
        ("BTC-USDT-SWAP", "BTC-USDT-SWAP"),
        ("BTC/USDT:USDT", "BTC%2FUSDT:USDT"),
        ("a+b#c", "a%2Bb%23c"),
        ("with space", "with%20space"),
        ("nul\x00", "nul%00"),
        ("50%", "50%25"),
        ("$SYS", "%24SYS"),
    ],
)
def test_token_escapes_what_mqtt_gives_a_meaning_and_round_trips(raw: str, escaped: str) -> None:
    assert token(raw) == escaped
    assert untoken(token(raw)) == raw
    assert not set(token(raw)) & {"/", "+", "#", " ", "\x00"}


def test_token_refuses_an_empty_level() -> None:
    with pytest.raises(ValueError, match="empty"):
        token("")


@pytest.mark.parametrize(
    ("prefix", "why"),
    [
        ("", "non-empty"),
        ("/a/v1", "leading"),
        ("a/v1/", "trailing"),
        ("$SYS/x", "reserved"),
        ("a/+/v1", "must not contain"),
        ("a/#", "must not contain"),
        ("a b", "must not contain"),
        ("a//v1", "empty level"),
    ],
)
def test_prefix_with_wildcards_or_empty_levels_is_refused(prefix: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_prefix(prefix)


def test_topics_are_versioned_and_one_level_per_token() -> None:
    t = Topics("deleverage/v1")
    assert t.status == "deleverage/v1/status"
    assert t.alerts == "deleverage/v1/alerts"
    assert t.market == "deleverage/v1/pressure/market"
    assert t.instrument("okx", "BTC/USDT") == "deleverage/v1/pressure/instrument/okx/BTC%2FUSDT"
    assert t.asset("BTC") == "deleverage/v1/pressure/asset/BTC"
    assert t.liquidity("okx", "BTC/USDT") == "deleverage/v1/liquidity/okx/BTC%2FUSDT"
    assert t.all_liquidity == "deleverage/v1/liquidity/#"


def test_retained_bodies_cover_instrument_asset_and_market() -> None:
    t = Topics("p/v1")
    items = [
        pressure(),
        pressure(venue="bybit", score=40.0, state=State.UNWINDING),
        pressure(symbol="ETHUSDT", asset="ETH", score=10.0, state=State.CALM, side=None),
    ]
    out = {k: json.loads(v) for k, v in retained_messages(t, items).items()}
    assert set(out) == {
        t.instrument("binance_usdm", "BTCUSDT"),
        t.instrument("bybit", "BTCUSDT"),
        t.instrument("binance_usdm", "ETHUSDT"),
        t.asset("BTC"),
        t.asset("ETH"),
        t.market,
    }
    inst = out[t.instrument("binance_usdm", "BTCUSDT")]
    assert inst["v"] == 1
    assert (inst["score"], inst["state"], inst["side"]) == (72.5, "cascade", "long")
    btc = out[t.asset("BTC")]
    assert btc["v"] == 2
    assert btc["score_max"] == 72.5
    assert (btc["basis"], btc["state"], btc["score"]) == ("instruments", "cascade", 72.5)
    assert btc["venues"] == ["binance_usdm", "bybit"]
    assert btc["states"] == {"calm": 0, "building": 0, "unwinding": 1, "cascade": 1}
    market = out[t.market]
    assert market["instruments"] == 3
    assert market["assets"] == 2
    assert market["top"] == {"venue": "binance_usdm", "symbol": "BTCUSDT", "score": 72.5}


def scope_score(
    scope: Scope, asset: str, score: float, state: State, side: Side | None
) -> Pressure:
    return msgspec.structs.replace(
        pressure(venue="*", symbol="*", asset=asset, score=score, state=state, side=side),
        scope=scope,
        reasons=[f"{asset} weighted"],
    )


def test_asset_and_market_bodies_carry_the_detectors_scope_scores() -> None:
    # one instrument of BTC in a cascade, its larger sibling calm: the detector's
    # open-interest weighted BTC score is an unwinding; the market is calm
    t = Topics("p/v1")
    items = [
        pressure(score=80.0, state=State.CASCADE),
        pressure(venue="bybit", score=20.0, state=State.CALM, side=None),
        pressure(symbol="ETHUSDT", asset="ETH", score=10.0, state=State.CALM, side=None),
    ]
    scopes = [
        scope_score(Scope.ASSET, "BTC", 55.0, State.UNWINDING, Side.LONG),
        scope_score(Scope.MARKET, "*", 30.0, State.CALM, None),
        scope_score(Scope.ASSET, "SOL", 60.0, State.UNWINDING, Side.LONG),  # no instrument
    ]
    out = {k: json.loads(v) for k, v in retained_messages(t, items, scopes).items()}
    btc = out[t.asset("BTC")]
    assert (btc["basis"], btc["score"], btc["state"], btc["side"]) == (
        "detector",
        55.0,
        "unwinding",
        "long",
    )
    assert btc["reasons"] == ["BTC weighted"]
    assert btc["score_max"] == 80.0  # the instruments stay as context
    assert btc["states"]["cascade"] == 1
    eth = out[t.asset("ETH")]  # not scored by the detector yet: its worst instrument
    assert (eth["basis"], eth["state"]) == ("instruments", "calm")
    market = out[t.market]
    assert (market["basis"], market["state"], market["side"], market["score"]) == (
        "detector",
        "calm",
        None,
        30.0,
    )
    assert market["top"]["score"] == 80.0
    assert t.asset("SOL") not in out  # a scope score alone makes no message


LIQUIDITY = {
    "oi_change_base_pct": -3.2, "spread_bp": 3.4, "spread_z": 9.0, "book_top_usd": 45_000.0,
    "book_top_z": -4.1, "depth_1pct_usd": 1.1e7, "depth_1pct_exact": 1.0,
    "depth_1pct_change_pct": -45.0, "depth_1pct_z": -7.2, "volume_1m_buy_usd": 4.2e6,
    "volume_1m_sell_usd": 6.9e6, "volume_z": -2.4, "fragile": 1.0,
}  # fmt: skip
"""A Bybit instrument's score features with every liquidity figure the detector gives."""


def test_a_scored_instrument_with_liquidity_figures_has_a_retained_liquidity_body() -> None:
    t = Topics("p/v1")
    thin = msgspec.structs.replace(pressure(venue="bybit"), features=LIQUIDITY)
    # only a top of book: no depth followed, no trade for a minute; not fragile
    top_only = {"spread_bp": 0.8, "spread_z": None, "book_top_usd": 2.4e6, "fragile": 0.0}
    eth = msgspec.structs.replace(
        pressure(venue="bybit", symbol="ETHUSDT", asset="ETH"), features=top_only
    )
    out = {k: json.loads(v) for k, v in retained_messages(t, [pressure(), thin, eth]).items()}
    assert t.liquidity("bybit", "BTCUSDT") == "p/v1/liquidity/bybit/BTCUSDT"
    assert out[t.liquidity("bybit", "BTCUSDT")] == {
        "v": 1, "venue": "bybit", "symbol": "BTCUSDT", "asset": "BTC",
        "updated_ms": 1_700_000_000_000, "spread_bp": 3.4, "spread_z": 9.0,
        "book_top_usd": 45_000.0, "book_top_z": -4.1, "depth_1pct_usd": 1.1e7,
        "depth_1pct_exact": True, "depth_1pct_change_pct": -45.0, "depth_1pct_z": -7.2,
        "volume_1m_buy_usd": 4.2e6, "volume_1m_sell_usd": 6.9e6, "volume_z": -2.4,
        "fragile": True,
    }  # fmt: skip
    body = out[t.liquidity("bybit", "ETHUSDT")]
    assert (body["spread_bp"], body["book_top_usd"], body["fragile"]) == (0.8, 2.4e6, False)
    assert (body["depth_1pct_usd"], body["depth_1pct_exact"]) == (None, None)
    assert t.liquidity("binance_usdm", "BTCUSDT") not in out  # its ticker carries no book
    assert out[t.instrument("bybit", "BTCUSDT")]["features"] == LIQUIDITY  # the score as is


def test_mqtt_is_off_without_a_host_and_secrets_stay_secret() -> None:
    assert not MqttSettings().enabled
    s = MqttSettings(host="broker", username="u", password="hunter2")
    assert s.enabled
    assert "hunter2" not in repr(s)
    assert "hunter2" not in s.model_dump_json()
    with pytest.raises(ValidationError, match="topic_prefix"):
        MqttSettings(host="broker", topic_prefix="a/#")
    with pytest.raises(ValidationError, match="without username"):
        MqttSettings(host="broker", password="x")


# --- a real broker ----------------------------------------------------------------------------


class Broker:
    """A private Mosquitto on loopback that a test can stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / f"mosquitto-{self.port}.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            if self.proc.poll() is not None:
                pytest.fail(f"mosquitto exited with {self.proc.returncode}")
            subprocess.run(["sleep", "0.05"], check=True)
        pytest.fail("mosquitto did not listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    if not os.path.exists(MOSQUITTO):  # pragma: no cover - mosquitto is part of the test bed
        pytest.fail(f"mosquitto not found at {MOSQUITTO}")
    b = Broker(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def prefix() -> str:
    """A prefix of the test's own: retained messages of other tests stay out of sight."""
    return f"test-{uuid.uuid4().hex[:8]}/v1"


def settings(port: int, prefix: str, **kw: object) -> MqttSettings:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "topic_prefix": prefix,
        "publish_interval_s": 0.1,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.2,
        "timeout_s": 5.0,
    }
    return MqttSettings.model_validate(base | kw)


@contextlib.asynccontextmanager
async def running(publisher: MqttPublisher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(publisher.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for(predicate: object, what: str) -> None:
    assert callable(predicate)
    async with asyncio.timeout(WAIT_S):
        while not predicate():  # noqa: ASYNC110 - polls the publisher's counters
            await asyncio.sleep(0.02)


async def collect(port: int, topic: str, count: int, qos: int = 0) -> list[aiomqtt.Message]:
    """The first ``count`` messages on ``topic`` for a fresh subscriber (retained ones first)."""
    got: list[aiomqtt.Message] = []
    async with (
        aiomqtt.Client("127.0.0.1", port, identifier=f"sub-{uuid.uuid4().hex[:8]}") as sub,
        asyncio.timeout(WAIT_S),
    ):
        await sub.subscribe(topic, qos=qos)
        async for message in sub.messages:
            got.append(message)
            if len(got) == count:
                break
    return got


pytestmark_integration = pytest.mark.integration


@pytestmark_integration
async def test_a_new_subscriber_gets_the_retained_scores_and_online(
    broker: Broker, prefix: str
) -> None:
    source = StaticSource(
        [pressure(), pressure(venue="okx", symbol="BTC/USDT:USDT")],
        [scope_score(Scope.ASSET, "BTC", 55.0, State.UNWINDING, Side.LONG)],
    )
    publisher = MqttPublisher(settings(broker.port, prefix), source)
    topics = publisher.topics
    async with running(publisher):
        await wait_for(lambda: publisher.scores_published_total >= 4, "scores published")
        # instrument x2, asset BTC, market: all retained for a subscriber that comes later
        messages = await collect(broker.port, topics.all_pressure, 4)
        status = await collect(broker.port, topics.status, 1)
    by_topic = {m.topic.value: m for m in messages}
    assert set(by_topic) == {
        topics.instrument("binance_usdm", "BTCUSDT"),
        topics.instrument("okx", "BTC/USDT:USDT"),
        topics.asset("BTC"),
        topics.market,
    }
    assert all(m.retain for m in messages)
    body = json.loads(by_topic[topics.instrument("okx", "BTC/USDT:USDT")].payload)
    assert body["symbol"] == "BTC/USDT:USDT"
    assert body["state"] == "cascade"
    asset = json.loads(by_topic[topics.asset("BTC")].payload)
    assert (asset["basis"], asset["state"], asset["score"]) == ("detector", "unwinding", 55.0)
    market = json.loads(by_topic[topics.market].payload)
    assert (market["basis"], market["state"]) == ("instruments", "cascade")  # not scored yet
    assert status[0].payload == b"online"
    assert status[0].retain


@pytestmark_integration
async def test_a_changed_score_is_republished_and_a_vanished_one_cleared(
    broker: Broker, prefix: str
) -> None:
    source = StaticSource([pressure()])
    publisher = MqttPublisher(settings(broker.port, prefix), source)
    topic = publisher.topics.instrument("binance_usdm", "BTCUSDT")
    async with (
        running(publisher),
        aiomqtt.Client("127.0.0.1", broker.port, identifier=f"sub-{prefix[5:13]}") as sub,
        asyncio.timeout(WAIT_S),
    ):
        await sub.subscribe(topic, qos=1)
        messages = aiter(sub.messages)
        assert json.loads((await anext(messages)).payload)["score"] == 72.5
        source.items = [pressure(score=12.0, state=State.CALM, side=None)]
        assert json.loads((await anext(messages)).payload)["state"] == "calm"
        source.items = []
        cleared = await anext(messages)
    assert cleared.payload == b""


@pytestmark_integration
async def test_liquidity_state_is_retained_per_instrument_and_cleared_with_its_figures(
    broker: Broker, prefix: str
) -> None:
    thin = msgspec.structs.replace(pressure(venue="bybit"), features=LIQUIDITY)
    source = StaticSource([pressure(), thin])
    publisher = MqttPublisher(settings(broker.port, prefix), source)
    topics = publisher.topics
    topic = topics.liquidity("bybit", "BTCUSDT")
    async with running(publisher):
        # two instrument scores, the asset, the market and one liquidity state
        await wait_for(lambda: publisher.scores_published_total >= 5, "retained published")
        retained = await collect(broker.port, topics.all_liquidity, 1)
        async with (
            aiomqtt.Client("127.0.0.1", broker.port, identifier=f"sub-{prefix[5:13]}") as sub,
            asyncio.timeout(WAIT_S),
        ):
            await sub.subscribe(topic, qos=1)
            messages = aiter(sub.messages)
            assert json.loads((await anext(messages)).payload)["fragile"] is True  # retained
            steady = {**LIQUIDITY, "fragile": 0.0, "depth_1pct_change_pct": -5.0}
            source.items = [pressure(), msgspec.structs.replace(thin, features=steady)]
            changed = json.loads((await anext(messages)).payload)
            assert (changed["fragile"], changed["depth_1pct_change_pct"]) == (False, -5.0)
            # the score carries no liquidity figure any more: its state is cleared
            source.items = [pressure(), msgspec.structs.replace(thin, features={})]
            cleared = await anext(messages)
    assert [(m.topic.value, m.retain) for m in retained] == [(topic, True)]
    body = json.loads(retained[0].payload)
    assert (body["depth_1pct_usd"], body["depth_1pct_z"], body["volume_1m_sell_usd"]) == (
        1.1e7, -7.2, 6.9e6
    )  # fmt: skip
    assert cleared.payload == b""


@pytestmark_integration
async def test_alerts_arrive_with_qos_1_and_are_not_retained(broker: Broker, prefix: str) -> None:
    publisher = MqttPublisher(settings(broker.port, prefix), StaticSource([]))
    alert = {"type": "alert.opened", "venue": "bybit", "symbol": "BTCUSDT", "score": 81.0}
    async with (
        running(publisher),
        aiomqtt.Client("127.0.0.1", broker.port, identifier=f"sub-{prefix[5:13]}") as sub,
    ):
        await sub.subscribe(publisher.topics.alerts, qos=1)
        await wait_for(lambda: publisher.connected, "connected")
        publisher.publish_alert(alert)
        async with asyncio.timeout(WAIT_S):
            message = await anext(aiter(sub.messages))
    assert message.qos == 1
    assert not message.retain
    assert json.loads(message.payload) == alert
    assert publisher.alerts_published_total == 1
    assert publisher.pending_alerts == 0
    # not retained: a later subscriber sees nothing on the alerts topic
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await collect(broker.port, publisher.topics.alerts, 1)


@pytestmark_integration
async def test_alerts_queued_while_the_broker_is_down_are_sent_after_connecting(
    tmp_path: Path, prefix: str
) -> None:
    own = Broker(tmp_path)  # not started yet
    publisher = MqttPublisher(settings(own.port, prefix), StaticSource([pressure()]))
    try:
        async with running(publisher):
            publisher.publish_alert({"type": "alert.opened", "n": 1})
            await wait_for(lambda: publisher.connect_failures_total >= 2, "retrying")
            own.start()
            async with aiomqtt.Client("127.0.0.1", own.port, identifier="sub-late") as sub:
                await sub.subscribe(publisher.topics.alerts, qos=1)
                publisher.publish_alert({"type": "alert.opened", "n": 2})
                await wait_for(lambda: publisher.alerts_published_total == 2, "alerts sent")
                # the queued alert may have gone before this subscription; the new one has not
                got = await asyncio.wait_for(anext(aiter(sub.messages)), WAIT_S)
                assert json.loads(got.payload)["n"] in (1, 2)
            # the broker restarts without persistence: the scores are published again
            before = publisher.scores_published_total  # instrument, asset, market: 3 topics
            own.stop()
            await wait_for(lambda: not publisher.connected, "disconnected")
            own.start()
            await wait_for(lambda: publisher.scores_published_total >= before + 3, "republished")
            assert publisher.connects_total == 2
            retained = await collect(own.port, publisher.topics.market, 1)
            assert retained[0].retain
    finally:
        own.stop()


@pytestmark_integration
async def test_a_clean_stop_publishes_offline(broker: Broker, prefix: str) -> None:
    publisher = MqttPublisher(settings(broker.port, prefix), StaticSource([]))
    async with running(publisher):
        await wait_for(lambda: publisher.connected, "connected")
    status = await collect(broker.port, publisher.topics.status, 1)
    assert status[0].payload == b"offline"
    assert status[0].retain


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from service.publish.mqtt import MqttPublisher, MqttSettings

    class Empty:
        def pressures(self):
            return []

        def scope_pressures(self):
            return []

    s = MqttSettings(host="127.0.0.1", port=int(sys.argv[1]), topic_prefix=sys.argv[2])
    asyncio.run(MqttPublisher(s, Empty()).run())
    """
)


@pytestmark_integration
async def test_the_broker_publishes_offline_when_the_publisher_is_killed(
    broker: Broker, prefix: str
) -> None:
    status_topic = Topics(prefix).status
    async with (
        aiomqtt.Client("127.0.0.1", broker.port, identifier=f"sub-{prefix[5:13]}") as sub,
        asyncio.timeout(WAIT_S),
    ):
        await sub.subscribe(status_topic, qos=1)
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, str(broker.port), prefix, cwd=REPO
        )
        try:
            messages = aiter(sub.messages)
            online = await anext(messages)
            assert online.payload == b"online"
            os.kill(child.pid, signal.SIGKILL)  # no clean disconnect: the will must fire
            await child.wait()
            offline = await anext(messages)
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
    assert offline.payload == b"offline"
    assert offline.qos == 1
    later = await collect(broker.port, status_topic, 1)
    assert later[0].payload == b"offline"
    assert later[0].retain
