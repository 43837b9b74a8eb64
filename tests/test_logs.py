"""Every line the process writes is masked: structlog's, the standard logging module's
(whatever handler prints it) and an uncaught exception's traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Literal

import pytest
import structlog

from service.logs import configure

SECRET = "S3cretFromSettings"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    factory, hook, config = logging.getLogRecordFactory(), sys.excepthook, structlog.get_config()
    yield
    logging.setLogRecordFactory(factory)
    sys.excepthook = hook
    structlog.configure(**config)


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_structlog_lines_mask_known_secrets_and_credential_patterns(
    capsys: pytest.CaptureFixture[str], fmt: Literal["console", "json"]
) -> None:
    configure("info", fmt, secrets=[SECRET])
    log = structlog.get_logger("t")
    log.warning("auth failed", detail=f"password {SECRET} refused", url="redis://u:pw12@h/0")
    try:
        raise RuntimeError(f"bad {SECRET}")
    except RuntimeError:
        log.exception("boom", hook="https://hooks.slack.com/services/T0/B0/tok3n")
    err = capsys.readouterr().err
    assert "auth failed" in err
    assert "RuntimeError: bad ***" in err
    for leak in (SECRET, "pw12", "tok3n"):
        assert leak not in err


def test_standard_logging_records_are_masked_through_any_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure("info", secrets=[SECRET])
    handler = logging.StreamHandler(sys.stderr)  # like uvicorn's own handlers
    logger = logging.getLogger("deleverage.test.logs")
    logger.addHandler(handler)
    try:
        logger.warning("connect to %s failed", f"redis://:{SECRET}@h:6379/0")
        try:
            raise ValueError(f"token={SECRET}")
        except ValueError:
            logger.exception("error in %s", "app")
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert "connect to redis://:***@h:6379/0 failed" in err
    assert "ValueError: token=***" in err
    assert SECRET not in err


def test_an_uncaught_exception_is_printed_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure("info", secrets=[SECRET])
    try:
        raise ConnectionError(f"redis://:{SECRET}@h refused")
    except ConnectionError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    err = capsys.readouterr().err
    assert "ConnectionError: redis://:***@h refused" in err
    assert SECRET not in err
