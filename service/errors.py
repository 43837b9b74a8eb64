"""The one exception hierarchy of the service.

::

    DeleverageError
    ├── ConfigError            bad configuration: fatal, the service does not start
    ├── FeedError              a venue connection or REST call failed: retryable
    │   └── StaleFeed          no data within the watchdog's window: reconnect
    ├── ParseError             a frame we could not understand: counted, logged, dropped
    └── StoreError             Redis unreachable or refused a write: retryable
"""

from __future__ import annotations


class DeleverageError(Exception):
    """Base of every error this package raises on purpose."""

    retryable: bool = False


class ConfigError(DeleverageError):
    """The configuration is invalid; the message names the key."""


class FeedError(DeleverageError):
    """A venue's websocket or REST endpoint failed; the caller retries with backoff."""

    retryable = True


class StaleFeed(FeedError):
    """A connection delivered no data within the watchdog's window."""


class ParseError(DeleverageError):
    """A frame could not be parsed. ``kind`` groups errors for counting and log throttling."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class StoreError(DeleverageError):
    """Redis could not be reached or refused a command."""

    retryable = True
