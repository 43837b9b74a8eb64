"""The one exception hierarchy of the service, and the failure policy: what is retried,
dropped (and counted) or fatal.

::

    DeleverageError
    ├── ConfigError            bad configuration: fatal, the service does not start
    ├── FeedError              a venue connection or REST call failed: retryable
    │   └── StaleFeed          no data within the watchdog's window: reconnect
    ├── ParseError             a frame we could not understand: counted, logged, dropped
    └── StoreError             Redis unreachable or refused a write: retryable

The policy (:func:`verdict`) has four answers:

* ``RETRY``: a transient failure of I/O (Redis, a socket, a timeout, a venue). The caller
  tries again after a short backoff; a loop that owns the I/O does it in place, and a
  component that lets one escape is restarted by its supervisor.
* ``DROP``: one item of input is bad (a frame, a stored entry that does not decode or holds
  impossible values). It is skipped and counted, and the next item is read. Only the code
  that reads one item at a time can drop: it catches :data:`DATA_ERRORS` around that item.
* ``RESTART``: anything else that escapes a component is a bug: it is logged with its
  traceback, counted, and the component (alone) is restarted with a jittered exponential
  backoff (:mod:`service.supervise`). The other components never notice.
* ``FATAL``: the process cannot do its job (a bad configuration, memory exhausted): it
  stops, so that the operator sees it. Interpreter exits (``SystemExit``,
  ``KeyboardInterrupt``) and cancellation are never caught.
"""

from __future__ import annotations

import enum

import msgspec
from redis.exceptions import RedisError


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


class Verdict(enum.StrEnum):
    """What to do about an exception (see the module doc)."""

    RETRY = "retry"
    DROP = "drop"
    RESTART = "restart"
    FATAL = "fatal"


FATAL_ERRORS: tuple[type[BaseException], ...] = (ConfigError, MemoryError)
"""The process stops: restarting a component would not help."""

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
"""I/O that may work on the next attempt (``ConnectionError`` is an ``OSError``)."""

DATA_ERRORS: tuple[type[Exception], ...] = (
    ParseError,
    msgspec.DecodeError,  # ValidationError is a subclass: well-formed, wrong shape
    msgspec.EncodeError,
    ValueError,  # UnicodeDecodeError and json's errors are ValueErrors
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    ArithmeticError,  # OverflowError, ZeroDivisionError
    RecursionError,
)
"""What reading one bad item raises. Caught around one item only, never around a loop, so
that a bug elsewhere is not mistaken for bad input."""


def verdict(exc: BaseException) -> Verdict:
    """The policy's answer for ``exc`` once it has escaped a component. A group (from a
    task group inside the component) is as severe as its worst member."""
    if isinstance(exc, BaseExceptionGroup):
        verdicts = {verdict(e) for e in exc.exceptions}
        for worst in (Verdict.FATAL, Verdict.RESTART, Verdict.DROP):
            if worst in verdicts:
                return worst
        return Verdict.RETRY
    if isinstance(exc, FATAL_ERRORS):
        return Verdict.FATAL
    if isinstance(exc, DeleverageError) and exc.retryable:
        return Verdict.RETRY
    if isinstance(exc, TRANSIENT_ERRORS):
        return Verdict.RETRY
    if isinstance(exc, ParseError | msgspec.DecodeError):
        return Verdict.DROP
    return Verdict.RESTART


def fatal_cause(exc: BaseException) -> BaseException | None:
    """The first fatal exception in ``exc`` (itself, or a member of a group), if any."""
    if isinstance(exc, BaseExceptionGroup):
        for member in exc.exceptions:
            if (found := fatal_cause(member)) is not None:
                return found
        return None
    return exc if isinstance(exc, FATAL_ERRORS) else None
