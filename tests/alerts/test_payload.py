"""Payload formats and Standard Webhooks signing (pure)."""

from __future__ import annotations

import json

from service.alerts import AlertEngine, AlertRule, Observation, WebhookReceiver, sign, verify
from service.alerts.model import AlertEvent
from service.alerts.payload import body
from service.detect.model import State
from service.events import Side


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
    doc = json.loads(body(receiver("generic"), opened(), "https://api.example/"))
    assert doc["type"] == "alert.opened"
    assert doc["data"]["state"] == "cascade"
    assert doc["data"]["side"] == "long"
    assert doc["data"]["links"]["self"].startswith("https://api.example/v1/alerts/")


def test_slack_has_text_fallback_and_blocks() -> None:
    doc = json.loads(body(receiver("slack"), opened(), None))
    assert doc["text"].startswith("Opened: cascade (longs) on bybit BTCUSDT")
    assert [b["type"] for b in doc["blocks"]] == ["section", "section", "context"]


def test_discord_has_embeds_and_no_mentions() -> None:
    doc = json.loads(body(receiver("discord"), opened(), None))
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
