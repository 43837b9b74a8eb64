"""Alerts: rules (configuration), a pure lifecycle engine, a durable Redis outbox and signed
webhook delivery (generic Standard Webhooks JSON, Slack, Discord)."""

from ..config_alerts import AlertRule, AlertSettings, WebhookReceiver
from ..scores import Scope
from .deliver import Delivery
from .engine import AlertEngine
from .model import Alert, AlertEvent, EventKind, Observation, fingerprint
from .payload import sign, verify
from .service import AlertService

__all__ = [
    "Alert",
    "AlertEngine",
    "AlertEvent",
    "AlertRule",
    "AlertService",
    "AlertSettings",
    "Delivery",
    "EventKind",
    "Observation",
    "Scope",
    "WebhookReceiver",
    "fingerprint",
    "sign",
    "verify",
]
