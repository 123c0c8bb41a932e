"""Place triggers durably, with group commit: registrations that arrive while a flush is under way
are placed together by the next flush, in one script call per service (one round trip, one fsync
on an ``appendfsync always`` server), then the configured durability is confirmed on the same
connection before any of those requests is answered.

- ``fsync``: the script's reply already means the write is on disk (the server was checked to run
  ``appendfsync always``; never assumed).
- ``replicas:N``: ``WAIT N timeout`` in the same pipeline as the script, sent to the node that owns
  the partition (on a Cluster too: never broadcast); fewer than N acks is a 503 "not confirmed"
  for the whole batch (the writes may exist; a retry with the same Idempotency-Key converges on
  them).
- ``none``: development only; reported as such in every answer.

Batches are per partition: one script call touches one slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from datetime import datetime

from redis.exceptions import AskError, RedisClusterException, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from reliq import Client
from reliq.codec import fingerprint
from reliq.store.keys import ServiceKeys
from reliq.store.record import Accepted
from reliq.store.scripts import Registered, Registration, pairs

from . import failpoints
from .problems import Problem, unavailable

MAX_BATCH = 500
Waiter = tuple[Registration, "asyncio.Future[tuple[str, str]]"]


class Placer:
    def __init__(self, client: Client, replicas: int, wait_ms: int) -> None:
        self.client, self.replicas, self.wait_ms = client, replicas, wait_ms
        self._queues: dict[ServiceKeys, list[Waiter]] = defaultdict(list)
        self._flushing: set[ServiceKeys] = set()
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
        delay_ms: int | None,
        at: datetime | None,
        trace: str = "",
    ) -> Accepted:
        inv = await self.client.id_for(service, key)
        k = self.client.keys_of(inv)
        due_ms = None if at is None else int(at.timestamp() * 1000)
        item = Registration(
            id=inv,
            fp=fingerprint(handler, body),
            handler=handler,
            payload=body,
            key=key or "",
            delay_ms=delay_ms,
            due_ms=due_ms,
            trace=trace,
        )
        future: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        self._queues[k].append((item, future))
        if k not in self._flushing:
            self._flushing.add(k)
            task = asyncio.create_task(self._flush(k))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        status, state = await future
        failpoints.hit("after_register")  # crash tests: the trigger is placed, the caller never hears
        if status == "conflict":
            raise Problem(
                422,
                "Unprocessable Content",
                "this Idempotency-Key was already used with a different request",
                invocation_id=inv,
            )
        return Accepted(id=inv, status=status, state=state)  # type: ignore[arg-type]

    async def _flush(self, k: ServiceKeys) -> None:
        try:
            while self._queues[k]:
                batch = self._queues[k][:MAX_BATCH]
                del self._queues[k][:MAX_BATCH]
                try:
                    results = await self._commit(k, [item for item, _ in batch])
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
            self._flushing.discard(k)
            if not self._queues.get(k):
                self._queues.pop(k, None)

    async def _commit(self, k: ServiceKeys, items: list[Registration]) -> list[Registered]:
        self.flushes += 1
        self.placed += len(items)
        if self.replicas == 0:
            return await self.client.scripts.register_many(k, items)
        node = await self.client.topology.node_for(k.stream)
        try:
            async with node.pipeline(transaction=False) as pipe:
                await self.client.scripts.register_many(k, items, pipe=pipe)
                pipe.execute_command("WAIT", self.replicas, self.wait_ms)
                reply, acked = await pipe.execute()
        except (ResponseError, RedisConnectionError, RedisTimeoutError) as e:
            # MOVED/ASK (redis-py raises MovedError/AskError, whose text has no "MOVED" prefix)
            # or a dead node: the slot map changed (failover, resharding). This pipeline goes to a
            # plain per-node client, so nothing else refreshes the map for this partition.
            moved = isinstance(e, AskError) or str(e).startswith(("MOVED", "ASK"))
            if moved or not isinstance(e, ResponseError):
                with contextlib.suppress(RedisError, RedisClusterException):
                    await self.client.topology.refresh()
            if moved:
                raise unavailable(
                    "the cluster's slot map changed; retry with the same Idempotency-Key"
                ) from e
            raise
        if int(acked) < self.replicas:
            raise unavailable(
                f"only {int(acked)} of {self.replicas} replicas confirmed the write; retry with "
                "the same Idempotency-Key"
            )
        return pairs(reply)
