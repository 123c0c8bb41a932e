"""The Client's schedule actions: create, list, pause, resume and delete schedules at run time.
Bound as ``Client`` methods. Schedules live in partition 0 of their service
(``reliq:{S}:schedules``, ``ticks``, ``cron``: see ``reliq.store.keys``)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from reliq.codec import text
from reliq.store import cron
from reliq.store.cron import CatchUp, InvalidSchedule, Schedule, ScheduleConflict, ScheduleInfo
from reliq.store.cron_scripts import Set
from reliq.store.keys import check_name
from reliq.store.record import Field

log = logging.getLogger("reliq.schedules")

if TYPE_CHECKING:
    from reliq.client import Client


async def create_schedule(
    client: Client,
    service: str,
    name: str,
    handler: str,
    *,
    cron_expr: str | None = None,
    every: timedelta | float | None = None,
    tz: str = "UTC",
    catch_up: CatchUp = "latest",
    max_catch_up: int = 10,
    payload: Any = None,
) -> Literal["created", "unchanged"]:
    """Create a schedule of ``service``: fire ``handler`` with ``payload`` on ``cron_expr`` (in
    ``tz``) or ``every`` seconds. Creating the same schedule again answers ``unchanged``; a
    different one by that name raises ``ScheduleConflict``; an invalid one ``InvalidSchedule``
    (naming the field), also for a ``handler`` the service's workers did not register (once
    any worker of it has published its registry: before that, any valid name is taken, so a
    schedule may be created before the first deploy). Its first tick is the first one after now."""
    check_name("service", service)
    secs = every.total_seconds() if isinstance(every, timedelta) else every
    spec = Schedule(
        name=name,
        handler=handler,
        cron=cron_expr,
        every=secs,
        tz=tz,
        catch_up=catch_up,
        max_catch_up=max_catch_up,
        payload=payload,
    ).checked()
    k = client.keys(service)
    async with client.redis.pipeline(transaction=False) as p:
        p.exists(k.registry)
        p.hexists(k.registry, handler)
        published, registered = await p.execute()
    if published and not registered:
        raise InvalidSchedule("handler", f"no handler {service}.{handler} is registered")
    out = await client.cron_scripts.save(k, name, cron.encode(spec), "create")
    if out == "exists":
        raise ScheduleConflict(f"schedule {service}.{name} exists with another definition")
    return "unchanged" if out == "unchanged" else "created"


async def schedules(client: Client, service: str) -> list[ScheduleInfo]:
    """Every schedule of ``service`` with its state, by name."""
    k = client.keys(check_name("service", service))
    async with client.redis.pipeline(transaction=False) as p:
        p.hgetall(k.schedules)
        p.hgetall(k.ticks)
        p.zrange(k.cron, 0, -1, withscores=True)
        specs, ticks, fires = await p.execute()
    state = {text(f): text(v) for f, v in ticks.items()}
    nxt = {text(n): int(score) for n, score in fires}
    out: list[ScheduleInfo] = []
    for raw_name, raw in sorted(specs.items()):
        name = text(raw_name)
        try:
            schedule = cron.decode(raw)
        except Exception as e:  # written by hand or by another version: listed by workers' errors
            log.warning("schedule %s.%s is unreadable (%s); left out (delete it by name)", service, name, e)
            continue
        last_id = state.get(f"{name}:i")
        cur, paused = state.get(name), state.get(f"{name}:p")
        out.append(
            ScheduleInfo(
                service=service,
                schedule=schedule,
                paused_since=int(paused) if paused else None,
                last_tick=int(cur) if cur else None,
                last_id=last_id,
                next_fire=nxt.get(name),
            )
        )
    if any(i.last_id for i in out):  # the last tick's state, one read per schedule that has one
        async with client.redis.pipeline(transaction=False) as p:
            for i in out:
                if i.last_id:
                    p.hget(k.inv(i.last_id), Field.STATE)
            states = iter(await p.execute())
        out = [
            ScheduleInfo(**{**_fields(i), "last_state": _opt(next(states))}) if i.last_id else i for i in out
        ]
    return out


def _fields(i: ScheduleInfo) -> dict[str, Any]:
    return {f: getattr(i, f) for f in i.__struct_fields__}


def _opt(raw: bytes | None) -> str | None:
    return text(raw) if raw else None


async def pause_schedule(client: Client, service: str, name: str) -> Set:
    """Stop placing ticks ('paused'; 'unknown' when there is no such schedule)."""
    return await client.cron_scripts.set(client.keys(check_name("service", service)), "pause", name)


async def resume_schedule(client: Client, service: str, name: str) -> Set:
    """Place ticks again from now on; ticks that fell in the pause never run ('resumed')."""
    return await client.cron_scripts.set(client.keys(check_name("service", service)), "resume", name)


async def delete_schedule(client: Client, service: str, name: str) -> Set:
    """Delete a schedule ('deleted'). One declared with ``@svc.cron`` comes back when a worker
    that declares it starts: remove it from the code too."""
    return await client.cron_scripts.set(client.keys(check_name("service", service)), "delete", name)
