"""Heartbeats: one key per consumer and service (``reliq:{S}:consumer:<name>``, a ``Heartbeat``)
with a TTL of 3 beats, so the gateway and the dashboard tell live consumers from dead ones by
the key alone: a worker that stops beating disappears without anyone cleaning up after it."""

from __future__ import annotations

import logging
import os
import socket
import time

from reliq.errors import TRANSIENT
from reliq.store.registry import Heartbeat, encode
from reliq.worker.inflight import Runtime

log = logging.getLogger("reliq.worker.heartbeat")


async def beat(rt: Runtime, started: float) -> None:
    ttl_ms = int(rt.config.heartbeat_interval * 3000)
    doc = encode(
        Heartbeat(
            consumer=rt.consumer,
            host=socket.gethostname(),
            pid=os.getpid(),
            started=int(started * 1000),
            inflight=len(rt.inflight),
            concurrency=rt.config.concurrency,
            processed=rt.processed,
            at=int(time.time() * 1000),
        )
    )
    async with rt.client.redis.pipeline(transaction=False) as p:
        for s in rt.app.services:
            p.set(rt.client.keys(s).consumer(rt.consumer), doc, px=ttl_ms)
        await p.execute()


async def heartbeat_loop(rt: Runtime) -> None:
    started = time.time()
    while not rt.stopping.is_set():
        try:
            await beat(rt, started)
        except TRANSIENT as e:
            log.warning("heartbeat failed: %s", e)
        await rt.sleep(rt.config.heartbeat_interval)


async def clear_heartbeat(rt: Runtime) -> None:
    await rt.client.redis.delete(*(rt.client.keys(s).consumer(rt.consumer) for s in rt.app.services))
