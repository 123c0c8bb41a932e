"""arq (own venv: arq needs redis<6): ``pool.enqueue_job("noop")``; worker ``run_worker`` with
its defaults (max_jobs 10, poll_delay 0.5 s), on uvloop."""

from __future__ import annotations

import asyncio
from typing import Any

import uvloop
from arq import create_pool, run_worker
from arq.connections import RedisSettings

from .common import URL, run, tick, timed


async def noop(ctx: Any) -> None:
    tick()


class WorkerSettings:
    functions = [noop]
    redis_settings = RedisSettings.from_dsn(URL)


def enqueue(n: int, payload: int, concurrency: int) -> float:
    async def go() -> float:
        pool = await create_pool(WorkerSettings.redis_settings)
        seconds = await timed(n, concurrency, lambda: pool.enqueue_job("noop"))
        await pool.aclose()
        return seconds

    result: float = run(go())
    return result


def work() -> None:
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    run_worker(WorkerSettings)  # type: ignore[arg-type]
