"""Registry publication: at start a worker adds its services to ``reliq:services``, writes one
``HandlerEntry`` per handler (input schema, limits) to ``reliq:{S}:registry`` and its schemas by
version to ``reliq:{S}:schemas`` and its intake specs (max queued, default priorities) to each
partition's flow hash, so the gateway can route and validate requests and the
dashboard can list services before any work exists.

Written once per start, not refreshed: an entry describes code, which only changes with a
restart (the next start overwrites it). Which versions are *live* is said by the heartbeats
(``schema_versions``), so two versions side by side during a rolling deploy are both seen."""

from __future__ import annotations

from reliq.service import App
from reliq.store import intake
from reliq.store.keys import SERVICES
from reliq.store.registry import encode
from reliq.worker.inflight import Runtime


async def publish_registry(rt: Runtime) -> None:
    async with rt.client.redis.pipeline(transaction=False) as p:
        for s in rt.app.services.values():
            k = rt.client.keys(s.name)
            p.sadd(SERVICES, s.name)
            if s.handlers:
                entries = [h.describe() for h in s.handlers.values()]
                p.hset(k.registry, mapping={e.handler: encode(e) for e in entries})
                p.hset(k.schemas, mapping={e.schema_version: encode(e.input_schema) for e in entries})
        await p.execute()
    for s in rt.app.services.values():  # max queued and default priorities, in every partition
        priorities = {h.name: h.policy.priority for h in s.handlers.values()}
        await intake.publish(
            rt.client.redis, await rt.client.partition_keys(s.name), s.max_queued, priorities
        )


def schema_versions(app: App) -> dict[str, dict[str, str]]:
    """Service -> handler -> the schema version this worker runs (carried by its heartbeats)."""
    return {
        s.name: {h.name: h.describe().schema_version for h in s.handlers.values()}
        for s in app.services.values()
    }
