"""Registry publication: at start a worker adds its services to ``reliq:services`` and writes one
``HandlerEntry`` per handler (input schema, limits) to ``reliq:{S}:registry``, so the gateway can
route and validate requests and the dashboard can list services before any work exists.

Written once per start, not refreshed: an entry describes code, which only changes with a
restart (the next start overwrites it)."""

from __future__ import annotations

from reliq.store.keys import SERVICES
from reliq.store.registry import encode
from reliq.worker.inflight import Runtime


async def publish_registry(rt: Runtime) -> None:
    async with rt.client.redis.pipeline(transaction=False) as p:
        for s in rt.app.services.values():
            k = rt.client.keys(s.name)
            p.sadd(SERVICES, s.name)
            if s.handlers:
                p.hset(k.registry, mapping={h.name: encode(h.describe()) for h in s.handlers.values()})
        await p.execute()
