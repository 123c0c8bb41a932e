"""Settle: the only writer of outcomes. Completions (succeeded, cancelled) are batched, one
``complete`` script call per partition per flush; retries and parks are written at once.

Every write is epoch-fenced in its script and every script is idempotent, so a Redis error is
retried, but only for ``settle_patience`` seconds: a write that keeps failing (a server down for
long, or a bug in the key layout) is logged as an error and given up, its local bookkeeping is
dropped and its entry is left pending, so that reclaim runs the invocation again. Nothing is
acked before its outcome is written."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ResponseError

from reliq import codec
from reliq.backoff import retrying
from reliq.errors import TRANSIENT
from reliq.store.keys import ServiceKeys
from reliq.worker import failpoints
from reliq.worker.decide import Abandon, Complete, Outcome, Park, RetryLater, Suspended
from reliq.worker.inflight import InFlight, Runtime

log = logging.getLogger("reliq.worker.settle")
T = TypeVar("T")
FLUSH_BATCH = 500  # completions per script call
# OOM and the like recover when memory frees up; a script error that never does surfaces after
# settle_patience instead of hot-looping
_RETRIED: tuple[type[Exception], ...] = (*TRANSIENT, ResponseError)
# invocation id, entry id, epoch, state, result, journal (pass its journal keys too)
_Item = tuple[str, str, int, str, bytes, bool]


class GaveUp(Exception):
    """An outcome write kept failing for ``settle_patience`` seconds."""


class Settler:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._buffer: dict[str, tuple[ServiceKeys, list[_Item]]] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._relayed: set[str] = set()  # queued completions of invocations with a parent
        self.fenced = 0
        self.given_up = 0

    async def settle(self, f: InFlight, outcome: Outcome) -> None:
        """Write ``outcome`` of the attempt ``f`` holds (completions are queued for ``run``).
        An outcome with a parent wakes the relay once its script has written the outbox message
        (woken earlier, the relay finds the outbox empty and sleeps until the next sweep)."""
        if isinstance(outcome, Complete):
            self.complete(f, outcome)
        elif isinstance(outcome, RetryLater):
            error = codec.encode(outcome.error)
            delay_ms = int(outcome.delay * 1000)
            mode = 1 if outcome.compensate else 2 if outcome.interrupted else 0
            await self._write(
                f,
                "retry",
                lambda: self.rt.client.scripts.retry(
                    f.keys, f.id, f.entry, f.epoch, delay_ms, error, self.rt.config.retention_ms, mode
                ),
            )
        elif isinstance(outcome, Park):
            error, reason = codec.encode(outcome.error), outcome.reason
            await self._write(
                f,
                "park",
                lambda: self.rt.client.scripts.park(
                    f.keys, f.id, f.entry, f.epoch, reason, error, self.rt.config.retention_ms
                ),
            )
        elif isinstance(outcome, Suspended):
            waits, detail = outcome.waits, outcome.detail
            status = await self._write(
                f,
                "suspend",
                lambda: self.rt.client.scripts.suspend(f.keys, f.id, f.entry, f.epoch, waits, detail),
            )
            if status == "suspended":
                self.rt.suspended += 1
            elif status == "resumed":
                self.rt.resumed += 1
        elif isinstance(outcome, Abandon) and outcome.reason == "lease-lost":
            log.warning("lease lost on %s; not committing", f.id)
        if f.parent and not isinstance(outcome, Complete):
            self.rt.relay_wake.set()  # its outcome goes to its parent through the outbox

    def complete(self, f: InFlight, outcome: Complete) -> None:
        """Queue a final outcome, without awaiting anything (the hot path: one per success)."""
        slot = self._buffer.get(f.keys.stream)  # one buffer per partition and level (stream)
        if slot is None:
            slot = self._buffer[f.keys.stream] = (f.keys, [])
        slot[1].append((f.id, f.entry, f.epoch, outcome.state, outcome.result, f.journal))
        if f.parent:
            self._relayed.add(f.id)  # wake the relay after the flush that writes its message
        self.rt.unflushed.add(f.id)
        self._idle.clear()
        self._wake.set()

    async def run(self) -> None:
        """Flush loop: one ``complete`` script call per partition per flush (up to 500 each)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._buffer:
                prefix, (keys, items) = next(iter(self._buffer.items()))
                batch, rest = items[:FLUSH_BATCH], items[FLUSH_BATCH:]
                if rest:
                    self._buffer[prefix] = (keys, rest)
                else:
                    del self._buffer[prefix]
                await self._flush(keys, batch)
            self._idle.set()

    async def _flush(self, keys: ServiceKeys, batch: list[_Item]) -> None:
        retention_ms = self.rt.config.retention_ms
        try:
            statuses = await self._retrying(
                f"complete on {keys.prefix}",
                lambda: self.rt.client.scripts.complete(keys, retention_ms, batch),
            )
            failpoints.hit("after_complete")  # crash tests: written, nothing relayed yet
        except GaveUp:
            self.given_up += len(batch)
        else:
            again = [(*item[:5], True) for item, st in zip(batch, statuses, strict=True) if st == "keys"]
            if again:  # rare: an attempt that touched no journal, of an invocation that has one
                await self._flush(keys, again)
                batch = [item for item, st in zip(batch, statuses, strict=True) if st != "keys"]
            self.fenced += statuses.count("fenced")
            self.rt.processed += len(batch)
            self.rt.processed_by[keys.service] = self.rt.processed_by.get(keys.service, 0) + len(batch)
        self.rt.unflushed.difference_update(item[0] for item in batch)
        if self._relayed:
            before = len(self._relayed)
            self._relayed.difference_update(item[0] for item in batch)
            if len(self._relayed) < before:
                self.rt.relay_wake.set()

    async def drain(self) -> None:
        """Wait until everything queued is written."""
        await self._idle.wait()

    async def _write(self, f: InFlight, what: str, op: Callable[[], Awaitable[str]]) -> str | None:
        try:
            status = await self._retrying(f"{what} of {f.id}", op)
        except GaveUp:
            self.given_up += 1
            return None
        failpoints.hit(f"after_{what}")  # crash tests: written, nothing relayed yet
        return status

    async def _retrying(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        try:
            return await retrying(op, what=what, deadline=self.rt.config.settle_patience, transient=_RETRIED)
        except _RETRIED as e:
            log.error(
                "gave up writing the outcome (%s: %s); the entry stays pending and will be "
                "reclaimed and run again",
                what,
                e,
            )
            raise GaveUp(what) from e
