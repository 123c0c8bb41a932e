"""taskiq + taskiq-redis ``RedisStreamBroker`` (XADD / XREADGROUP COUNT 100 / XACK per message /
XAUTOCLAIM), no result backend. Worker: ``taskiq.api.run_receiver_task`` (taskiq's documented
programmatic runner: the receiver of ``taskiq worker`` in one process), defaults otherwise."""

from __future__ import annotations

from taskiq.api import run_receiver_task
from taskiq_redis import RedisStreamBroker

from .common import URL, run, tick, timed

broker = RedisStreamBroker(URL)


@broker.task
async def noop() -> None:
    tick()


def enqueue(n: int, payload: int, concurrency: int) -> float:
    async def go() -> float:
        await broker.startup()  # creates the consumer group before the first XADD
        seconds = await timed(n, concurrency, noop.kiq)
        await broker.shutdown()
        return seconds

    result: float = run(go())
    return result


def work() -> None:
    run(run_receiver_task(broker, run_startup=True))
