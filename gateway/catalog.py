"""Which services and handlers exist, and their input types or schemas. From the App when the
gateway is given one (bodies are then validated with the handler's own msgspec type), otherwise
from the registry workers publish (cached for a few seconds)."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from reliq import App, Client
from reliq.client.cache import LRU

CACHE_SECONDS = 2.0


class HandlerInfo(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    handler: str
    input_schema: dict[str, Any] = {}
    input_type: Any = None  # set only when the gateway has the App
    takes_input: bool = True


class Catalog:
    def __init__(self, client: Client, app: App | None) -> None:
        self.client = client
        self.app = app
        # bounded: service names come from requests (an unknown one is cached as {} for a while too)
        self._cache: LRU[str, tuple[float, dict[str, HandlerInfo]]] = LRU()
        self._static: dict[str, dict[str, HandlerInfo]] = {}  # from the App: computed once

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
                )
                for name, h in self.app.services[service].handlers.items()
            }
            return found
        hit = self._cache.get(service)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        found = {
            name: HandlerInfo(
                service=service, handler=name, input_schema=entry.input_schema, takes_input=entry.takes_input
            )
            for name, entry in (await self.client.handlers(service)).items()
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
