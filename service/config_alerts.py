"""Alert rules and webhook receivers, as configuration (validated at start-up); the engine
that applies them is :mod:`.alerts`.

A rule says *what* opens an alert (states, a minimum score, held for ``for_s``), *where*
(scope and filters), when it resolves (the state leaves the set **and** the score is at or
below ``resolve_score``: hysteresis), how often a still-open or flapping alert may notify
again (``repeat_interval_s``) and *who* hears it (receivers, by name).

Example (``config/*.yaml``)::

    alerts:
      receivers:
        - {name: ops, url: "https://hooks.example.com/deleverage", secret: "whsec_..."}
        - {name: desk, url: "https://hooks.slack.com/services/T/B/X", kind: slack}
      rules:
        - {name: cascade, scope: asset, states: [cascade], for_s: 5, receivers: [ops, desk]}
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretBytes,
    SecretStr,
    field_serializer,
    model_validator,
)

from .config_types import CredentialHttpUrl, HttpUrl
from .redact import url_secrets
from .scores import Scope, State

Seconds = Annotated[float, Field(gt=0)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
SECRET_PREFIX = "whsec_"


def decode_secret(text: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret ``whsec_<base64>``; ``ValueError`` (which
    does not quote the secret) if ``text`` is not one."""
    if not text.startswith(SECRET_PREFIX):
        raise ValueError("must be of the form whsec_<base64> (Standard Webhooks)")
    try:
        key = base64.b64decode(text.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ValueError("the part after whsec_ must be base64 (Standard Webhooks)") from None
    if not key:
        raise ValueError("the key after whsec_ is empty")
    return key


def _signing_key(value: Any) -> Any:
    """Decoded once, at start-up: a secret that cannot sign never reaches a delivery."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return decode_secret(value) if isinstance(value, str) else value


SigningSecret = Annotated[SecretBytes, BeforeValidator(_signing_key)]
"""A ``whsec_<base64>`` secret in configuration; the decoded HMAC key once validated."""


class _Model(BaseModel):
    # hide_input_in_errors: a ValidationError's str() never quotes a value (maybe a secret)
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class WebhookReceiver(_Model):
    """Where alerts are POSTed. The URL and secret come from configuration or the environment
    only and never appear in logs, API answers or metrics (the API shows the host)."""

    name: Name
    url: CredentialHttpUrl = Field(repr=False)
    """Secret for Slack and Discord (the token is in the path): dumped as its host only."""
    kind: Literal["generic", "slack", "discord"] = "generic"
    secret: SigningSecret | None = None
    """Standard Webhooks signing secret, ``whsec_<base64>`` (generic receivers), checked and
    decoded at start-up: holds the HMAC key."""
    timeout_s: Seconds = 10.0
    min_interval_s: Annotated[float, Field(ge=0)] | None = None
    """Least time between two messages; ``None``: 1 s for Slack and Discord, 0 otherwise."""
    group_max: Annotated[int, Field(ge=1, le=10)] | None = None
    """Most notifications per message; ``None``: 10 for Slack and Discord (blocks and embeds
    per message allow it), 1 for generic receivers (one signed event per request)."""

    def secret_values(self) -> list[str]:
        """The secrets this receiver holds, as text may show them (for the log filter)."""
        found = url_secrets(self.url)
        if self.kind != "generic":  # the path is the credential
            found += [str(self.url), self.url.path or ""]
        if self.secret is not None:
            key = base64.b64encode(self.secret.get_secret_value()).decode()
            found += [SECRET_PREFIX + key, key]
        return [s for s in found if s and s != "/"]

    def group_size(self) -> int:
        if self.group_max is not None:
            return self.group_max
        return 1 if self.kind == "generic" else 10

    @field_serializer("url")
    def _mask_url(self, url: AnyHttpUrl) -> str:
        return f"{url.scheme}://{url.host}/***"

    def interval_s(self) -> float:
        if self.min_interval_s is not None:
            return self.min_interval_s
        return 0.0 if self.kind == "generic" else 1.0


class AlertRule(_Model):
    name: Name
    scope: Scope = Scope.INSTRUMENT
    """``instrument``: one alert per venue and symbol. ``asset``: one per base asset, on the
    detector's asset score (every venue weighted by open interest). ``market``: one, on the
    detector's market score. With ``venues`` (or, for ``market``, ``assets``), an asset or
    market rule follows the worst instrument its filters let through instead: the detector
    keeps no score of a part of an asset or of the market."""
    venues: list[str] | None = None
    """Only these venues (``None``: all)."""
    assets: list[str] | None = None
    """Only these base assets, case-insensitive (``None``: all)."""
    states: list[State] = Field(default_factory=lambda: [State.UNWINDING, State.CASCADE])
    """The states that open an alert."""
    min_score: Annotated[float, Field(ge=0, le=100)] = 0.0
    """And the score must be at least this to open."""
    for_s: Annotated[float, Field(ge=0)] = 0.0
    """How long the condition must hold before the alert opens."""
    resolve_score: Annotated[float, Field(ge=0, le=100)] | None = None
    """Resolve only once the state left ``states`` and the score is at or below this
    (``None``: as soon as the state leaves)."""
    repeat_interval_s: Seconds = 1800.0
    """Least time between two notifications that open (or re-announce) this alert."""
    receivers: list[Name] = Field(min_length=1)
    """Names of ``alerts.receivers`` (each must be defined there)."""

    @model_validator(mode="after")
    def _check(self) -> AlertRule:
        if not self.states or State.CALM in self.states:
            raise ValueError("states must be non-empty and must not contain calm")
        if self.resolve_score is not None and 0 < self.min_score < self.resolve_score:
            raise ValueError("resolve_score must be at or below min_score (hysteresis)")
        return self

    def matches(self, venue: str, asset: str) -> bool:
        if self.venues is not None and venue not in self.venues:
            return False
        return self.assets is None or asset.upper() in {a.upper() for a in self.assets}

    def reads_detector_scope(self) -> bool:
        """Whether the rule reads the detector's own asset (market) score: an asset or
        market rule does, unless its filters select part of what that score combines (an
        asset score weighs every venue, the market every asset). Then it follows the worst
        instrument its filters let through."""
        if self.scope is Scope.INSTRUMENT or self.venues is not None:
            return False
        return self.scope is Scope.ASSET or self.assets is None


class AlertSettings(_Model):
    rules: list[AlertRule] = Field(default_factory=list)
    receivers: list[WebhookReceiver] = Field(default_factory=list)
    public_url: HttpUrl | None = None
    """Base URL of our API, for the links in payloads (``None``: relative links). No
    credentials: every receiver sees it."""
    consumer: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "alerts-1"
    """This process's consumer name in the Redis consumer groups (stable across restarts)."""
    tick_s: Seconds = 1.0
    """How often held conditions and repeats are evaluated, and scores polled."""
    retry_initial_s: Seconds = 2.0
    retry_max_s: Seconds = 300.0
    max_attempts: Annotated[int, Field(gt=0)] = 8
    max_age_s: Seconds = 3600.0
    """An undelivered message older than this is dropped (counted): stale alerts mislead."""

    @model_validator(mode="after")
    def _names(self) -> AlertSettings:
        # names only in these messages (they match a strict pattern): never URLs or secrets
        names = [r.name for r in self.receivers]
        if len(set(names)) != len(names):
            raise ValueError("receiver names must be unique")
        rules = [r.name for r in self.rules]
        if len(set(rules)) != len(rules):
            raise ValueError("rule names must be unique")
        for rule in self.rules:
            unknown = sorted(set(rule.receivers) - set(names))
            if unknown:
                raise ValueError(
                    f"rule {rule.name!r} names receiver(s) {', '.join(map(repr, unknown))} "
                    f"not defined in alerts.receivers (defined: {', '.join(names) or 'none'})"
                )
        if self.retry_initial_s > self.retry_max_s:
            raise ValueError("retry_initial_s must be at most retry_max_s")
        return self
