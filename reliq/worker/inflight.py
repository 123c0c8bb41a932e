"""State shared by the worker's loops: the client, the slot limiter, and the in-flight table
(what this worker runs, settles or is claiming, so it never claims the same invocation twice)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reliq.client import Client
from reliq.service import App
from reliq.store.keys import ServiceKeys
from reliq.worker.adapt import Adaptive
from reliq.worker.config import WorkerConfig
from reliq.worker.limits import Limiter

if TYPE_CHECKING:
    from reliq.worker.waits import Waits


@dataclass(eq=False, slots=True)  # slots: one GC-tracked object per entry, not two (hot path)
class InFlight:
    """One invocation this worker holds the lease of: its partition, stream entry and epoch."""

    id: str
    keys: ServiceKeys
    entry: str
    epoch: int
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False
    lease_lost: bool = False
    settling: bool = False  # writing retry/park: let it finish, the script checks the flag itself
    started: bool = False  # its handler runs (before that, a cancel is noted, not thrown in)
    compensating: bool = False  # claimed to compensate: the cancel it answers must not cut it short
    waits: Waits | None = None  # the handler's durable waits (a cancel is raised into them)
    parent: bool = False  # has a parent: its outcome goes through the outbox (wake the relay)
    joining: bool = False  # a sync handler's attempt is over, its thread still runs (blocking.joined)
    journal: bool = True  # may have journal keys (steps, children, inbox) that settle must expire
    # time.monotonic() by which the lease may have lapsed: the last claim or renewal's send time
    # plus the lease (the server's lease runs from later); leases.py, execute, ctx.step read it
    lease_until: float = math.inf


@dataclass(eq=False)
class Runtime:
    app: App
    client: Client
    config: WorkerConfig
    consumer: str
    limiter: Limiter
    inflight: dict[str, InFlight] = field(default_factory=dict)
    unflushed: set[str] = field(default_factory=set)  # finished here, outcome not yet written
    claiming: set[str] = field(default_factory=set)  # claim script under way
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    processed: int = 0
    processed_by: dict[str, int] = field(default_factory=dict)  # service -> outcomes written
    suspended: int = 0  # attempts that ended suspended
    ticks_placed: int = 0  # schedule ticks this worker placed (worker/cron.py)
    resumed: int = 0  # suspensions whose wait was over at once (queued again by the script)
    relay_wake: asyncio.Event = field(default_factory=asyncio.Event)  # outbox messages written
    adapt: Adaptive | None = None  # the adaptive limit's state (None: a fixed concurrency)

    @property
    def batch(self) -> int:
        """Entries a read or reclaim asks for at most (it holds that many slots, or fewer)."""
        if self.config.batch is not None:
            return self.config.batch
        return self.adapt.batch if self.adapt is not None else 100

    def inflight_by(self) -> dict[str, int]:
        """Service -> invocations this worker holds now (one walk of the in-flight table)."""
        out: dict[str, int] = {}
        for f in self.inflight.values():
            out[f.keys.service] = out.get(f.keys.service, 0) + 1
        return out

    def holds(self, invocation_id: str, claiming: bool = True) -> bool:
        """Is this worker still running, or settling, that invocation (or, with ``claiming``,
        claiming it)?"""
        return (
            invocation_id in self.inflight
            or invocation_id in self.unflushed
            or (claiming and invocation_id in self.claiming)
        )

    def stop(self) -> None:
        """Stop reading: wake every loop that sleeps or waits for a slot."""
        self.stopping.set()
        self.limiter.close()

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when the worker starts stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
