"""Payload formats and Standard Webhooks signing (pure)."""

from __future__ import annotations

import json

from service.alerts import AlertEngine, AlertRule, Observation, WebhookReceiver, sign, verify
from service.alerts.model import AlertEvent
from service.alerts.payload import body
from service.events import Side
from service.scores import State


def test_signature_matches_the_standard_webhooks_example() -> None:
    # The example in standard-webhooks' reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    payload = b'{"test": 2432232314}'
    sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, payload)
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert verify(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, payload, f"v1,x {sig}")
    assert not verify(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, payload, sig)


def opened() -> AlertEvent:
    engine = AlertEngine([AlertRule(name="r", receivers=["x"])])
    obs = Observation(
        venue="bybit", symbol="BTCUSDT", asset="BTC", state=State.CASCADE, side=Side.LONG,
        score=91.0, ts_ms=1, reasons=["@everyone liq 9bp"],
    )  # fmt: skip
    return engine.observe(obs, 1_795_000_000_000)[0]


def receiver(kind: str) -> WebhookReceiver:
    return WebhookReceiver.model_validate({"name": "x", "url": "https://h.example/a", "kind": kind})


def test_generic_payload_is_the_documented_envelope() -> None:
    doc = json.loads(body(receiver("generic"), [opened()], "https://api.example/"))
    assert doc["type"] == "alert.opened"
    assert doc["data"]["state"] == "cascade"
    assert doc["data"]["side"] == "long"
    assert doc["data"]["links"]["self"].startswith("https://api.example/v1/alerts/")


def test_slack_has_text_fallback_and_blocks() -> None:
    doc = json.loads(body(receiver("slack"), [opened()], None))
    assert doc["text"].startswith("Opened: cascade (longs) on bybit BTCUSDT")
    assert [b["type"] for b in doc["blocks"]] == ["section", "section", "context"]


def test_discord_has_embeds_and_no_mentions() -> None:
    doc = json.loads(body(receiver("discord"), [opened()], None))
    assert doc["allowed_mentions"] == {"parse": []}
    assert doc["embeds"][0]["fields"][0] == {"name": "state", "value": "cascade", "inline": True}


def test_secret_is_never_in_repr() -> None:
    r = WebhookReceiver.model_validate(
        {"name": "x", "url": "https://h.example/a", "secret": "whsec_c2VjcmV0c2VjcmV0"}
    )
    assert "c2VjcmV0" not in repr(r)
    assert "c2VjcmV0" not in r.model_dump_json()


def test_url_is_masked_in_repr_and_dumps() -> None:
    r = WebhookReceiver.model_validate(
        {"name": "x", "url": "https://hooks.slack.com/services/T1/B2/tok", "kind": "slack"}
    )
    assert "tok" not in repr(r)
    assert r.model_dump(mode="json")["url"] == "https://hooks.slack.com/***"
    assert str(r.url).endswith("/tok")  # the delivery still has it


def several(n: int) -> list[AlertEvent]:
    rules = [AlertRule(name="r", receivers=["x"])]
    engine = AlertEngine(rules)
    events: list[AlertEvent] = []
    for i in range(n):
        obs = Observation(
            venue="okx", symbol=f"S{i}-USDT-SWAP", asset=f"S{i}", state=State.UNWINDING,
            side=Side.SHORT, score=60.0 + i, ts_ms=1, reasons=[f"reason {i}"],
        )  # fmt: skip
        events += engine.observe(obs, 1_795_000_000_000 + i)
    return events


def test_slack_groups_one_section_set_per_alert_with_a_summary_fallback() -> None:
    events = several(3)
    doc = json.loads(body(receiver("slack"), events, None))
    assert doc["text"].startswith("3 deleverage alerts: Opened: unwinding (shorts) on okx S0")
    sections = [b for b in doc["blocks"] if b["type"] == "section"]
    assert len(sections) == 6
    assert "S2-USDT-SWAP" in sections[4]["text"]["text"]


def test_discord_groups_one_embed_per_alert() -> None:
    doc = json.loads(body(receiver("discord"), several(4), None))
    assert [e["footer"]["text"][:6] for e in doc["embeds"]] == ["alert "] * 4
    assert doc["allowed_mentions"] == {"parse": []}


def test_a_generic_group_is_a_list_of_the_single_envelopes() -> None:
    events = several(2)
    doc = json.loads(body(receiver("generic"), events, None))
    assert doc["type"] == "alert.group"
    singles = [json.loads(body(receiver("generic"), [e], None)) for e in events]
    assert doc["data"] == singles


def test_group_size_defaults_follow_the_receiver_kind() -> None:
    assert receiver("generic").group_size() == 1
    assert receiver("slack").group_size() == 10
    r = WebhookReceiver.model_validate({"name": "x", "url": "https://h.example/a", "group_max": 5})
    assert r.group_size() == 5
