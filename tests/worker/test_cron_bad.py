"""Schedules that cannot work: a cron date that never occurs (30 February) and a time zone that
names no zone (a directory of the zone database, a name too long for a path) are refused at
decoration and by the Client, storing nothing; a handler the service's workers did not register
is refused once they published their registry; and a schedule stored before those checks (or
unreadable) costs one error line and is skipped, while the tick loop places the others' ticks
(it used to end the worker loop: CroniterBadDateError from ``plan``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from reliq import Context, InvalidSchedule, Service
from reliq.store import cron
from reliq.store.cron import Schedule
from reliq.store.keys import tick_id
from reliq.worker.cron import BROKEN_RETRY_MS, tick_once

from ..conftest import Names, client, running, wait_until
from .test_cron import _rt

NEVER = [
    ({"cron_expr": "0 0 30 2 *"}, "cron"),
    ({"cron_expr": "0 0 31 4 *"}, "cron"),
    ({"cron_expr": "0 0 30 2 * *", "tz": "Europe/Berlin"}, "cron"),
    ({"cron_expr": "* * * * *", "tz": "America"}, "tz"),
    ({"cron_expr": "* * * * *", "tz": "Etc"}, "tz"),
    ({"cron_expr": "* * * * *", "tz": "x" * 5000}, "tz"),
    ({"every": 60, "tz": "America/"}, "tz"),
]


@pytest.mark.parametrize(("kwargs", "field"), NEVER)
async def test_a_date_that_never_occurs_or_a_zone_that_is_none_is_refused(
    url: str, names: Names, kwargs: dict[str, Any], field: str
) -> None:
    svc = Service(names())
    with pytest.raises(InvalidSchedule) as e:
        svc.cron(kwargs.get("cron_expr"), every=kwargs.get("every"), tz=kwargs.get("tz", "UTC"))
    assert e.value.field == field and not svc.schedules
    async with client(url) as c:
        k = c.keys(svc.name)
        with pytest.raises(InvalidSchedule) as e:
            await c.create_schedule(svc.name, "s", "h", **kwargs)
        assert e.value.field == field and len(str(e.value)) < 200
        assert not await c.redis.exists(k.schedules, k.ticks, k.cron)


def test_a_date_that_occurs_rarely_is_taken() -> None:
    leap = Schedule(name="leap", handler="h", cron="0 0 29 2 *", tz="Pacific/Kiritimati").checked()
    assert cron.following(leap, 0) > 0
    Schedule(name="d", handler="h", cron="0 0 31 * *", tz="America/New_York").checked()


async def test_the_client_refuses_a_handler_the_registered_service_lacks(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def report(ctx: Context) -> None: ...

    async with client(url) as c:
        k = c.keys(svc.name)
        # no worker started yet (deploy order): any valid name is taken
        assert await c.create_schedule(svc.name, "early", "nope", every=60) == "created"
        assert await c.delete_schedule(svc.name, "early") == "deleted"
        async with running(svc, url):  # publishes the registry
            pass
        with pytest.raises(InvalidSchedule) as e:
            await c.create_schedule(svc.name, "late", "nope", every=60)
        assert e.value.field == "handler" and "nope" in str(e.value)
        assert not await c.redis.exists(k.schedules, k.ticks, k.cron)
        assert await c.create_schedule(svc.name, "late", "report", every=60) == "created"
        assert await c.delete_schedule(svc.name, "late") == "deleted"


async def _store_broken(c: Any, svc: str) -> None:
    """As a gateway or Client before the checks stored them: a date that never occurs, and a
    definition that is not even readable."""
    k = c.keys(svc)
    never = Schedule(name="never", handler="h", cron="0 0 30 2 *")  # not .checked()
    assert await c.cron_scripts.save(k, "never", cron.encode(never), "create") == "created"
    assert await c.cron_scripts.save(k, "garbled", b'{"name": 1', "create") == "created"


def _errors(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "reliq.worker.cron" and r.levelno == logging.ERROR and f".{name} " in r.getMessage()
    ]


async def test_a_schedule_that_cannot_be_planned_is_skipped_once_and_the_others_tick(
    url: str, names: Names, caplog: pytest.LogCaptureFixture
) -> None:
    svc = names()
    async with client(url) as c:
        k = c.keys(svc)
        await _store_broken(c, svc)
        await c.create_schedule(svc, "beat", "h", every=1, catch_up="all", max_catch_up=3)
        cursor = int(await c.redis.hget(k.ticks, "beat"))
        now = cursor - cursor % 1000 + 3500
        rt = _rt(c)
        with caplog.at_level(logging.ERROR, logger="reliq.worker.cron"):
            pause = await tick_once(rt, k, now)
            assert 0 < pause <= 1  # the next beat, not a spin on the broken ones
            beats = [now - 2500, now - 1500, now - 500]
            assert [await c.state(tick_id(svc, "beat", t)) for t in beats] == ["pending"] * 3
            for name in ("never", "garbled"):
                [line] = _errors(caplog, name)
                assert "cannot be planned" in line
                assert await c.redis.zscore(k.cron, name) == now + BROKEN_RETRY_MS
            await tick_once(rt, k, now + 1000)  # the next round: the beat only, no second line
            assert await c.state(tick_id(svc, "beat", now + 500)) == "pending"
            assert len(_errors(caplog, "never")) == len(_errors(caplog, "garbled")) == 1
            await tick_once(rt, k, now + BROKEN_RETRY_MS)  # looked at again a minute later
            assert len(_errors(caplog, "never")) == 2
        await c.delete_schedule(svc, "garbled")
        infos = {i.schedule.name: i for i in await c.schedules(svc)}
        assert infos["never"].next_fire == now + 2 * BROKEN_RETRY_MS and infos["beat"].last_tick
        for name in ("never", "beat"):
            await c.delete_schedule(svc, name)
        placed = [*beats, now + 500, *range(now + 1500, now + BROKEN_RETRY_MS + 1, 1000)]
        await c.redis.delete(k.stream, *(k.inv(tick_id(svc, "beat", t)) for t in placed))


async def test_a_worker_outlives_a_stored_schedule_that_never_fires(
    url: str, names: Names, caplog: pytest.LogCaptureFixture
) -> None:
    svc = Service(names())
    beats: list[int] = []

    @svc.handler
    async def beat(ctx: Context) -> None:
        beats.append(1)

    async with client(url) as c:
        await _store_broken(c, svc.name)
        with caplog.at_level(logging.ERROR, logger="reliq.worker.cron"):
            async with running(svc, url) as worker:  # its loop used to fail at once
                await c.create_schedule(svc.name, "beat", "beat", every=1)
                await wait_until(lambda: len(beats) >= 2, what="two beats")
                assert not worker.rt.stopping.is_set()
            assert len(_errors(caplog, "never")) == 1
        for name in ("never", "garbled", "beat"):
            await c.delete_schedule(svc.name, name)


async def test_an_unreadable_schedule_is_left_out_of_the_listing_with_a_warning_and_deletable(
    url: str, names: Names, caplog: pytest.LogCaptureFixture
) -> None:
    svc = names()
    async with client(url) as c:
        await _store_broken(c, svc)
        await c.create_schedule(svc, "beat", "h", every=60)
        with caplog.at_level(logging.WARNING, logger="reliq.schedules"):
            listed = await c.schedules(svc)  # it was a 500 on GET /admin/schedules/S
        assert [i.schedule.name for i in listed] == ["beat", "never"]
        [line] = [r.getMessage() for r in caplog.records if r.name == "reliq.schedules"]
        assert f"{svc}.garbled is unreadable" in line
        assert await c.delete_schedule(svc, "garbled") == "deleted"
        assert not await c.redis.hexists(c.keys(svc).schedules, "garbled")
