"""RFC 9457 problem details: every error the gateway returns is ``application/problem+json``.
No stack trace, no exception text from inside reliq or Redis ever reaches a client."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

log = logging.getLogger("reliq.gateway")
PROBLEM = "application/problem+json"
NOT_CONFIRMED = "not confirmed: the invocation may or may not be placed; retry with the same Idempotency-Key"
REDIS_DOWN = "Redis is unavailable; retry later"
CLIENT_GONE = 499  # the client closed the connection mid-request: counted, never answered (as nginx)


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(title)
        self.status, self.title, self.detail = status, title, detail
        self.headers = headers or {}
        self.extra = extra


_TITLES = {
    200: "the handler's result (JSON)",
    202: "accepted / not finished yet",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "handler failed",
    503: "not confirmed: retry with the same key",
}
_PLACING = ("/send/", "/call/")  # where a 503 means "not confirmed" (elsewhere: Redis is down)


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for routes: the problem+json statuses they can return."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        media = "application/json" if code in (200, 202) else PROBLEM
        out[code] = {"description": _TITLES.get(code, "problem"), "content": {media: {"schema": {}}}}
    out["4XX"] = {"description": "problem+json", "content": {PROBLEM: {"schema": {}}}}
    out["5XX"] = {"description": "problem+json (not confirmed)", "content": {PROBLEM: {"schema": {}}}}
    return out


def problem_response(p: Problem) -> Response:
    doc: dict[str, Any] = {"type": "about:blank", "title": p.title, "status": p.status}
    if p.detail:
        doc["detail"] = p.detail
    doc.update(p.extra)
    return Response(msgspec.json.encode(doc), status_code=p.status, media_type=PROBLEM, headers=p.headers)


def unavailable(detail: str = NOT_CONFIRMED) -> Problem:
    return Problem(503, "Service Unavailable", detail, headers={"Retry-After": "1"})


def problem_for(exc: Exception, placing: bool = True) -> Problem:
    """The answer for an exception a route raised (used by the hot lane and by ``install``).
    ``placing``: the route places invocations (a Redis error means "not confirmed")."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, ClientDisconnect):  # nobody to answer: no 500, no traceback
        return Problem(CLIENT_GONE, "Client Closed Request")
    if isinstance(exc, HTTPException):
        title = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, "Error")
        detail = str(exc.detail) if exc.detail else ""
        return Problem(exc.status_code, title, detail, headers=dict(exc.headers or {}))
    if isinstance(exc, RequestValidationError):
        errors = [
            {"loc": list(map(str, e.get("loc", ()))), "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        return Problem(400, "Bad Request", "invalid request parameters", errors=errors)
    if isinstance(exc, RedisError | ConnectionError | TimeoutError):
        log.warning("redis unavailable: %s", type(exc).__name__)
        return unavailable(NOT_CONFIRMED if placing else REDIS_DOWN)
    log.exception("unhandled error", exc_info=exc)
    return Problem(500, "Internal Server Error", "an unexpected error occurred")


def install(app: FastAPI) -> None:
    async def on_error(request: Request, exc: Exception) -> Response:
        return problem_response(problem_for(exc, request.url.path.startswith(_PLACING)))

    for kind in (
        Problem,
        HTTPException,
        RequestValidationError,
        ClientDisconnect,
        RedisError,
        OSError,
        Exception,
    ):
        app.add_exception_handler(kind, on_error)
