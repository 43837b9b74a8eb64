"""What receivers get: the generic JSON payload (signed), Slack blocks, Discord embeds.

Generic payload (Standard Webhooks' recommended envelope)::

    {"type": "alert.opened", "timestamp": "2026-11-24T05:31:02.120Z",
     "data": {"id": "9f3c...-1795491796123", "fingerprint": "9f3c...", "rule": "cascade",
              "scope": "asset", "key": "BTC", "venue": null, "symbol": null, "asset": "BTC",
              "state": "cascade", "peak_state": "cascade", "side": "long", "score": 91.5,
              "reasons": ["OI -3.2% in 5m"], "status": "open",
              "opened_at": "...", "updated_at": "...", "resolved_at": null,
              "links": {"self": "https://api.example.com/v1/alerts/9f3c...-1795491796123"}}}

``type`` is ``alert.opened|escalated|repeated|resolved``. A generic receiver configured with
``group_max`` > 1 may get ``{"type": "alert.group", "timestamp": ..., "data": [<envelope>...]}``
instead: each element is one of the envelopes above. Slack and Discord messages carry up to
10 notifications (one section or embed each). Headers: ``webhook-id`` (the same
on every retry: drop duplicates on it), ``webhook-timestamp`` (unix seconds of the attempt)
and ``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`` keyed by the
base64-decoded part of the receiver's ``whsec_`` secret. Verify on the raw body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from ..config_alerts import WebhookReceiver, decode_secret
from .model import Alert, AlertEvent, EventKind

_COLOURS = {"calm": 0x2ECC71, "building": 0xF1C40F, "unwinding": 0xE67E22, "cascade": 0xE74C3C}


def rfc3339(ts_ms: int) -> str:
    """As ``publish.api.params.rfc3339`` (not imported: ``config`` imports this package, and
    ``publish.api`` imports ``config``)."""
    seconds, millis = divmod(ts_ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


def rfc3339_or_none(ts_ms: int | None) -> str | None:
    return None if ts_ms is None else rfc3339(ts_ms)


def _key_bytes(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else decode_secret(secret)


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value (Standard Webhooks, ``v1`` = HMAC-SHA256);
    ``secret``: ``whsec_<base64>``, or the key it decodes to (as the settings hold it)."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key_bytes(secret), content, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def verify(secret: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """True if one of the space-separated ``v1,`` signatures in ``header`` matches."""
    expected = sign(secret, msg_id, timestamp, body).encode()
    return any(hmac.compare_digest(expected, s.encode()) for s in header.split())


def alert_data(alert: Alert, public_url: str | None) -> dict[str, Any]:
    base = (public_url or "").rstrip("/")
    return {
        "id": alert.id, "fingerprint": alert.fingerprint, "rule": alert.rule,
        "scope": alert.scope, "key": alert.key, "venue": alert.venue, "symbol": alert.symbol,
        "asset": alert.asset, "state": alert.state.value, "peak_state": alert.peak_state.value,
        "side": alert.side.value if alert.side else None, "score": alert.score,
        "reasons": alert.reasons, "status": alert.status,
        "opened_at": rfc3339(alert.opened_ms), "updated_at": rfc3339(alert.updated_ms),
        "resolved_at": rfc3339_or_none(alert.resolved_ms),
        "links": {"self": f"{base}/v1/alerts/{alert.id}"},
    }  # fmt: skip


def envelope(event: AlertEvent, public_url: str | None) -> dict[str, Any]:
    """One notification as a generic receiver (and MQTT) gets it."""
    return {
        "type": f"alert.{event.kind.value}",
        "timestamp": rfc3339(event.ts_ms),
        "data": alert_data(event.alert, public_url),
    }


def body(receiver: WebhookReceiver, events: list[AlertEvent], public_url: str | None) -> bytes:
    """The request body for ``receiver`` carrying ``events`` (at least one): serialised once,
    so the signed bytes are the sent ones."""
    if not events:
        raise ValueError("a message needs at least one alert event")
    doc: dict[str, Any]
    if receiver.kind == "slack":
        doc = _slack(events, public_url)
    elif receiver.kind == "discord":
        doc = _discord(events, public_url)
    elif len(events) == 1:
        doc = envelope(events[0], public_url)
    else:
        doc = {
            "type": "alert.group",
            "timestamp": rfc3339(max(e.ts_ms for e in events)),
            "data": [envelope(e, public_url) for e in events],
        }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _headline(event: AlertEvent) -> str:
    a = event.alert
    where = (
        f"{a.venue} {a.symbol}" if a.symbol else (a.asset or "market")
    )  # untrusted venue text: no markup around it beyond plain text
    side = f" ({a.side.value}s)" if a.side else ""
    if event.kind is EventKind.RESOLVED:
        return f"Resolved: {a.rule} on {where}, score {a.score:.0f}"
    return f"{event.kind.value.capitalize()}: {a.state.value}{side} on {where}, score {a.score:.0f}"


def _summary(events: list[AlertEvent]) -> str:
    if len(events) == 1:
        return _headline(events[0])
    return f"{len(events)} deleverage alerts: " + "; ".join(_headline(e) for e in events)


def _slack(events: list[AlertEvent], public_url: str | None) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    for event in events:
        data = alert_data(event.alert, public_url)
        text = _headline(event)
        reasons = "; ".join(event.alert.reasons) or "no reasons given"
        context: list[dict[str, Any]] = [
            {"type": "plain_text", "text": f"rule {data['rule']} · {data['updated_at']}"}
        ]
        link = data["links"]["self"]
        if link.startswith("http"):  # Slack links need an absolute URL (``alerts.public_url``)
            context.append({"type": "mrkdwn", "text": f"<{link}|alert {data['id']}>"})
        blocks += [
            {"type": "section", "text": {"type": "plain_text", "text": text}},
            {"type": "section", "text": {"type": "plain_text", "text": reasons}},
            {"type": "context", "elements": context},
        ]
        if len(events) > 1:
            blocks.append({"type": "divider"})
    return {"text": _summary(events)[:3000], "blocks": blocks[:50]}


def _discord(events: list[AlertEvent], public_url: str | None) -> dict[str, Any]:
    embeds: list[dict[str, Any]] = []
    for event in events:
        a = event.alert
        data = alert_data(a, public_url)
        fields = [
            {"name": "state", "value": a.state.value, "inline": True},
            {"name": "score", "value": f"{a.score:.1f}", "inline": True},
            {"name": "rule", "value": a.rule, "inline": True},
        ]
        if a.reasons:
            reasons = "\n".join(a.reasons)[:1024]
            fields.append({"name": "reasons", "value": reasons, "inline": False})
        embed: dict[str, Any] = {
            "title": _headline(event)[:256],
            "color": _COLOURS.get(a.state.value, 0x95A5A6),
            "timestamp": data["updated_at"],
            "fields": fields,
            "footer": {"text": f"alert {a.id}"},
        }
        if data["links"]["self"].startswith("http"):
            embed["url"] = data["links"]["self"]
        embeds.append(embed)
    return {
        "content": _summary(events)[:2000],
        "embeds": embeds[:10],
        "allowed_mentions": {"parse": []},
    }
