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
from reliq.store.keys import InvalidName, ServiceKeys, check_name
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
    # the last tick's state, one read per schedule that has one, in the tick's own partition (a
    # keyed schedule routes its ticks over the partitions); one non-transactional pipeline of
    # single-key reads, which a Cluster client sends to each key's node
    last = [(n, _partition_keys(client, i.last_id)) for n, i in enumerate(out) if i.last_id]
    if last:
        async with client.redis.pipeline(transaction=False) as p:
            for n, ik in last:
                if ik is not None:
                    p.hget(ik.inv(out[n].last_id or ""), Field.STATE)
            states = iter(await p.execute())
        for n, ik in last:
            last_state = _opt(next(states)) if ik is not None else None
            out[n] = ScheduleInfo(**{**_fields(out[n]), "last_state": last_state})
    return out


def _partition_keys(client: Client, invocation_id: str | None) -> ServiceKeys | None:
    """The keys of the partition ``invocation_id`` lives in; None when it names none (a tick
    id written by hand: no state to read)."""
    try:
        return client.keys_of(invocation_id or "")
    except InvalidName:
        return None


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
