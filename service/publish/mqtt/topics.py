"""Every MQTT topic the service publishes is built here, and nowhere else.

Under a versioned prefix (default ``deleverage/v1``; documented in ``docs/mqtt.md``):

* ``<prefix>/status`` (retained): ``online`` after connect, ``offline`` as the last will and
  on a clean shutdown;
* ``<prefix>/pressure/instrument/<venue>/<symbol>`` (retained): one instrument's latest score;
* ``<prefix>/pressure/asset/<asset>`` (retained): one asset across venues and contracts;
* ``<prefix>/pressure/market`` (retained): every scored instrument;
* ``<prefix>/liquidity/<venue>/<symbol>`` (retained): one scored instrument's liquidity
  (spread, top of book, depth within 1 %, traded volume, fragility);
* ``<prefix>/alerts`` (not retained, QoS 1): alert events.

Venue, symbol and asset become one topic level each through :func:`token`, which
percent-escapes what MQTT gives a meaning to (``/`` separates levels, ``+`` and ``#`` are
wildcards, NUL is forbidden), spaces, control characters and ``%`` itself. The escaping is
reversible (:func:`untoken`) and leaves ordinary symbols unchanged: ``BTCUSDT`` stays
``BTCUSDT``, as in the API's ``/v1/pressure/{venue}/{symbol}``.

What a prefix may be (:func:`check_prefix`) lives with the settings that check it at start-up.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote

from ...config_types import check_prefix

STATUS: Final = "status"
ONLINE: Final = b"online"
OFFLINE: Final = b"offline"

_UNSAFE: Final = frozenset("%/+#$ ") | {chr(c) for c in range(0x20)} | {"\x7f"}


def token(value: str) -> str:
    """``value`` as one topic level: ``%``, ``/``, ``+``, ``#``, ``$``, space and control
    characters become ``%XX``. Raises ``ValueError`` on an empty value (an empty level)."""
    if not value:
        raise ValueError("an empty string is not a topic level")
    return "".join(f"%{ord(c):02X}" if c in _UNSAFE else c for c in value)


def untoken(level: str) -> str:
    """The value :func:`token` escaped into ``level``."""
    return unquote(level)


class Topics:
    """The topics under one prefix (validated once, here)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = check_prefix(prefix)

    @property
    def status(self) -> str:
        return f"{self.prefix}/{STATUS}"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}/alerts"

    @property
    def market(self) -> str:
        return f"{self.prefix}/pressure/market"

    @property
    def all_pressure(self) -> str:
        """The subscription filter for every retained score."""
        return f"{self.prefix}/pressure/#"

    @property
    def all_liquidity(self) -> str:
        """The subscription filter for every retained liquidity state."""
        return f"{self.prefix}/liquidity/#"

    def liquidity(self, venue: str, symbol: str) -> str:
        return f"{self.prefix}/liquidity/{token(venue)}/{token(symbol)}"

    def instrument(self, venue: str, symbol: str) -> str:
        return f"{self.prefix}/pressure/instrument/{token(venue)}/{token(symbol)}"

    def asset(self, asset: str) -> str:
        return f"{self.prefix}/pressure/asset/{token(asset)}"
