"""Relay loop: deliver the outbox of every partition this worker consumes (``reliq.client.relay``
has the rules): at once when settle wrote an outcome a parent waits for, else every
``relay_interval`` seconds (the sweep that repairs a relay that crashed between the script that
wrote a message and its delivery)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from reliq.client.relay import BATCH, relay_once
from reliq.errors import TRANSIENT
from reliq.store.keys import ServiceKeys
from reliq.worker.inflight import Runtime

log = logging.getLogger("reliq.worker.relay")


async def relay_loop(rt: Runtime, partitions: list[ServiceKeys]) -> None:
    """One loop for all partitions ``partitions`` lists (the list grows when partitions are added
    to a service while the worker runs)."""
    while not rt.stopping.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(rt.config.relay_interval):
                await rt.relay_wake.wait()
        rt.relay_wake.clear()
        for k in list(partitions):
            try:
                while (await relay_once(rt.client, k))[0] == BATCH:
                    pass
            except TRANSIENT as e:
                log.warning("relay of %s failed: %s", k.outbox, e)
