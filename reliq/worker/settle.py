"""Settle finished attempts: complete (batched, one script call per flush and service), retry
later, or park. Every write is epoch-fenced in its script, and every script is idempotent, so a
Redis hiccup is retried until it goes through; nothing is acked before its outcome is written."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from reliq.errors import TRANSIENT
from reliq.store.keys import ServiceKeys
from reliq.worker.runtime import Runtime

log = logging.getLogger("reliq.worker.settle")
T = TypeVar("T")
_TRANSIENT = TRANSIENT


class Settler:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._buffer: dict[str, tuple[ServiceKeys, list[tuple[str, str, int, str, bytes]]]] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.fenced = 0

    def complete(
        self, keys: ServiceKeys, inv: str, entry: str, epoch: int, state: str, result: bytes
    ) -> None:
        """Queue a final outcome ('succeeded' or 'cancelled'); flushed by ``run``."""
        slot = self._buffer.get(keys.prefix)  # one buffer per partition: one slot per script call
        if slot is None:
            slot = self._buffer[keys.prefix] = (keys, [])
        slot[1].append((inv, entry, epoch, state, result))
        self.rt.unflushed.add(inv)
        self._idle.clear()
        self._wake.set()

    async def run(self) -> None:
        """Flush loop: one ``complete`` script call per partition per flush (up to 500 each)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._buffer:
                service, (keys, items) = next(iter(self._buffer.items()))
                batch, rest = items[:500], items[500:]
                if rest:
                    self._buffer[service] = (keys, rest)
                else:
                    del self._buffer[service]
                statuses = await self._retrying(
                    partial(self.rt.client.scripts.complete, keys, self.rt.config.retention_ms, batch)
                )
                self.fenced += statuses.count("fenced")
                self.rt.processed += len(batch)
                self.rt.unflushed.difference_update(item[0] for item in batch)
            self._idle.set()

    async def drain(self) -> None:
        """Wait until everything queued is written."""
        await self._idle.wait()

    async def retry(
        self, keys: ServiceKeys, inv: str, entry: str, epoch: int, delay: float, error: bytes
    ) -> str:
        return await self._retrying(
            lambda: self.rt.client.scripts.retry(
                keys, inv, entry, epoch, int(delay * 1000), error, self.rt.config.retention_ms
            )
        )

    async def park(
        self, keys: ServiceKeys, inv: str, entry: str, epoch: int, reason: str, error: bytes
    ) -> str:
        return await self._retrying(
            lambda: self.rt.client.scripts.park(
                keys, inv, entry, epoch, reason, error, self.rt.config.retention_ms
            )
        )

    async def _retrying(self, op: Callable[[], Awaitable[T]]) -> T:
        pause = 0.05
        while True:
            try:
                return await op()
            except _TRANSIENT as e:
                log.warning("settle failed (%s); retrying", e)
                await asyncio.sleep(pause * (1 + random.random()))
                pause = min(pause * 2, 2.0)
