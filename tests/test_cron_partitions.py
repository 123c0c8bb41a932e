"""Cron ticks of a multi-partition service are routed like sends: a keyed handler's tick lands in
its key's partition and waits behind the key's holder there (the limit holds service-wide, not
only for keys of partition 0), and the two-step round (place the ticks, then move the cursor in
partition 0) still places each tick once when the second step fails and the round is re-planned."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import msgspec
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from reliq import Client, Context, Service, codec
from reliq.store.flow import flow_token
from reliq.store.keys import locate, make_id, partition_of_token, tick_token

from .conftest import Names, client, running, wait_until

P = 3


class Acct(msgspec.Struct):
    account: str


def _away(service: str) -> str:
    """A key value whose flow partition is not partition 0."""
    return next(
        f"a{j}" for j in range(200) if partition_of_token(flow_token(service, "work", f"a{j}"), P) != 0
    )


async def _last_tick(c: Client, service: str, schedule: str) -> str | None:
    raw = await c.redis.hget(c.keys(service).ticks, schedule + ":i")
    return codec.text(raw) if raw else None


@pytest.mark.semantics  # on a Cluster the partitions are different slots
async def test_a_keyed_tick_lands_in_its_keys_partition_and_waits_behind_its_holder(
    url: str, names: Names
) -> None:
    svc = Service(names(), partitions=P)
    release = asyncio.Event()
    running_now: dict[str, int] = {}
    most = 0

    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def work(ctx: Context, req: Acct) -> None:
        nonlocal most
        running_now[req.account] = running_now.get(req.account, 0) + 1
        most = max(most, running_now[req.account])
        if ctx.scheduled_for is None:
            await release.wait()  # the send holds the key while the tick comes due
        running_now[req.account] -= 1

    key = _away(svc.name)
    home = partition_of_token(flow_token(svc.name, "work", key), P)
    async with client(url) as c, running(svc, url, concurrency=10):
        held = await c.send(svc.name, "work", {"account": key})
        await wait_until(lambda: _running(c, held.id), what="the send holds the key")
        await c.create_schedule(svc.name, "nightly", "work", every=1, payload={"account": key})
        tick = await wait_until(lambda: _last_tick(c, svc.name, "nightly"), timeout=15, what="a tick placed")
        assert locate(tick)[1] == home  # the key's partition, not partition 0
        rec = c.keys_of(tick).inv(tick)
        assert [codec.text(v or b"") for v in await c.redis.hmget(rec, ["state", "wait"])] == [
            "queued",
            "concurrency",
        ]  # behind the send that holds the key
        release.set()
        assert (await c.result(tick, 20)) is None
        await c.result(held.id, 20)
    assert most == 1


async def _running(c: Client, invocation_id: str) -> bool:
    return await c.state(invocation_id) == "running"


async def test_a_round_whose_cursor_step_fails_places_each_tick_once(url: str, names: Names) -> None:
    svc = Service(names(), partitions=P)
    seen: list[tuple[datetime, str]] = []

    @svc.handler
    async def beat(ctx: Context) -> None:
        assert ctx.scheduled_for is not None
        seen.append((ctx.scheduled_for, ctx.id))

    async with client(url) as c, running(svc, url) as w:
        scripts = w.rt.client.cron_scripts
        tick, failed = scripts.tick, 0

        async def flaky(*a: Any, **kw: Any) -> Any:  # step two fails: the ticks are placed already
            nonlocal failed
            if failed < 3:
                failed += 1
                raise RedisConnectionError("lost after the ticks were placed")
            return await tick(*a, **kw)

        scripts.tick = flaky  # type: ignore[method-assign]
        await c.create_schedule(svc.name, "beat", "beat", every=1, catch_up="all")
        await wait_until(lambda: _at_least(seen, 5), timeout=30, what="five ticks run")
        assert failed == 3
        placed = w.rt.ticks_placed
    assert len({t for t, _ in seen}) == len(seen), seen  # no tick ran twice
    assert placed in (len(seen), len(seen) + 1)  # re-placed ticks were found, not placed anew
    for t, i in seen:  # each tick in its own token's partition (the handler has no flow key)
        token = tick_token(svc.name, "beat", int(t.timestamp() * 1000))
        assert i == make_id(svc.name, token, partition_of_token(token, P))


async def _at_least(seen: list[Any], n: int) -> bool:
    return len(seen) >= n


@pytest.mark.semantics  # on a Cluster the partitions are different slots (one pipeline reads all)
async def test_schedules_report_the_last_state_of_ticks_in_every_partition(url: str, names: Names) -> None:
    """Review 3, finding 4: the last tick's state is read in the tick's own partition (before,
    through partition 0's keys: ``None`` for a tick placed elsewhere)."""
    svc = Service(names(), partitions=P)

    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def work(ctx: Context, req: Acct) -> None: ...

    away = _away(svc.name)
    home = next(
        f"a{j}" for j in range(200) if partition_of_token(flow_token(svc.name, "work", f"a{j}"), P) == 0
    )
    async with client(url) as c, running(svc, url):
        for key in (away, home):
            await c.create_schedule(svc.name, "s" + key, "work", every=1, payload={"account": key})
        for key in (away, home):
            tick = await wait_until(lambda k=key: _last_tick(c, svc.name, "s" + k), what="a tick placed")
            await c.result(tick, 20)
        listed = {i.schedule.name: i for i in await c.schedules(svc.name)}
    assert locate(listed["s" + away].last_id or "")[1] != 0
    for key in (away, home):
        assert listed["s" + key].last_state is not None  # a later tick may be placed meanwhile
        assert listed["s" + key].last_state in ("pending", "running", "succeeded", "queued")
