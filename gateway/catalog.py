"""Which services and handlers exist, and how their bodies are checked. From the App when the
gateway is given one (bodies are then validated with the handler's own msgspec type), otherwise
from what workers publish, cached for ``CACHE_SECONDS``: the registry, and the schema versions
live workers run (``reliq.client.schemas``), each compiled once into a validator
(``gateway.validation``).

The cache is refreshed ahead of its expiry: a request that finds an entry older than
``REFRESH_AFTER`` starts one refresh in the background and is answered from the entry, so under
steady traffic no request waits for the registry (a refresh is several round trips, each behind
the server's fsync) and no entry in use is older than ``CACHE_SECONDS``. Only a request that finds
no entry, or an expired one, waits for the refresh."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import msgspec

from reliq import App, Client
from reliq.client.cache import LRU
from reliq.client.schemas import SchemaVersion

from .validation import Compiled, Validator

CACHE_SECONDS = 2.0
REFRESH_AFTER = CACHE_SECONDS / 2


class HandlerInfo(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    handler: str
    input_schema: dict[str, Any] = {}  # the current schema
    input_type: Any = None  # set only when the gateway has the App
    flow_key: Callable[[Any], Any] | None = None  # with the App: a callable concurrency_key
    takes_input: bool = True
    # without the App: every schema version in force (current first) and its compiled validator
    versions: tuple[SchemaVersion, ...] = ()
    validators: tuple[Validator, ...] = ()


class Catalog:
    def __init__(self, client: Client, app: App | None) -> None:
        self.client = client
        self.app = app
        # bounded: service names come from requests (an unknown one is cached as {} for a while too)
        self._cache: LRU[str, tuple[float, dict[str, HandlerInfo]]] = LRU()
        self._static: dict[str, dict[str, HandlerInfo]] = {}  # from the App: computed once
        self.compiled = Compiled()
        self._refreshing: dict[str, asyncio.Future[dict[str, HandlerInfo]]] = {}

    def cached(self, service: str) -> dict[str, HandlerInfo] | None:
        """The service's handlers when known without waiting (from the App, or a fresh enough
        cache entry: one past ``REFRESH_AFTER`` starts its refresh); None when ``handlers`` must
        read the registry."""
        found = self._static.get(service)
        if found is not None:
            return found
        if self.app is not None and service in self.app.services:
            found = self._static[service] = {
                name: HandlerInfo(
                    service=service,
                    handler=name,
                    input_schema=h.schema(),
                    input_type=h.input_type,
                    takes_input=h.takes_input,
                    flow_key=h.flow_key,
                )
                for name, h in self.app.services[service].handlers.items()
            }
            return found
        hit = self._cache.get(service)
        if hit is None:
            return None
        age = time.monotonic() - hit[0]
        if age >= CACHE_SECONDS:
            return None
        # one refresh per service at a time: the requests arriving meanwhile use the entry
        if age >= REFRESH_AFTER and service not in self._refreshing:
            self._start_refresh(service)
        return hit[1]

    async def handlers(self, service: str) -> dict[str, HandlerInfo]:
        found = self.cached(service)
        if found is not None:
            return found
        # no entry, or an expired one: wait for the one refresh under way (under load, the whole
        # connection count would otherwise read the registry)
        return await asyncio.shield(self._refreshing.get(service) or self._start_refresh(service))

    def _start_refresh(self, service: str) -> asyncio.Future[dict[str, HandlerInfo]]:
        task = self._refreshing[service] = asyncio.ensure_future(self._refresh(service))

        def done(t: asyncio.Future[dict[str, HandlerInfo]]) -> None:
            self._refreshing.pop(service, None)
            if not t.cancelled():
                t.exception()  # a failed refresh ahead of expiry: retried by the next request

        task.add_done_callback(done)
        return task

    async def _refresh(self, service: str) -> dict[str, HandlerInfo]:
        found = {
            name: HandlerInfo(
                service=service,
                handler=name,
                input_schema=s.current.input_schema,
                takes_input=s.takes_input,
                versions=s.versions,
                validators=tuple(self.compiled.get(v.version, v.input_schema) for v in s.versions),
            )
            for name, s in (await self.client.handler_schemas(service)).items()
        }
        self._cache[service] = (time.monotonic(), found)
        return found

    async def lookup(self, service: str, handler: str) -> HandlerInfo | None:
        return (await self.handlers(service)).get(handler)

    async def services(self) -> dict[str, dict[str, HandlerInfo]]:
        names = await self.client.services()
        if self.app is not None:
            names |= set(self.app.services)
        return {s: await self.handlers(s) for s in sorted(names)}
