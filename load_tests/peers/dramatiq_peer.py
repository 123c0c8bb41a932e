"""dramatiq with its Redis broker: ``actor.send()``; worker ``dramatiq.Worker`` with its default 8
threads in one process (what ``dramatiq --processes 1`` runs per process)."""

from __future__ import annotations

import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from .common import MAX_LIFETIME_S, URL, tick

broker = RedisBroker(url=URL)
dramatiq.set_broker(broker)


@dramatiq.actor
def noop() -> None:
    tick()


def enqueue(n: int, payload: int, concurrency: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        noop.send()
    return time.perf_counter() - t0


def work() -> None:
    worker = dramatiq.Worker(broker, worker_threads=8)
    worker.start()
    time.sleep(MAX_LIFETIME_S)  # until the harness terminates the process
    worker.stop()
