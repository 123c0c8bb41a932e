"""The worker's one concurrency limit: a capacity of ``concurrency`` slots shared by every read
and reclaim of every service and partition this worker consumes.

A slot is taken *before* Redis is asked for an entry (XREADGROUP / XAUTOCLAIM ``COUNT`` is the
number of slots held) and given back when the handler started on it has finished, or at once
for entries that did not start (skipped, cancelled, lost). So the number of running handlers
can never exceed ``concurrency``, however many loops read in parallel.

Waiters are served in arrival order, so a loop that gives slots back and asks again at once
cannot starve the others. A woken waiter takes everything free when it runs (not just the slot
that woke it), so reads stay batched under load.

The capacity is fixed with an explicit ``concurrency``; by default the adaptive rule
(``reliq.worker.adapt``) moves it with ``resize``. Shrinking never preempts: ``used`` may exceed
the capacity until enough handlers have returned, and no read is served meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class Limiter:
    """``capacity`` slots; ``acquire`` waits for at least one and takes up to ``n``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self.closed = False
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._listeners: set[asyncio.Event] = set()

    @property
    def contended(self) -> bool:
        """Something waits for a slot and none is free: a handler that waits in memory for a
        child, a timer or a promise should suspend and make room (``reliq.worker.waits``)."""
        return bool(self._waiters) and self.free <= 0

    def listen(self, event: asyncio.Event) -> Callable[[], None]:
        """Set ``event`` whenever a read starts waiting for a slot; returns the unsubscribe."""
        self._listeners.add(event)
        return lambda: self._listeners.discard(event)

    @property
    def free(self) -> int:
        return self.capacity - self.used

    def resize(self, capacity: int) -> None:
        """Set the capacity (>= 1). Growing serves waiting reads at once; shrinking takes nothing
        back from running handlers: reads wait until ``used`` falls below the new capacity."""
        if capacity < 1:
            raise ValueError(f"a limiter needs a capacity >= 1, not {capacity}")
        self.capacity = capacity
        self._wake()

    def try_acquire(self, n: int) -> int:
        """Take up to ``n`` free slots without waiting (and without jumping the queue of
        waiters); returns how many were taken, maybe 0."""
        if self._waiters or self.closed:
            return 0
        return self._take(n)

    async def acquire(self, n: int) -> int:
        """Wait until a slot is free, then take up to ``n``. Returns 0 once the limiter is closed
        (the worker is stopping): the caller stops reading."""
        taken = self.try_acquire(n)
        if taken or self.closed:
            return taken
        me = asyncio.get_running_loop().create_future()
        self._waiters.append(me)
        for event in self._listeners:
            event.set()
        try:
            await me
        finally:
            self._waiters.remove(me)
        taken = 0 if self.closed else self._take(n)
        self._wake()  # the next in line may be served too (or pass on a turn we never used)
        return taken

    def release(self, n: int = 1) -> None:
        """Give ``n`` slots back (a handler finished, or slots held for a read went unused)."""
        if n <= 0:
            return
        if n > self.used:
            raise RuntimeError(f"released {n} slots but only {self.used} are held")
        self.used -= n
        if self._waiters:
            self._wake()

    def close(self) -> None:
        """Wake every waiter with nothing and refuse further waits (shutdown)."""
        self.closed = True
        self._wake()

    def _take(self, n: int) -> int:
        taken = max(0, min(n, self.free))
        self.used += taken
        return taken

    def _wake(self) -> None:
        """Wake the head of the queue when it can be served (a slot is free, or closing)."""
        if self._waiters and (self.free > 0 or self.closed) and not self._waiters[0].done():
            self._waiters[0].set_result(None)
