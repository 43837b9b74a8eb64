"""Caps on the query string, checked before routing.

Every query parameter of the API takes one value, so a request may give each at most once;
the query string is bounded in bytes and in parameters. Over a cap the answer is a 422
problem naming the parameter (``query`` when it is the whole string), without parsing the
rest. Each parameter's own caps (``limit``, string lengths) are declared on it and reported
the same way.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .problems import INVALID_PARAMS, MEDIA_TYPE, problem_response

MAX_QUERY_BYTES: Final = 2048
MAX_QUERY_PARAMS: Final = 16
"""The widest route takes 9 parameters."""


def query_caps_response() -> dict[str, Any]:
    """The OpenAPI response of the caps, for operations that declare no 422 of their own."""
    return {
        "description": "Invalid parameters (the query string is over its caps)",
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ValidationProblem"}}},
    }


def query_problem(query: bytes) -> tuple[str, str] | None:
    """``(parameter, detail)`` of the first cap the query string breaks, or ``None``."""
    if len(query) > MAX_QUERY_BYTES:
        return "query", f"the query string is {len(query)} bytes; at most {MAX_QUERY_BYTES}"
    try:
        pairs = parse_qsl(
            query.decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_QUERY_PARAMS
        )
    except ValueError:
        return "query", f"more than {MAX_QUERY_PARAMS} query parameters"
    repeated = [name for name, n in Counter(name for name, _ in pairs).items() if n > 1]
    if repeated:
        return repeated[0], "given more than once; every parameter takes one value"
    return None


class QueryLimits:
    """ASGI middleware answering 422 to a request whose query string breaks a cap."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = query_problem(scope.get("query_string", b"")) if scope["type"] == "http" else None
        if problem is None:
            await self.app(scope, receive, send)
            return
        name, detail = problem
        response = problem_response(
            Request(scope),
            422,
            type_=INVALID_PARAMS,
            title="Invalid parameters",
            detail=f"invalid parameter: {name}",
            errors=[{"name": name, "in": "query", "detail": detail}],
        )
        await response(scope, receive, send)
