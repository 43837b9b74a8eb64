"""Masking secrets in text meant for people: logs, errors, banners and dumps.

Two nets, both applied by :class:`Redactor`:

* **patterns**, which need no configuration: the password in a URL's userinfo
  (``user:pass@``, ``:pass@``; a userinfo without a colon is masked whole, as it often is a
  token), secret-looking query parameters (``?password=``, ``&token=``, ``?api_key=``...),
  Standard Webhooks secrets (``whsec_...``), Slack and Discord webhook URLs (their path is
  the credential) and Slack tokens (``xox?-...``);
* **the exact values** the loaded settings declare secret
  (:meth:`service.config.Settings.secret_values`), in their raw and percent-encoded forms,
  which catch a secret wherever and however it appears.

What is masked becomes ``***``. Both nets are pure string functions with no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "***"
MIN_SECRET_LEN = 4
"""Shorter values are not masked by value (masking every ``"ab"`` in a log would garble it;
the patterns still apply)."""

_SECRET_PARAM = r"[\w.\-]*(?:pass|pwd|secret|token|auth|key|sig|credential|session)[\w.\-]*"
SECRET_PARAM = re.compile(rf"^{_SECRET_PARAM}$", re.IGNORECASE)
"""Names of query parameters and mapping keys whose value is a secret."""

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#\"<>\\]*)@")
_QUERY = re.compile(rf"(?P<name>[?&;]{_SECRET_PARAM}=)[^&#\s\"'<>\\]+", re.IGNORECASE)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_QUERY, rf"\g<name>{MASK}"),
    (re.compile(r"whsec_[^\s\"'<>,;]+"), f"whsec_{MASK}"),
    (re.compile(r"(?P<host>hooks\.slack(?:-gov)?\.com/)[^\s\"'<>]+"), rf"\g<host>{MASK}"),
    (
        re.compile(r"(?P<host>discord(?:app)?\.com/api(?:/v\d+)?/webhooks/)[^\s\"'<>]+"),
        rf"\g<host>{MASK}",
    ),
    (re.compile(r"\bxox[a-z]-[A-Za-z0-9\-]+"), f"xox-{MASK}"),
)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match["userinfo"].partition(":")
    if colon:
        return f"{match['scheme']}{user}:{MASK}@"
    return f"{match['scheme']}{MASK}@"


def scrub(text: str) -> str:
    """``text`` with every secret the patterns recognise masked."""
    text = _USERINFO.sub(_mask_userinfo, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redacted(url: object) -> str:
    """``url`` with its credentials masked: for logs, banners and dumps.

    >>> redacted("redis://user:s3cret@redis:6379/0?password=x")
    'redis://user:***@redis:6379/0?password=***'
    """
    return scrub(str(url))


def url_secrets(url: object) -> list[str]:
    """The secrets carried by ``url``: its userinfo password (or a userinfo without a
    password: a token), and the values of its secret-looking query parameters."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return []
    found: list[str] = []
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        found.append(password if colon else user)
    found += [v for k, v in parse_qsl(parts.query) if SECRET_PARAM.match(k)]
    return [s for s in found if s]


def variants(secret: str) -> set[str]:
    """``secret`` as it may appear in text: raw, percent-decoded, percent-encoded, and
    escaped as a JSON string or a Python repr (log renderers) show it."""
    forms = {secret, unquote(secret)}
    return forms | {
        escaped
        for form in forms
        for escaped in (quote(form, safe=""), quote(form), json.dumps(form)[1:-1], repr(form)[1:-1])
    }


class Redactor:
    """Masks the patterns and the given secret values in text (see module doc)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {v for s in secrets for v in variants(s) if len(v) >= MIN_SECRET_LEN}
        # longest first: a secret that contains another is masked whole
        self._values = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return scrub(text)
