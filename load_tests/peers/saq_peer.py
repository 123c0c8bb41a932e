"""SAQ: ``queue.enqueue("noop")``; worker ``saq.Worker(queue, functions=[noop])`` with its default
concurrency 10."""

from __future__ import annotations

from typing import Any

from saq import Queue, Worker

from .common import URL, run, tick, timed


async def noop(ctx: Any) -> None:
    tick()


def enqueue(n: int, payload: int, concurrency: int) -> float:
    async def go() -> float:
        queue = Queue.from_url(URL)
        await queue.connect()
        seconds = await timed(n, concurrency, lambda: queue.enqueue("noop"))
        await queue.disconnect()
        return seconds

    result: float = run(go())
    return result


def work() -> None:
    run(Worker(Queue.from_url(URL), functions=[noop]).start())
