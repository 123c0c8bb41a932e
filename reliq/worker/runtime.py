"""State shared by the worker's loops: configuration, the client, and the in-flight table."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from reliq.client import Client
from reliq.service import App
from reliq.store.keys import ServiceKeys


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    """Worker tuning. Times in seconds.

    ``visibility_timeout``: how long an entry may sit unrenewed in a consumer's pending list
    before a live worker reclaims it. Leases are renewed every ``visibility_timeout / 3``.
    ``partitions``: consume only these partition numbers (of every service); None = all.
    Partitions added to a service while the worker runs are picked up within ``layout_interval``.
    """

    concurrency: int = 100
    sync_concurrency: int = 16
    batch: int = 100
    visibility_timeout: float = 30.0
    reclaim_interval: float | None = None
    block: float = 1.0
    heartbeat_interval: float = 5.0
    shutdown_grace: float = 30.0
    retention: float = 24 * 3600.0
    consumer: str | None = None
    partitions: frozenset[int] | None = None
    layout_interval: float = 5.0  # seconds between checks for partitions added to a service
    reap_after: float = 3600.0  # consumers idle this long with nothing pending are deleted
    reap_every: float = 600.0  # seconds between reaping rounds (per partition)

    @property
    def renew_interval(self) -> float:
        return self.visibility_timeout / 3

    @property
    def reclaim_every(self) -> float:
        return (
            self.reclaim_interval
            if self.reclaim_interval is not None
            else min(5.0, self.visibility_timeout / 2)
        )

    @property
    def lease_ms(self) -> int:
        return int(self.visibility_timeout * 1000)

    @property
    def retention_ms(self) -> int:
        return int(self.retention * 1000)


def default_consumer() -> str:
    """``host-pid-random``: unique per process, readable in the dashboard."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass(eq=False)
class InFlight:
    """One invocation this worker is running."""

    id: str
    keys: ServiceKeys
    entry: str
    epoch: int
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False
    lease_lost: bool = False
    settling: bool = False  # writing retry/park: let it finish, the script checks the flag itself


@dataclass(eq=False)
class Runtime:
    app: App
    client: Client
    config: WorkerConfig
    consumer: str
    inflight: dict[str, InFlight] = field(default_factory=dict)
    unflushed: set[str] = field(default_factory=set)  # finished here, outcome not yet written
    claiming: set[str] = field(default_factory=set)  # claim script under way
    slot_freed: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    processed: int = 0

    def holds(self, invocation_id: str) -> bool:
        """Is this worker still running, or settling, that invocation?"""
        return (
            invocation_id in self.inflight
            or invocation_id in self.unflushed
            or invocation_id in self.claiming
        )

    reserved: int = 0  # slots promised to reads under way (several services share the limit)

    @property
    def free(self) -> int:
        return self.config.concurrency - len(self.inflight) - len(self.claiming) - self.reserved

    @contextlib.contextmanager
    def reserve(self, n: int) -> Iterator[None]:
        """Hold ``n`` slots while a read is under way, so parallel reads never exceed the limit."""
        self.reserved += n
        try:
            yield
        finally:
            self.reserved -= n
            self.slot_freed.set()

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when the worker starts stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def wait_for_slot(self) -> None:
        while self.free <= 0 and not self.stopping.is_set():
            self.slot_freed.clear()
            await self.slot_freed.wait()

    def request_cancel(self, invocation_id: str, *, lease_lost: bool = False) -> None:
        """Cancel a running handler: because a cancel was asked for, or because the lease is gone."""
        f = self.inflight.get(invocation_id)
        if f is None or f.task is None or f.settling:
            return
        if lease_lost:
            f.lease_lost = True
        else:
            f.cancel_requested = True
        f.task.cancel()
        asyncio.get_running_loop().create_task(_insist(f))


async def _insist(f: InFlight) -> None:
    """Cancel again until the task ends: a cancellation that lands inside some redis-py awaits
    can be swallowed (redis/redis-py#2028, #2551), which would leave the handler running."""
    pause = 0.1
    while f.task is not None and not f.task.done():
        await asyncio.sleep(pause)
        if f.task is not None and not f.task.done() and not f.settling:
            f.task.cancel()
        pause = min(pause * 2, 2.0)
