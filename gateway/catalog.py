"""Which services and handlers exist, and how their bodies are checked. From the App when the
gateway is given one (bodies are then validated with the handler's own msgspec type), otherwise
from what workers publish, cached for ``CACHE_SECONDS``: the registry, and the schema versions
live workers run (``reliq.client.schemas``), each compiled once into a validator
(``gateway.validation``)."""

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

    async def handlers(self, service: str) -> dict[str, HandlerInfo]:
        if service in self._static:
            return self._static[service]
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
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        # one refresh per service at a time: the requests arriving meanwhile wait for it instead
        # of each reading the registry (under load, the whole connection count would, every 2 s)
        task = self._refreshing.get(service)
        if task is None:
            task = self._refreshing[service] = asyncio.ensure_future(self._refresh(service))
            task.add_done_callback(lambda _: self._refreshing.pop(service, None))
        return await asyncio.shield(task)

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
