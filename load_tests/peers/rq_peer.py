"""RQ: ``queue.enqueue(noop)``; worker ``SimpleWorker`` (no fork per job), logging at WARNING."""

from __future__ import annotations

import time

from redis import Redis
from rq import Queue, SimpleWorker

from .common import URL, tick


def noop() -> None:
    tick()


def enqueue(n: int, payload: int, concurrency: int) -> float:
    q = Queue("default", connection=Redis.from_url(URL))
    t0 = time.perf_counter()
    for _ in range(n):
        q.enqueue(noop)
    return time.perf_counter() - t0


def work() -> None:
    r = Redis.from_url(URL)
    SimpleWorker([Queue("default", connection=r)], connection=r).work(logging_level="WARNING")
