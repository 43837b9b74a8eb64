"""Supervision: each component of a process runs alone, and a failure restarts only it.

:meth:`Supervisor.run` runs one component (a venue's collector, the event sink, the
detector, the alerts, MQTT, the API server) until it is cancelled. When the component raises,
the failure policy (:func:`service.errors.verdict`) decides:

* fatal (a bad configuration...): the exception is re-raised, and the process stops;
* anything else: it is logged (with the traceback unless it is a transient I/O error),
  counted in :attr:`ComponentStatus.restarts`, the component is reported down, and it is
  started again after a jittered exponential backoff (:class:`~.collect.backoff.Backoff`),
  reset once a run lasted ``stable_s``. The other components never notice.

A component that returns by itself is started again the same way (it was meant to run until
cancelled). :meth:`Supervisor.components` is what ``/readyz`` and ``/metrics`` read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from .aio import checkpoint
from .backoff import Backoff
from .errors import Verdict, fatal_cause, verdict
from .redact import scrub

log = structlog.get_logger(__name__)

RESTART_INITIAL_S = 0.5
RESTART_MAX_S = 30.0
STABLE_S = 60.0
"""A run that lasted this long resets the backoff: the next failure restarts quickly."""


@dataclass(slots=True)
class ComponentStatus:
    """One supervised component, as ``/readyz`` and ``/metrics`` see it."""

    name: str
    up: bool = False
    restarts: int = 0
    """Times the component failed (or ended) and was started again."""
    last_error: str | None = None
    changed_ms: int = 0
    """When ``up`` last changed (Unix ms)."""


class Supervisor:
    """Runs components and restarts each one alone (see module doc)."""

    def __init__(
        self,
        initial_s: float = RESTART_INITIAL_S,
        max_s: float = RESTART_MAX_S,
        stable_s: float = STABLE_S,
    ) -> None:
        self._initial_s = initial_s
        self._max_s = max_s
        self._stable_s = stable_s
        self._status: dict[str, ComponentStatus] = {}

    def components(self) -> list[ComponentStatus]:
        """Every component registered so far, in start order."""
        return list(self._status.values())

    def status(self, name: str) -> ComponentStatus:
        return self._status.setdefault(name, ComponentStatus(name, changed_ms=_now_ms()))

    async def run(
        self,
        name: str,
        start: Callable[[], Awaitable[None]],
        *,
        on_failure: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Run ``start()`` until cancelled, again after each failure. ``on_failure`` cleans up
        after a failed run (closing what it opened) before the backoff; its own failure is
        logged and ignored."""
        status = self.status(name)
        backoff = Backoff(self._initial_s, self._max_s)
        while True:
            started = time.monotonic()
            _set(status, up=True)
            try:
                await start()
                checkpoint()  # it ended because it swallowed our stop: stop, do not restart
                error = "ended by itself"
                log.error("component ended by itself; restarting", component=name)
            except Exception as exc:
                judged = verdict(exc)
                if judged is Verdict.FATAL:
                    _set(status, up=False, error=_describe(exc))
                    log.critical("component failed: fatal, stopping", component=name,
                                 error=_describe(fatal_cause(exc) or exc))  # fmt: skip
                    raise
                error = _describe(exc)
                if judged is Verdict.RETRY:
                    log.warning("component failed; restarting", component=name, error=error)
                else:
                    log.error("component crashed; restarting", component=name, exc_info=exc)
            _set(status, up=False, error=error)
            status.restarts += 1
            if on_failure is not None:
                try:
                    await on_failure()
                except Exception as exc:  # best effort: the restart matters more
                    log.warning("component cleanup failed", component=name, exc_info=exc)
            if time.monotonic() - started >= self._stable_s:
                backoff.reset()
            await asyncio.sleep(backoff.next_delay())


def _set(status: ComponentStatus, *, up: bool, error: str | None = None) -> None:
    if status.up != up:
        status.changed_ms = _now_ms()
    status.up = up
    if error is not None:
        status.last_error = error


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    return scrub(f"{type(exc).__name__}: {exc}")[:300]  # shown by /readyz: no credentials


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
