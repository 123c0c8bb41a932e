"""Baselines for load_tests.bench_gateway: a bare FastAPI app with no reliq in it.

``POST /noop`` reads the body and answers; ``POST /xadd`` also does one awaited redis-py asyncio
XADD to the Valkey at ``BENCH_REDIS_URL`` (what a hand-written enqueue endpoint would cost).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI, Request

STREAM = "baseline:xadd"
_redis: dict[str, aioredis.Redis] = {}


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    url = os.environ.get("BENCH_REDIS_URL")
    if url:
        _redis["r"] = aioredis.Redis.from_url(url)
    try:
        yield
    finally:
        if "r" in _redis:
            await _redis.pop("r").aclose()


app = FastAPI(lifespan=lifespan)


@app.post("/noop")
async def noop(request: Request) -> dict[str, bool]:
    await request.body()
    return {"ok": True}


@app.post("/xadd")
async def xadd(request: Request) -> dict[str, str]:
    body = await request.body()
    entry_id = await _redis["r"].xadd(STREAM, {"body": body})
    return {"id": entry_id.decode() if isinstance(entry_id, bytes) else entry_id}
