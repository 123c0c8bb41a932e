"""Registry publication: at start a worker adds its services to ``reliq:services``, writes one
``HandlerEntry`` per handler (input schema, limits) to ``reliq:{S}:registry``, its schemas by
version to ``reliq:{S}:schemas``, its retention to ``reliq:{S}:settings`` (the admin actions'
discard and cancel use it) and its intake specs (max queued, default priorities) to each
partition's flow hash, so the gateway can route and validate requests and the
dashboard can list services before any work exists.

Written once per start, not refreshed: an entry describes code, which only changes with a
restart (the next start overwrites it). Which versions are *live* is said by the heartbeats
(``schema_versions``), so two versions side by side during a rolling deploy are both seen.

The flow-control specs (``store/flow.py``) are written to ``reliq:{S}:flow`` of every partition
(the scripts read them there, in their own slot): the code's spec per handler, and a handler
without limits has its code field removed (an operator's ``!`` override stays)."""

from __future__ import annotations

from reliq.service import App, Service
from reliq.store import flow, intake
from reliq.store.keys import SERVICES, ServiceKeys
from reliq.store.registry import RETENTION, encode
from reliq.worker.inflight import Runtime


async def publish_registry(rt: Runtime) -> None:
    async with rt.client.redis.pipeline(transaction=False) as p:
        for s in rt.app.services.values():
            k = rt.client.keys(s.name)
            p.sadd(SERVICES, s.name)
            p.hset(k.settings, RETENTION, rt.config.retention_ms)  # what admin actions expire with
            if s.handlers:
                entries = [h.describe() for h in s.handlers.values()]
                p.hset(k.registry, mapping={e.handler: encode(e) for e in entries})
                p.hset(k.schemas, mapping={e.schema_version: encode(e.input_schema) for e in entries})
        await p.execute()
    for s in rt.app.services.values():
        await publish_intake(rt, s)


async def publish_intake(rt: Runtime, s: Service) -> None:
    """The code's max queued, default priorities and flow specs in every partition, the limit
    spread over the partition count in force; first partition 0's flow hash (an operator's
    overrides) is spread to every partition (``intake.spread``). At start, and whenever the
    worker sees the service's partition count change."""
    partitions = await rt.client.partition_keys(s.name)
    count = (await rt.client.layout(s.name)).partitions
    await intake.spread(rt.client.redis, partitions, count)
    priorities = {h.name: h.policy.priority for h in s.handlers.values()}
    await intake.publish(rt.client.redis, partitions, s.max_queued, priorities, count)
    await publish_flow(rt, partitions)


async def publish_flow(rt: Runtime, partitions: list[ServiceKeys]) -> None:
    """Write the code's flow specs of these partitions' services into each partition."""
    for k in partitions:
        handlers = rt.app.services[k.service].handlers.values()
        specs = {h.name: flow.encode(h.flow) for h in handlers if h.flow is not None}
        gone = [h.name for h in handlers if h.flow is None]
        key = flow.flow_keys(k)[0]
        async with rt.client.redis.pipeline(transaction=False) as p:
            if specs:
                p.hset(key, mapping=specs)
            if gone:
                p.hdel(key, *gone)
            await p.execute()


def schema_versions(app: App) -> dict[str, dict[str, str]]:
    """Service -> handler -> the schema version this worker runs (carried by its heartbeats)."""
    return {
        s.name: {h.name: h.describe().schema_version for h in s.handlers.values()}
        for s in app.services.values()
    }
