"""The gate: callers of one client take turns for its connections, first come first served.

redis-py's connection pools are not fair. The single-node ``BlockingConnectionPool`` wakes a
waiter when a connection comes back, but a caller arriving meanwhile takes it first, and the
woken waiter goes to the back of the queue: with many more concurrent callers than connections
(a gateway or a producer under load, or every caller retrying at once after an outage) a few of
them waited 5, 10, 20 s while the rest went through in milliseconds (docs/reliability.md,
finding 12). The async ``RedisCluster`` does not wait at all: past ``max_connections`` per node it
raises ``MaxConnectionsError``.

So every command and pipeline of reliq's clients first takes a slot of an ``asyncio.Semaphore``
(FIFO since Python 3.11.1: a released slot goes to the longest waiter), of as many slots as the
pool has connections for them. A caller that waits ``GATE_TIMEOUT`` s for a slot fails with a
``ConnectionError``, as the pool's own wait did (reliq retries it as any transient error).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

GATE_TIMEOUT = 20.0  # seconds a caller waits for a slot (the pool's own wait before)
SPARE = 8  # pool connections beyond the gate: pub/sub, a pipeline's script load


class GatedRedis(Redis):
    """``Redis`` whose commands and pipelines take turns at ``gate`` (set by ``connect``)."""

    gate: asyncio.Semaphore

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        gate = self.gate  # (inline: a single server's commands never run inside one another)
        await (gate.acquire() if not gate.locked() else _turn(gate, GATE_TIMEOUT))
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call, unused-ignore]
        finally:
            gate.release()

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        p = _GatedSinglePipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        p.gate = self.gate
        return p


class _GatedSinglePipeline(Pipeline):
    gate: asyncio.Semaphore

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        async with gated(self.gate):
            return await super().execute(raise_on_error)


class GatedCluster(RedisCluster):
    """``RedisCluster`` whose callers wait for a free connection instead of failing, in turn.

    At most ``gate`` commands or pipelines run at once; each uses at most one connection per
    node, so no node's pool is ever exhausted.
    """

    def __init__(self, *, gate: int, **kwargs: Any) -> None:
        super().__init__(max_connections=gate, **kwargs)
        self.gate = asyncio.Semaphore(gate)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._initialize:
            # read the slot map first: redis-py picks a command's node before it initializes, and
            # without a default node yet it sends keyed commands to any node; a cold client's
            # concurrent first commands then got MOVED, re-read the map in a storm, and broke each
            # other's half-open connections (RuntimeError "handler is closed", not retried)
            await self.initialize()
        async with gated(self.gate):
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        return _GatedPipeline(self, transaction)  # type: ignore[abstract]


class _GatedPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        gate: asyncio.Semaphore = self.cluster_client.gate  # type: ignore[attr-defined]
        async with gated(gate):
            return await super().execute(raise_on_error, allow_redirections)


_HOLDING: ContextVar[bool] = ContextVar("reliq_gate", default=False)


@asynccontextmanager
async def gated(gate: asyncio.Semaphore, timeout: float = GATE_TIMEOUT) -> AsyncIterator[None]:
    """Take a slot, unless this task already holds one: a pipeline that retries a redirected
    command runs ``execute_command`` inside its own slot, and must not wait for a second one."""
    if _HOLDING.get():
        yield
        return
    await (gate.acquire() if not gate.locked() else _turn(gate, timeout))
    token = _HOLDING.set(True)
    try:
        yield
    finally:
        _HOLDING.reset(token)
        gate.release()


async def _turn(gate: asyncio.Semaphore, timeout: float) -> None:
    """Wait for a slot behind the callers already waiting, ``timeout`` s at most."""
    try:
        async with asyncio.timeout(timeout):
            await gate.acquire()
    except TimeoutError as e:
        raise RedisConnectionError(f"no connection free within {timeout:g} s") from e
