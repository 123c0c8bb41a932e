"""The floor: what one Python process reaches with no framework at all. XADD of a small JSON
envelope; the worker reads XREADGROUP COUNT 100, decodes, awaits the handler, XACKs per batch.
No claim, no lease, no retries, no results. redis-py asyncio + hiredis on uvloop."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from .common import MAX_LIFETIME_S, URL, run, tick, timed

STREAM, GROUP = "bare:stream", "bare"


async def noop() -> None:
    tick()


HANDLERS: dict[str, Callable[..., Awaitable[None]]] = {"noop": noop}


def enqueue(n: int, payload: int, concurrency: int) -> float:
    async def go() -> float:
        r = Redis.from_url(URL)
        await r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        body = json.dumps({"fn": "noop", "args": []}).encode()
        seconds = await timed(n, concurrency, lambda: r.xadd(STREAM, {"m": body}))
        await r.aclose()
        return seconds

    result: float = run(go())
    return result


def work() -> None:
    async def go() -> None:
        r = Redis.from_url(URL)
        deadline = time.monotonic() + MAX_LIFETIME_S
        while time.monotonic() < deadline:
            resp: Any = await r.xreadgroup(GROUP, "bare-1", {STREAM: ">"}, count=100, block=1000)
            if not resp:
                continue
            ids: list[bytes] = []
            for eid, fields in resp[0][1]:
                msg = json.loads(fields[b"m"])
                await HANDLERS[msg["fn"]](*msg["args"])
                ids.append(eid)
            await r.xack(STREAM, GROUP, *ids)

    run(go())
