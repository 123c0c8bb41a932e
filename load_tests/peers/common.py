"""What every adapter shares: the Redis URL, the completion counter of the no-op tasks (visible to
the harness through a file), and a bounded-concurrency enqueue loop on uvloop.

A worker process started with ``BENCH_PROGRESS=/path`` runs a daemon thread that rewrites that
file (``count first last``, CLOCK_MONOTONIC seconds, system-wide on Linux) every 20 ms while
the count changes. Each task body calls ``tick()`` once; thread-safe for threaded workers.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
INTERVAL_S = 0.02
MAX_LIFETIME_S = 3600.0


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.first = 0.0
        self.last = 0.0

    def tick(self) -> None:
        now = time.monotonic()
        with self.lock:
            if not self.count:
                self.first = now
            self.count += 1
            self.last = now

    def dump(self, path: str) -> None:
        """Rewrite ``path`` atomically while the count changes; bounded by MAX_LIFETIME_S."""
        tmp, written = f"{path}.tmp", -1
        for _ in range(int(MAX_LIFETIME_S / INTERVAL_S)):
            with self.lock:
                count, line = self.count, f"{self.count} {self.first} {self.last}\n"
            if count != written:
                with open(tmp, "w") as f:
                    f.write(line)
                os.replace(tmp, path)
                written = count
            time.sleep(INTERVAL_S)


COUNTER = Counter()
tick = COUNTER.tick

_path = os.environ.get("BENCH_PROGRESS")
if _path:
    threading.Thread(target=COUNTER.dump, args=(_path,), daemon=True, name="bench-progress").start()


def read(path: str) -> tuple[int, float, float]:
    """``(count, first, last)`` from a progress file; zeros while it does not exist yet."""
    try:
        with open(path) as f:
            count, first, last = f.read().split()
    except (FileNotFoundError, ValueError):
        return 0, 0.0, 0.0
    return int(count), float(first), float(last)


def run(coro: Awaitable[Any]) -> Any:
    """Run ``coro`` on a uvloop event loop (as reliq's worker does)."""

    async def main() -> Any:
        return await coro

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


async def timed(n: int, concurrency: int, call: Callable[[], Awaitable[Any]]) -> float:
    """Seconds to await ``call()`` n times with ``concurrency`` calls in flight (1 = sequential)."""
    share, extra = divmod(n, max(1, concurrency))

    async def lane(k: int) -> None:
        for _ in range(k):
            await call()

    t0 = time.perf_counter()
    if concurrency <= 1:
        await lane(n)
    else:
        async with asyncio.TaskGroup() as tg:
            for i in range(concurrency):
                tg.create_task(lane(share + (1 if i < extra else 0)))
    return time.perf_counter() - t0
