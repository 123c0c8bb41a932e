"""streaQ: ``await noop.enqueue()`` inside ``async with worker``; worker ``worker.run_sync()``
with its defaults (concurrency 16, pickle, results kept), on uvloop."""

from __future__ import annotations

from streaq import Worker

from .common import URL, run, tick, timed

worker = Worker(redis_url=URL, anyio_kwargs={"use_uvloop": True})


@worker.task
async def noop() -> None:
    tick()


def enqueue(n: int, payload: int, concurrency: int) -> float:
    async def go() -> float:
        async with worker:
            return await timed(n, concurrency, lambda: noop.enqueue())

    result: float = run(go())
    return result


def work() -> None:
    worker.run_sync()
