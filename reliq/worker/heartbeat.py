"""Heartbeats: one key per consumer and service (``reliq:{S}:consumer:<name>``, a ``Heartbeat``)
with a TTL of 3 beats, so the gateway and the dashboard tell live consumers from dead ones by
the key alone: a worker that stops beating disappears without anyone cleaning up after it.

Each service's key carries that service's numbers: ``inflight`` (its invocations this worker
holds now) and ``processed`` (its outcomes this worker wrote since it started). ``concurrency``
is the worker's limit, which its services share (one limiter for all of them)."""

from __future__ import annotations

import logging
import os
import socket
import time

import msgspec

from reliq.errors import TRANSIENT
from reliq.store.registry import Heartbeat, encode
from reliq.worker.inflight import Runtime
from reliq.worker.registry import schema_versions

log = logging.getLogger("reliq.worker.heartbeat")


async def beat(rt: Runtime, started: float, versions: dict[str, dict[str, str]] | None = None) -> None:
    ttl_ms = int(rt.config.heartbeat_interval * 3000)
    doc_all = Heartbeat(
        consumer=rt.consumer,
        host=socket.gethostname(),
        pid=os.getpid(),
        started=int(started * 1000),
        concurrency=rt.limiter.capacity,  # the adaptive limit as it is now, shared by the services
        at=int(time.time() * 1000),
    )
    versions = schema_versions(rt.app) if versions is None else versions
    held = rt.inflight_by()
    async with rt.client.redis.pipeline(transaction=False) as p:
        for s in rt.app.services:
            mine = {"inflight": held.get(s, 0), "processed": rt.processed_by.get(s, 0)}
            doc = encode(msgspec.structs.replace(doc_all, schemas=versions.get(s, {}), **mine))
            p.set(rt.client.keys(s).consumer(rt.consumer), doc, px=ttl_ms)
        await p.execute()


async def heartbeat_loop(rt: Runtime) -> None:
    started = time.time()
    versions = schema_versions(rt.app)  # code does not change while the process runs
    while not rt.stopping.is_set():
        try:
            await beat(rt, started, versions)
        except TRANSIENT as e:
            log.warning("heartbeat failed: %s", e)
        await rt.sleep(rt.config.heartbeat_interval)


async def clear_heartbeat(rt: Runtime) -> None:
    await rt.client.redis.delete(*(rt.client.keys(s).consumer(rt.consumer) for s in rt.app.services))
