"""The fast path (hot lane): ``POST /send/{service}/{handler}`` and ``POST /call/{service}/{handler}`` are
dispatched before FastAPI's middleware stack and router, straight into ``Guard`` (tokens,
request counting) and the ingress endpoint, with the same problem+json mapping every other route
gets from ``problems.install``. Everything else, including other methods on these paths (405),
goes through FastAPI as usual.

Why: with group commit, FastAPI's per-request layers cost more than the durable write itself
(docs/performance.md has the measurements)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI

from . import ingress
from .problems import problem_for, problem_response
from .protocol import HOT
from .state import GatewayState

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_ENDPOINTS = ingress.ENDPOINTS


def hot_route(scope: Scope) -> tuple[str, str, str] | None:
    """(verb, service, handler) when the request belongs to the hot lane."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    parts = scope["path"].split("/")
    if len(parts) != 4 or parts[1] not in _ENDPOINTS or not parts[2] or not parts[3]:
        return None
    return parts[1], parts[2], parts[3]


async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """Run the ingress endpoint the lane matched; every exception becomes problem+json."""
    verb, service, handler = scope[HOT]
    st: GatewayState = scope["app"].state.reliq
    try:
        response = await _ENDPOINTS[verb](st, ingress.Head(scope, service, handler), receive)
    except Exception as e:
        response = problem_response(problem_for(e))
    await response(scope, receive, send)


class Gateway(FastAPI):
    """A FastAPI app with the hot lane in front (``lane`` is set by ``create_app``)."""

    lane: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = hot_route(scope) if self.lane is not None else None
        if hot is None or self.lane is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        scope[HOT] = hot
        await self.lane(scope, receive, send)
