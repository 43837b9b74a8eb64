"""structlog set-up: human-readable console lines, or one JSON object per line.

Every line that leaves the process is passed through a :class:`~service.redact.Redactor`:
the secrets the settings hold (``configure(secrets=settings.secret_values())``) and the
patterns of credentials in URLs, webhook secrets and tokens are masked. That covers
structlog's lines, the standard ``logging`` records of libraries (uvicorn, websockets,
asyncio; their messages and tracebacks, whatever handler prints them) and an uncaught
exception's traceback. Tracebacks never show local variables.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Literal

import structlog

from .redact import Redactor


def configure(
    level: str = "info", fmt: Literal["console", "json"] = "console", secrets: Iterable[str] = ()
) -> None:
    """Configure structlog and the standard logging module; ``secrets`` are masked in every
    line (besides the patterns :mod:`service.redact` knows)."""
    redact = Redactor(secrets)
    renderer: structlog.typing.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )

    def render(logger: Any, name: str, event_dict: Any) -> str:
        return redact(str(renderer(logger, name, event_dict)))

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            render,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        # Not cached: log calls are off the hot path, and uncached loggers follow a later
        # configure (tests capture logs with structlog.testing.capture_logs).
        cache_logger_on_first_use=False,
    )
    # Libraries that use the standard logging module (uvicorn, websockets) go to stderr too.
    logging.basicConfig(
        level=max(logging.getLevelName(level.upper()), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s",
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.setLogRecordFactory(_redacting_records(redact))
    sys.excepthook = _redacting_excepthook(redact)


def _redacting_records(redact: Redactor) -> Callable[..., logging.LogRecord]:
    """A record class whose message and traceback come out masked, through any handler and
    formatter (uvicorn installs its own, and formats a ``color_message`` of its own)."""

    class RedactedRecord(logging.LogRecord):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if self.exc_info:  # formatters use a pre-set exc_text as it is
                self.exc_text = redact(_FORMATTER.formatException(self.exc_info))
            if self.stack_info:
                self.stack_info = redact(self.stack_info)

        def getMessage(self) -> str:
            return redact(super().getMessage())

    return RedactedRecord


_FORMATTER = logging.Formatter()


def _redacting_excepthook(
    redact: Redactor,
) -> Callable[[type[BaseException], BaseException, TracebackType | None], None]:
    def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        sys.stderr.write(redact("".join(traceback.format_exception(kind, exc, tb))))

    return excepthook
