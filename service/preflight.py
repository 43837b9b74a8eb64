"""The start-up checks that need more than the settings, run once they are loaded:
``deleverage run``, ``check-config`` and ``demo`` load their settings through
:func:`load_checked`.

The settings (:mod:`.config`) are a leaf: they import nothing from the packages that use
them, and nothing heavy. What needs a venue's code is checked here instead: that a
ccxt-polled venue names an exchange ccxt knows and can poll for funding and open interest
(ccxt takes about a second to import). A failure is a :class:`ConfigError` worded as the
settings' own (``invalid configuration:`` and ``key.path: message``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import Settings, load_settings
from .config_sources import report
from .errors import ConfigError
from .venues import REGISTRY
from .venues.ccxt_polled import check_exchange


def check(settings: Settings) -> None:
    """Raise :class:`ConfigError` naming each key whose value the venues' code refuses."""
    problems = []
    for name, venue in settings.venues.items():
        if venue.ccxt is None:
            continue
        try:
            check_exchange(venue.ccxt.exchange)
        except ValueError as exc:
            problems.append((f"venues.{name}.ccxt.exchange", str(exc)))
    if problems:
        raise ConfigError(report(problems))


def load_checked(files: list[Path] | None = None, **overrides: Any) -> Settings:
    """:func:`.config.load_settings` for the venues this build knows, then :func:`check`."""
    settings = load_settings(set(REGISTRY), files, **overrides)
    check(settings)
    return settings
