"""The fast path (hot lane): ``POST /send/{service}/{handler}`` and ``POST /call/{service}/{handler}`` are
dispatched before FastAPI's middleware stack and router, straight into ``Lane``: the edge
checks, ``Guard``'s tokens and request counting, and the ingress endpoint, with the same
problem+json mapping every other route gets from ``problems.install``. Everything else, including
other methods on these paths (405), goes through FastAPI as usual.

Why: with group commit, FastAPI's per-request layers cost more than the durable write itself
(docs/performance.md has the measurements)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.responses import Response
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from . import ingress
from .problems import problem_for, problem_response
from .protocol import answer
from .state import GatewayState
from .wire import HOT, hot_route

if TYPE_CHECKING:
    from .app import Guard
    from .edge import Edge

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_ENDPOINTS = ingress.ENDPOINTS


class Lane:
    """The hot lane as one ASGI callable: ``Edge``'s checks and ``Guard``'s token check and
    request count (the same methods their middleware runs), the ingress endpoint, every exception
    as problem+json, and the answer written whole (``protocol.answer``: head and body in one
    ``write``) when the server is uvicorn's httptools protocol."""

    def __init__(self, app: FastAPI, edge: Edge, guard: Guard, st: GatewayState) -> None:
        self.app, self.edge, self.guard, self.st = app, edge, guard, st

    async def respond(self, scope: Scope, receive: Receive) -> Response:
        """The answer to a hot request, counted as ``Guard`` counts (a refusal of ``Edge`` is not
        counted, as it never reaches ``Guard``). Also what ``gateway.wire`` runs, without ASGI."""
        refusal = self.edge.refusal(scope)
        if refusal is not None:  # as the Edge middleware: refused before Guard, not counted
            return problem_response(refusal)
        status = 500
        try:
            refusal = self.guard.refusal(scope)
            if refusal is None:
                verb, service, handler = scope[HOT]
                try:
                    response = await _ENDPOINTS[verb](self.st, ingress.Head(scope, service, handler), receive)
                except Exception as e:
                    response = problem_response(problem_for(e))
            else:
                response = problem_response(refusal)
            status = response.status_code
            return response
        finally:
            self.guard.count(scope, status)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.respond(scope, receive)
        cycle = getattr(send, "__self__", None)  # uvicorn's RequestResponseCycle.send, unwrapped
        if isinstance(cycle, RequestResponseCycle) and isinstance(getattr(response, "body", None), bytes):
            await answer(cycle, response)
        else:
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
