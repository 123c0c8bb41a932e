"""Reap: delete dead consumers' names from each partition's group (nothing pending, idle longer
than ``reap_after``), so the group does not grow by one consumer per worker process ever
started. Any number of workers may reap: the script re-checks each consumer itself."""

from __future__ import annotations

import logging
import random

from redis.exceptions import ResponseError

from reliq.errors import TRANSIENT
from reliq.store.keys import LEVELS, ServiceKeys
from reliq.worker.consume import ensure_group
from reliq.worker.inflight import Runtime

log = logging.getLogger("reliq.worker.reap")


async def reap_once(rt: Runtime, k: ServiceKeys) -> list[str]:
    reaped: list[str] = []
    for level in LEVELS:  # each stream has its own group: a consumer is reaped from each alone
        reaped += await rt.client.scripts.reap(k.at(level), int(rt.config.reap_after * 1000))
    if reaped:
        log.info("removed %d idle consumers without pending entries from %s", len(reaped), k.prefix)
    return reaped


async def reap_loop(rt: Runtime, k: ServiceKeys) -> None:
    await rt.sleep(random.uniform(0, rt.config.reap_every))  # workers started together spread out
    while not rt.stopping.is_set():
        try:
            await reap_once(rt, k)
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            await ensure_group(rt, k)
        except TRANSIENT as e:
            log.warning("reaping %s failed: %s", k.prefix, e)
        await rt.sleep(rt.config.reap_every)
