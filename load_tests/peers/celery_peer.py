"""Celery with the Redis broker (kombu): ``noop.delay()``; worker ``app.worker_main`` with
``--pool=solo`` (one process), results ignored, without gossip/mingle/heartbeat."""

from __future__ import annotations

import time

from celery import Celery

from .common import URL, tick

app = Celery("bench", broker=URL)
app.conf.update(task_ignore_result=True, broker_connection_retry_on_startup=True)


@app.task
def noop() -> None:
    tick()


def enqueue(n: int, payload: int, concurrency: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        noop.delay()
    return time.perf_counter() - t0


def work() -> None:
    argv = ["worker", "--pool=solo", "--loglevel=WARNING"]
    app.worker_main([*argv, "--without-gossip", "--without-mingle", "--without-heartbeat"])
