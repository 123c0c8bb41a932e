"""Schedules: the tick arithmetic and catch-up policies under a clock that moved (tick_once is
called with chosen times), DST, invalid definitions refused before anything is stored, workers
racing for the same ticks, and pause/resume/delete through the Client."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from reliq import App, Client, Context, InvalidSchedule, ScheduleConflict, Service, WorkerConfig
from reliq.store.cron import Schedule, following, plan, previous
from reliq.store.keys import tick_id
from reliq.worker.cron import tick_once
from reliq.worker.inflight import Runtime
from reliq.worker.limits import Limiter

from ..conftest import Names, client, running, wait_until


def _rt(c: Client) -> Runtime:
    cfg = WorkerConfig(cron_grace=0)  # deterministic: every tick before "now" counts as missed
    return Runtime(app=App([]), client=c, config=cfg, consumer="t", limiter=Limiter(1))


def test_catch_up_policies_after_the_clock_jumped() -> None:
    s = Schedule(name="s", handler="h", every=1)
    now = 20_500  # cursor at 10 s, 10.5 s later: ticks 11..20 s were missed
    assert plan(s, 10_000, now, 0).ticks == [20_000]
    assert plan(
        Schedule(name="s", handler="h", every=1, catch_up="all", max_catch_up=3), 10_000, now, 0
    ).ticks == [
        18_000,
        19_000,
        20_000,
    ]
    none = plan(Schedule(name="s", handler="h", every=1, catch_up="none"), 10_000, now, 0)
    assert none.ticks == [] and none.cursor == 20_000 and none.next_fire == 21_000
    # on time (within the grace): placed whatever the policy
    assert plan(Schedule(name="s", handler="h", every=1, catch_up="none"), 19_000, 20_500, 2000).ticks == [
        20_000
    ]
    assert plan(s, 20_000, 20_500, 0).ticks == []  # nothing new after the cursor


def test_dst_in_the_schedule_s_zone() -> None:
    s = Schedule(name="s", handler="h", cron="30 2 * * *", tz="Europe/Berlin")
    spring = int(datetime(2025, 3, 29, 12, tzinfo=UTC).timestamp() * 1000)
    # 02:30 does not exist on 30 March 2025 in Berlin: that day fires at 03:00 local (01:00 UTC)
    assert following(s, spring) == int(datetime(2025, 3, 30, 1, tzinfo=UTC).timestamp() * 1000)
    autumn = int(datetime(2025, 10, 26, 3, tzinfo=UTC).timestamp() * 1000)
    # 02:30 happens twice on 26 October 2025: both are ticks (00:30 and 01:30 UTC), distinct ids
    it = previous(s, autumn)
    assert [next(it), next(it)] == [
        int(datetime(2025, 10, 26, 1, 30, tzinfo=UTC).timestamp() * 1000),
        int(datetime(2025, 10, 26, 0, 30, tzinfo=UTC).timestamp() * 1000),
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"expression": "61 * * * *"}, "cron"),
        ({"expression": "* * *"}, "cron"),
        ({"expression": "* * * * * * 2030"}, "cron"),
        ({"expression": "* * * * *", "tz": "Mars/Olympus"}, "tz"),
        ({"every": 0.5}, "every"),
        ({}, "cron"),
        ({"expression": "* * * * *", "max_catch_up": 0}, "max_catch_up"),
    ],
)
def test_an_invalid_schedule_fails_at_decoration_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    svc = Service("s")
    expression = kwargs.pop("expression", None)
    with pytest.raises(InvalidSchedule) as e:
        svc.cron(expression, **kwargs)
    assert e.value.field == field
    assert not svc.handlers and not svc.schedules


async def test_client_create_refuses_bad_input_and_conflicts_storing_nothing(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        k = c.keys(svc)
        with pytest.raises(InvalidSchedule) as e:
            await c.create_schedule(svc, "s", "h", cron_expr="* * * * *", tz="Nowhere/City")
        assert e.value.field == "tz"
        assert not await c.redis.exists(k.schedules, k.ticks, k.cron)
        assert await c.create_schedule(svc, "s", "h", every=60) == "created"
        assert await c.create_schedule(svc, "s", "h", every=60) == "unchanged"
        with pytest.raises(ScheduleConflict):
            await c.create_schedule(svc, "s", "h", every=30)
        assert await c.delete_schedule(svc, "s") == "deleted"
        assert await c.delete_schedule(svc, "s") == "unknown"
        assert not await c.redis.exists(k.schedules, k.ticks, k.cron)


async def test_ticks_missed_follow_each_policy_and_racing_workers_place_each_once(
    url: str, names: Names
) -> None:
    svc = names()
    async with client(url) as c:
        k = c.keys(svc)
        await c.create_schedule(svc, "latest", "h", every=1)
        await c.create_schedule(svc, "all", "h", every=1, catch_up="all", max_catch_up=3)
        await c.create_schedule(svc, "none", "h", every=1, catch_up="none")
        cursor = max(int(v) for v in (await c.redis.hgetall(k.ticks)).values())
        now = cursor - cursor % 1000 + 10_500  # the clock moved 10 ticks ahead
        rts = [_rt(c) for _ in range(3)]
        await asyncio.gather(*(tick_once(rt, k, now) for rt in rts))  # three workers race
        last = now - 500
        placed = {
            name: [t for t in range(last - 9000, last + 1, 1000) if await c.state(tick_id(svc, name, t))]
            for name in ("latest", "all", "none")
        }
        assert placed == {"latest": [last], "all": [last - 2000, last - 1000, last], "none": []}
        assert sum(rt.ticks_placed for rt in rts) == 4  # each tick placed by one of them
        info = {i.schedule.name: i for i in await c.schedules(svc)}
        assert info["none"].last_tick == last and info["none"].last_id is None
        assert (
            info["latest"].last_id == tick_id(svc, "latest", last) and info["latest"].last_state == "pending"
        )
        assert info["all"].next_fire == last + 1000
        # paused: out of the tick loop, nothing placed; resumed: from the server's now on
        assert await c.pause_schedule(svc, "latest") == "paused"
        assert await tick_once(rts[0], k, now + 2000) >= 0
        assert not await c.state(tick_id(svc, "latest", last + 2000))
        info = {i.schedule.name: i for i in await c.schedules(svc)}
        assert info["latest"].paused_since is not None and info["latest"].next_fire is None
        assert await c.resume_schedule(svc, "latest") == "resumed"
        assert (await c.schedules(svc))[1].paused_since is None
        for name in ("latest", "all", "none"):
            await c.delete_schedule(svc, name)
        await c.redis.delete(k.stream, *(k.inv(tick_id(svc, n, t)) for n, ts in placed.items() for t in ts))


async def test_a_runtime_schedule_runs_with_its_payload_and_tick_time(url: str, names: Names) -> None:
    svc = Service(names())
    seen: list[tuple[Any, datetime | None]] = []

    @svc.handler
    async def report(ctx: Context, payload: dict[str, int]) -> None:
        seen.append((payload, ctx.scheduled_for))

    async with client(url) as c, running(svc, url):
        await c.create_schedule(svc.name, "nightly", "report", cron_expr="* * * * * *", payload={"x": 1})
        await wait_until(lambda: len(seen) >= 2, what="two ticks")
        [info] = await c.schedules(svc.name)
        await wait_until(lambda: c.state(info.last_id or ""), what="last tick recorded")
        await c.delete_schedule(svc.name, "nightly")
    (p1, t1), (_, t2) = seen[:2]
    assert p1 == {"x": 1} and t1 is not None and t2 is not None
    assert t1.microsecond == 0 and (t2 - t1).total_seconds() == 1


async def test_the_tick_loop_gates_a_callable_keyed_handler(url: str, names: Names) -> None:
    """The worker computes a callable key for the schedule's payload (it has the code) and the
    ticks queue behind the key's holder (issue 14)."""
    from reliq.store import flow
    from reliq.worker.cron import publish_schedules

    svc = Service(names())

    @svc.cron(every=1, catch_up="all", max_catch_up=3, payload={"account": "a"})
    @svc.handler(concurrency_key=lambda r: r["account"].upper(), concurrency_limit=1)
    async def beat(ctx: Context, req: dict[str, Any]) -> None: ...

    async with client(url) as c:
        k = c.keys(svc.name)
        rt = Runtime(
            app=App([svc]), client=c, config=WorkerConfig(cron_grace=0), consumer="t", limiter=Limiter(1)
        )
        await c.redis.hset(
            flow.flow_keys(k)[0], "beat", flow.encode(svc.handlers["beat"].flow)
        )  # as at start
        await publish_schedules(rt)
        cursor = int(await c.redis.hget(k.ticks, "beat"))
        base = cursor - cursor % 1000
        await tick_once(rt, k, base + 3000)
        ticks = [base + 1000, base + 2000, base + 3000]
        states = [await c.redis.hmget(k.inv(tick_id(svc.name, "beat", t)), ["state", "fk"]) for t in ticks]
        assert states == [[b"pending", b"beat\0A"]] + [[b"queued", b"beat\0A"]] * 2
        for t in ticks:
            await c.cancel(tick_id(svc.name, "beat", t))
        await c.delete_schedule(svc.name, "beat")
