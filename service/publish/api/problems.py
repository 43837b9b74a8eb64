"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the API returns is a :class:`Problem`. Plain HTTP errors (404, 405) use
``type`` ``about:blank``, since the status says it all. The others have a type of their own:

* ``tag:deleverage,2026:invalid-params`` (422): a query or path parameter is invalid;
  ``errors`` names each one (``name``, ``in``, ``detail``).
* ``tag:deleverage,2026:store-unavailable`` (503, ``Retry-After``): Redis cannot be reached.
* ``tag:deleverage,2026:not-ready`` (503): ``/readyz``; ``checks`` lists every check.
* ``tag:deleverage,2026:too-many-clients`` (503, ``Retry-After``): ``/v1/stream`` has as
  many clients as ``api.stream_max_clients``.
* ``tag:deleverage,2026:internal-error`` (500): a bug; the server log has the traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

from ...errors import DeleverageError, StoreError

log = structlog.get_logger(__name__)

MEDIA_TYPE: Final = "application/problem+json"
BLANK: Final = "about:blank"
INVALID_PARAMS: Final = "tag:deleverage,2026:invalid-params"
STORE_UNAVAILABLE: Final = "tag:deleverage,2026:store-unavailable"
NOT_READY: Final = "tag:deleverage,2026:not-ready"
TOO_MANY_CLIENTS: Final = "tag:deleverage,2026:too-many-clients"
INTERNAL_ERROR: Final = "tag:deleverage,2026:internal-error"
RETRY_AFTER_S: Final = 5


def _problem_examples(schema: dict[str, Any], model: type[BaseModel]) -> None:
    # Only on Problem itself: a subclass with required members of its own (``checks``,
    # ``errors``) would inherit an example that does not validate against it.
    if model is Problem:
        schema["examples"] = [
            {
                "type": BLANK,
                "title": "Not Found",
                "status": 404,
                "detail": "no pressure score for binance_usdm/BTCUSDT",
                "instance": "/v1/pressure/binance_usdm/BTCUSDT",
            }
        ]


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    model_config = ConfigDict(json_schema_extra=_problem_examples)

    type: str = BLANK
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class InvalidParam(BaseModel):
    """One invalid parameter (named as in the OpenAPI description)."""

    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(examples=["limit"])
    in_: str = Field(alias="in", examples=["query"])
    detail: str = Field(examples=["Input should be less than or equal to 1000"])


class ValidationProblem(Problem):
    """A 422 problem with the invalid parameters in ``errors``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": INVALID_PARAMS,
                    "title": "Invalid parameters",
                    "status": 422,
                    "detail": "invalid parameter: limit",
                    "instance": "/v1/liquidations",
                    "errors": [
                        {
                            "name": "limit",
                            "in": "query",
                            "detail": "Input should be less than or equal to 1000",
                        }
                    ],
                }
            ]
        }
    )

    errors: list[InvalidParam]


def problem_response(
    request: Request,
    status: int,
    *,
    type_: str = BLANK,
    title: str | None = None,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A ``application/problem+json`` response; ``extensions`` are extra members."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "instance": request.url.path,
    }
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def invalid_param(name: str, detail: str, location: str = "query") -> RequestValidationError:
    """The error to raise for a parameter that passed its type check but is still wrong."""
    return RequestValidationError([{"type": "value_error", "loc": (location, name), "msg": detail}])


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problems a route can return (see :func:`problem_openapi`)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        model = ValidationProblem if status == 422 else Problem
        out[status] = {"model": model, "description": HTTPStatus(status).phrase}
    return out


def problem_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare error responses as ``application/problem+json`` (FastAPI says ``application/json``
    for any ``model`` in ``responses``). Idempotent."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[MEDIA_TYPE] = content.pop("application/json")
    return schema


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
    return problem_response(request, exc.status_code, detail=detail, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_invalid_param(err) for err in exc.errors()]
    names = list(dict.fromkeys(e["name"] for e in errors))
    label = "parameter" if len(names) == 1 else "parameters"
    return problem_response(
        request,
        422,
        type_=INVALID_PARAMS,
        title="Invalid parameters",
        detail=f"invalid {label}: {', '.join(names)}",
        errors=errors,
    )


def _invalid_param(err: Any) -> dict[str, str]:
    loc: Sequence[Any] = err.get("loc", ())
    location = str(loc[0]) if loc else "request"
    name = ".".join(str(part) for part in loc[1:]) or location
    return {"name": name, "in": location, "detail": str(err.get("msg", "invalid"))}


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("redis unavailable", path=request.url.path, error=str(exc))
    return problem_response(
        request,
        503,
        type_=STORE_UNAVAILABLE,
        title="Store unavailable",
        detail="the Redis store cannot be reached; retry later",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, StoreError):
        return await _store_unavailable(request, exc)
    log.error("service error", path=request.url.path, exc_info=exc)
    return await _internal_error(request, exc)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 500, type_=INTERNAL_ERROR, title="Internal error")


def install_handlers(app: FastAPI) -> None:
    """Turn every error into a problem response."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RedisConnectionError, _store_unavailable)
    app.add_exception_handler(RedisTimeoutError, _store_unavailable)
    app.add_exception_handler(DeleverageError, _service_error)
    # Anything else is a bug: Starlette's ServerErrorMiddleware sends this response, then
    # re-raises so that the server logs the traceback (hence no logging here).
    app.add_exception_handler(Exception, _internal_error)
