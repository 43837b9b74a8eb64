"""The local receiver the demo uses: it keeps what verifies, refuses what does not, and keeps a
redelivered message once."""

from __future__ import annotations

import time

import httpx

from service.alerts.inbox import WebhookInbox
from service.alerts.payload import sign

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"type":"alert.opened","data":{"id":"a"}}'


def headers(msg_id: str, secret: str = SECRET, ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, BODY),
    }


async def test_signed_messages_are_kept_once_and_bad_ones_refused() -> None:
    inbox = WebhookInbox(SECRET)
    async with inbox.serving() as url, httpx.AsyncClient() as http:
        first = await http.post(url, content=BODY, headers=headers("msg_1"))
        again = await http.post(url, content=BODY, headers=headers("msg_1"))
        forged = await http.post(url, content=BODY, headers=headers("msg_2", "whsec_AAAA"))
        stale = await http.post(url, content=BODY, headers=headers("msg_3", ts=1_000_000))
    assert [r.status_code for r in (first, again, forged, stale)] == [204, 204, 401, 401]
    assert [d.webhook_id for d in inbox.received] == ["msg_1"]
    assert inbox.received[0].body["type"] == "alert.opened"
    assert (inbox.duplicates, inbox.refused) == (1, 2)
