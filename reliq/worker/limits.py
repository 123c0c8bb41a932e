"""The worker's one concurrency limit: a capacity of ``concurrency`` slots shared by every read
and reclaim of every service and partition this worker consumes.

A slot is taken *before* Redis is asked for an entry (XREADGROUP / XAUTOCLAIM ``COUNT`` is the
number of slots held) and given back when the handler started on it has finished, or at once
for entries that did not start (skipped, cancelled, lost). So the number of running handlers
can never exceed ``concurrency``, however many loops read in parallel.
"""

from __future__ import annotations

import asyncio


class Limiter:
    """``capacity`` slots; ``acquire`` waits for at least one and takes up to ``n``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self.closed = False
        self._freed = asyncio.Event()

    @property
    def free(self) -> int:
        return self.capacity - self.used

    def try_acquire(self, n: int) -> int:
        """Take up to ``n`` free slots without waiting; returns how many were taken (maybe 0)."""
        taken = max(0, min(n, self.free))
        self.used += taken
        return taken

    async def acquire(self, n: int) -> int:
        """Wait until a slot is free, then take up to ``n``. Returns 0 once the limiter is closed
        (the worker is stopping): the caller stops reading."""
        while not self.closed:
            taken = self.try_acquire(n)
            if taken:
                return taken
            self._freed.clear()
            await self._freed.wait()
        return 0

    def release(self, n: int = 1) -> None:
        """Give ``n`` slots back (a handler finished, or reserved slots went unused)."""
        if n <= 0:
            return
        if n > self.used:
            raise RuntimeError(f"released {n} slots but only {self.used} are held")
        self.used -= n
        self._freed.set()

    def close(self) -> None:
        """Wake every waiter and refuse further waits (shutdown)."""
        self.closed = True
        self._freed.set()
