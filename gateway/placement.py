"""Place triggers durably, with group commit: registrations that arrive while a flush is under way
are placed together by the next flush, in one script call per partition (one round trip, one
fsync on an ``appendfsync always`` server), and the configured durability is confirmed before any
of those requests is answered. Up to ``IN_FLIGHT`` (2) flushes of one partition are under way at
once: the next batch is written while the last one's reply is awaited, so neither the gateway nor
the server idles through the other's half of the round trip (docs/performance.md: +7-10% requests
per second and a p99 1-1.5 ms lower under ``wrk -c64``; 4 in flight was worse than 2).

This module owns the batching and what the answers mean over HTTP; building a registration and
writing a batch are reliq's one producer path (``Client.prepare``, ``Client.register_many``), the
same that ``Client.send`` takes.

- ``fsync``: the script's reply already means the write is on disk (the server was checked to run
  ``appendfsync always``; never assumed).
- ``replicas:N``: ``WAIT N timeout`` in the same pipeline as the script, sent to the node that owns
  the partition (on a Cluster too: never broadcast); fewer than N acks is a 503 "not confirmed"
  for the whole batch (the writes may exist; a retry with the same Idempotency-Key converges on
  them).
- ``none``: development only; reported as such in every answer.

Backpressure: ``register.lua`` refuses the new invocations of a batch past the service's
``max_queued`` (``reliq.store.intake``; ``RELIQ_MAX_QUEUED`` when the service set none) one by one,
so only the requests over the limit get 429 (with ``Retry-After``); re-sends of accepted keys
answer as before.

Batches are per partition (``Client.where``): one script call touches one slot.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from reliq import Accepted, Client
from reliq.client.producer import MAX_BATCH, Where
from reliq.errors import Backpressure, NotConfirmed
from reliq.store.flow import BAD_KEY, BadKey
from reliq.store.scripts import Registered, Registration

from . import failpoints
from .problems import Problem, unavailable

Waiter = tuple[Registration, "asyncio.Future[Registered]"]
IN_FLIGHT = 2  # flushes of one partition under way at once


class Placer:
    def __init__(self, client: Client, replicas: int, wait_ms: int, max_queued: int | None = None) -> None:
        self.client, self.replicas, self.wait_ms = client, replicas, wait_ms
        self.max_queued = max_queued  # the default of services that set none (RELIQ_MAX_QUEUED)
        self._queues: dict[Where, list[Waiter]] = defaultdict(list)
        self._flushing: dict[Where, int] = defaultdict(int)  # flushes under way, per partition
        self._tasks: set[asyncio.Task[None]] = set()
        self.flushes = 0  # script calls made; placed / flushes = the average batch
        self.placed = 0

    async def place(
        self,
        service: str,
        handler: str,
        body: bytes,
        *,
        key: str | None,
        delay: float | None,
        at: datetime | None,
        trace: str = "",
        reply_to: str | None = None,
        priority: str | None = None,
        flow_key: str = "",
        before_commit: Callable[[str], None] | None = None,
    ) -> Accepted:
        """Place one invocation (names and key already checked by ingress) with the next batch
        of its partition; answer once that batch is confirmed. ``flow_key``: the value of a
        callable concurrency key (computed by ingress with the App's code). ``before_commit``: called
        with the invocation's id before it can be written (``/call`` registers its waiter there)."""
        try:
            item = await self.client.prepare(
                service,
                handler,
                body,
                key=key,
                delay=delay,
                at=at,
                trace=trace,
                reply_to=reply_to,
                priority=priority,
                flow_key=flow_key,
            )
        except BadKey:  # a multi-partition service routes by the key: checked before anything is written
            raise Problem(422, "Unprocessable Content", BAD_KEY) from None
        if before_commit is not None:
            before_commit(item.id)
        where = self.client.where(item.id)
        future: asyncio.Future[Registered] = asyncio.get_running_loop().create_future()
        queue = self._queues[where]
        queue.append((item, future))
        under_way = self._flushing[where]
        # a flush not yet started takes the rest of the queue; with none under way (one was
        # cancelled, its queue left behind), start one whatever the queue holds
        if under_way < IN_FLIGHT and (len(queue) == 1 or not under_way):
            self._flushing[where] += 1
            task = asyncio.create_task(self._flush(where))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        status, state = await future
        failpoints.hit("after_register")  # crash tests: the trigger is placed, the caller never hears
        if status == "conflict":
            raise Problem(
                422,
                "Unprocessable Content",
                "this Idempotency-Key was already used with a different request",
                invocation_id=item.id,
            )
        if status == "bad_key":
            raise Problem(422, "Unprocessable Content", BAD_KEY)
        if status == "backpressure" or not state:
            e = Backpressure(service)
            raise Problem(429, "Too Many Requests", str(e), headers={"Retry-After": f"{e.retry_after:.0f}"})
        return Accepted(id=item.id, status=status, state=state)

    async def _flush(self, where: Where) -> None:
        try:
            while self._queues[where]:
                batch = self._queues[where][:MAX_BATCH]
                del self._queues[where][:MAX_BATCH]
                try:
                    results = await self._commit(where, [item for item, _ in batch])
                except BaseException as e:  # every waiter of the batch hears the same failure
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(e if isinstance(e, Exception) else unavailable())
                    if not isinstance(e, Exception):
                        raise
                else:
                    for (_, fut), result in zip(batch, results, strict=True):
                        if not fut.done():
                            fut.set_result(result)
        finally:
            self._flushing[where] -= 1
            if not self._flushing[where]:
                del self._flushing[where]
            if not self._queues.get(where):
                self._queues.pop(where, None)

    async def _commit(self, where: Where, items: list[Registration]) -> list[Registered]:
        self.flushes += 1
        self.placed += len(items)
        try:
            return await self.client.register_many(
                where, items, replicas=self.replicas, wait_ms=self.wait_ms, max_queued=self.max_queued
            )
        except NotConfirmed as e:
            raise unavailable(f"{e}; retry with the same Idempotency-Key") from e
