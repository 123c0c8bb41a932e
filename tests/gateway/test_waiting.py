"""Issue 12, finding 7: waiting requests (``/call``, ``/attach?wait=``) were unbounded and polled
Redis (50 concurrent ``attach?wait=8`` cost about 1,000 commands a second). Now a waiter costs a
read when it starts and one when its completion notification wakes it (plus one per
``RELIQ_WAIT_RECHECK`` seconds, the safety net), and at most ``RELIQ_MAX_WAITERS`` wait at once
per gateway process: past it 429 with Retry-After, and a ``/call`` places nothing."""

from __future__ import annotations

import asyncio
import math
import time

import httpx
import pytest
import redis.asyncio as aioredis

from reliq import Context, Service

from ..conftest import Names, running, wait_until
from .conftest import gateway
from .test_durability_auth import noop_service

WAITERS = 50
WINDOW = 3.0  # seconds measured with 50 waiters and no completion


async def calls(r: aioredis.Redis) -> dict[str, int]:
    """Commands run so far, by name (INFO commandstats; INFO itself left out)."""
    stats = await r.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info"}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}


@pytest.mark.parametrize(("recheck", "most"), [(30.0, 5), (2.0, WAITERS * (WINDOW / 2.0 + 1))])
async def test_waiters_cost_redis_nothing_per_tick_only_a_read_per_completion(
    url: str, names: Names, recheck: float, most: float
) -> None:
    svc = noop_service(names())  # no worker: the invocations stay pending while they are waited on
    r = aioredis.Redis.from_url(url)
    try:
        async with gateway(url, svc, wait_recheck=recheck) as http:
            sent = [await http.post(f"/send/{svc.name}/noop", json=None) for _ in range(WAITERS)]
            ids = [s.json()["id"] for s in sent]
            start = await calls(r)
            waits = [asyncio.create_task(http.get(f"/invocations/{i}/attach?wait=8")) for i in ids]

            async def all_read() -> bool:
                return delta(await calls(r), start).get("hmget", 0) >= WAITERS

            await wait_until(all_read, what="every waiter's first read")
            metrics = (await http.get("/metrics")).text
            assert f"reliq_gateway_waiters {float(WAITERS)}" in metrics
            await asyncio.sleep(0.3)  # the re-reads the subscription's confirmation triggers land
            before = await calls(r)
            await asyncio.sleep(WINDOW)  # the measurement: 50 waiting requests, nothing finishes
            idle = delta(await calls(r), before)
            t0 = time.monotonic()
            for i in ids:
                assert (await http.post(f"/invocations/{i}/cancel")).status_code == 202
            answers = await asyncio.wait_for(asyncio.gather(*waits), 10)
            took = time.monotonic() - t0
            finished = delta(await calls(r), before)
        await r.delete(f"reliq:{{{svc.name}}}:stream")
    finally:
        await r.aclose()
    assert [a.status_code for a in answers] == [409] * WAITERS  # cancelled, each woken
    print(f"recheck {recheck} s: {WAITERS} waiters, {WINDOW} s without completions: {idle}")
    assert sum(idle.values()) <= most, idle  # polling every 50 ms did ~20 reads/s per waiter
    # each cancel.lua reads the record once (HMGET) and each woken waiter reads it once more; on a
    # loaded machine the cancels take longer and a waiter's periodic re-read (every `recheck` s)
    # may fall inside them too. The waiters' re-reads run in phase (they were all woken by the
    # same subscription's confirmation), so a whole burst can fall inside: at most
    # ceil(took / recheck) re-reads per waiter (a poll every 50 ms would be 4+ per waiter here)
    rechecks = WAITERS * math.ceil(took / recheck)
    assert finished.get("hmget", 0) - idle.get("hmget", 0) <= 2 * WAITERS + 10 + rechecks, (finished, took)
    assert took < 8, took


async def test_past_max_waiters_429_with_retry_after_and_call_places_nothing(url: str, names: Names) -> None:
    svc = noop_service(names())
    r = aioredis.Redis.from_url(url)

    async def keys() -> set[bytes]:
        return {k async for k in r.scan_iter(match=f"reliq:{{{svc.name}}}:*")}

    try:
        async with gateway(url, svc, max_waiters=2) as http:
            ids = [(await http.post(f"/send/{svc.name}/noop", json=None)).json()["id"] for _ in range(2)]
            waits = [asyncio.create_task(http.get(f"/invocations/{i}/attach?wait=30")) for i in ids]

            async def both_wait() -> bool:
                return "reliq_gateway_waiters 2.0" in (await http.get("/metrics")).text

            await wait_until(both_wait, what="two waiters")
            placed = await keys()
            refused = [
                await http.get(f"/invocations/{ids[0]}/attach?wait=5"),
                await http.post(f"/call/{svc.name}/noop", json=None, headers={"Idempotency-Key": "k1"}),
                await http.post(f"/call/{svc.name}/noop", json=None),
            ]
            for answer in refused:
                assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
                assert answer.headers["content-type"] == "application/problem+json"
                assert "limit 2" in answer.json()["detail"]
            assert await keys() == placed  # the refused /call placed nothing
            assert (await http.get(f"/invocations/{ids[0]}/output")).status_code == 202  # no waiting
            assert (await http.get(f"/invocations/{ids[0]}/attach?wait=0")).status_code == 202
            for i in ids:
                await http.post(f"/invocations/{i}/cancel")
            answers: list[httpx.Response] = await asyncio.wait_for(asyncio.gather(*waits), 10)
            assert [a.status_code for a in answers] == [409, 409]
            assert (await http.get(f"/invocations/{ids[0]}/attach?wait=1")).status_code == 409  # freed
        await r.delete(f"reliq:{{{svc.name}}}:stream")
    finally:
        await r.aclose()


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_call_is_answered_when_the_handler_finishes_not_at_the_next_recheck(
    url: str, names: Names
) -> None:
    svc = Service(names())
    go = asyncio.Event()

    @svc.handler
    async def gated(ctx: Context) -> str:
        await go.wait()
        return "done"

    async with running(svc, url), gateway(url, svc, wait_recheck=30.0) as http:
        call = asyncio.create_task(http.post(f"/call/{svc.name}/gated", headers={"Prefer": "wait=20"}))

        async def handler_runs() -> bool:
            return "reliq_gateway_waiters 1.0" in (await http.get("/metrics")).text and call.done() is False

        await wait_until(handler_runs, what="the call waiting")
        t0 = time.monotonic()
        go.set()
        answer = await asyncio.wait_for(call, 10)
        assert answer.status_code == 200 and answer.json() == "done"
        assert time.monotonic() - t0 < 5  # woken by the completion, not by the 30 s recheck
