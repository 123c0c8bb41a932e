"""The gateway's app factory: ``uvicorn --factory gateway.app:create_app``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from reliq import App, Client

from . import (
    admin,
    admin_flow,
    admin_schedules,
    dashboard,
    fastpath,
    health,
    ingress,
    invocations,
    metrics,
    metrics_route,
    openapi,
    problems,
    promises,
    services,
    tokens,
)
from .catalog import Catalog
from .edge import Edge
from .placement import Placer
from .settings import GatewaySettings
from .state import GatewayState
from .wire import HOT, VERBS

log = logging.getLogger("reliq.gateway")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
# the dashboard and Swagger UI shells hold no data; /openapi.json without a token is the generic one
OPEN_PATHS = ("/healthz", "/readyz", *dashboard.PATHS, *openapi.PATHS)
_HOT_LABELS = {verb: "/" + verb for verb in VERBS}  # metrics.route_label of a hot lane's request


class Guard:
    """Bearer tokens (constant-time compare) with scopes (gateway.tokens: a ``read`` token may
    only GET/HEAD) and request counting, as plain ASGI middleware. The token's name is left in
    ``scope["reliq.principal"]`` for the audit log."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], st: GatewayState) -> None:
        self.app, self.st = app, st
        self.tokens = tokens.parse_tokens(st.settings.tokens)
        self._counters: dict[tuple[str, int], Any] = {}  # (route, status) -> its counter child

    def _token(self, scope: Scope) -> tokens.Token | None:
        for name, value in scope.get("headers", ()):
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                return tokens.match(self.tokens, value[7:].strip())
        return None

    def refusal(self, scope: Scope) -> problems.Problem | None:
        """The 401/403 a request is refused with, or None; the principal is left in the scope."""
        token = None
        if self.tokens and scope.get("path", "") not in OPEN_PATHS:
            token = self._token(scope)
            if token is None:
                return problems.Problem(
                    401,
                    "Unauthorized",
                    "send Authorization: Bearer <token>",
                    headers={"WWW-Authenticate": 'Bearer realm="reliq"'},
                )
            if not tokens.allows(token, scope["method"]):
                return problems.Problem(403, "Forbidden", f"the token's scope is {token.scope}")
        scope[tokens.PRINCIPAL] = token.name if token is not None else tokens.ANONYMOUS
        return None

    def count(self, scope: Scope, status: int) -> None:
        # bounded: routes come from the route table (metrics.route_label), codes are HTTP's
        hot = scope.get(HOT)  # the hot lane's route, parsed already: its label without a walk
        label = (_HOT_LABELS[hot[0]] if hot is not None else metrics.route_label(scope), status)
        counter = self._counters.get(label)
        if counter is None:
            counter = self._counters[label] = self.st.metrics.requests.labels(
                route=label[0], status=str(label[1])
            )
        counter.inc()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def counting_send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            refusal = self.refusal(scope)
            if refusal is not None:
                await problems.problem_response(refusal)(scope, receive, counting_send)
            else:
                await self.app(scope, receive, counting_send)
        finally:
            self.count(scope, status["code"])


def create_app(settings: GatewaySettings | None = None, *, app: App | None = None) -> FastAPI:
    """Build the gateway. Settings default to the environment (``RELIQ_*``)."""
    settings = settings or GatewaySettings.from_env()
    if app is None and settings.app:
        from reliq.loading import load_app

        app = load_app(settings.app)
    client = Client(settings.redis_url, recheck=settings.wait_recheck)
    placer = Placer(client, settings.replicas, settings.wait_timeout_ms, settings.max_queued)
    st = GatewayState(settings=settings, client=client, catalog=Catalog(client, app), placer=placer)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        st.metrics.started()
        try:
            st.gate.verify(await client.durability())
        except Exception as e:  # Redis not up yet: readyz keeps checking
            log.warning("durability not verified at start: %s", type(e).__name__)
        log.info(
            "gateway durability %s%s",
            settings.durability,
            f" REFUSED: {st.gate.refusal}" if st.gate.refusal else "",
        )
        if not settings.tokens:
            log.warning("no API tokens configured: bind the gateway to 127.0.0.1 only")
        gc.collect()
        gc.freeze()  # the long-lived heap (FastAPI, pydantic, redis) is never scanned again
        # 64 requests in flight hold a few thousand young objects: at the default 700 every few
        # requests walked them and promoted them into older generations (GC time 4.5% of a /call
        # run against 0.8% at 7,000; as the worker does, reliq/worker/run.py)
        gc.set_threshold(7000, 10, 10)
        publish = asyncio.create_task(metrics_route.publish_loop(st)) if st.metrics.directory else None
        yield
        if publish is not None:
            publish.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publish
        await client.close()
        st.metrics.stopped()

    api = fastpath.Gateway(
        openapi_url=None,  # served by gateway.openapi, with each handler's input schema
        docs_url=None,
        redoc_url=None,
        title="reliq gateway",
        version="0.1.0",
        lifespan=lifespan,
        description="Reliable RPC over HTTP: a 2xx means the trigger is durably placed.",
    )
    api.state.reliq = st
    api.router.redirect_slashes = False  # /send/s/h/ is an unknown path (404), not a 307 without a body
    problems.install(api)
    api.router.routes.extend(ingress.routes)
    api.include_router(invocations.router)
    api.include_router(promises.router)
    api.include_router(admin.router)
    api.include_router(admin_schedules.router)
    api.include_router(admin_flow.router)
    api.include_router(health.router)
    api.include_router(services.router)
    api.include_router(metrics_route.router)
    api.include_router(openapi.router)
    api.include_router(dashboard.router)
    api.add_middleware(Guard, st=st)
    api.add_middleware(Edge, settings=settings)  # outermost: Host, cross-site, HEAD
    # POST /send and /call skip FastAPI's stack: the same checks, in one callable
    api.lane = fastpath.Lane(api, Edge(api, settings), Guard(api, st=st), st)
    return api
