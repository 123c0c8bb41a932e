"""Typed wrappers of the schedule scripts (``lua/cron_*.lua``): save, tick, set. Kept apart from
``scripts.py`` (the invocation scripts); loaded and called the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import msgspec
from redis.commands.core import AsyncScript

from reliq.store import flow
from reliq.store.commands import RedisClient
from reliq.store.keys import ServiceKeys
from reliq.store.replies import Registration, _Status
from reliq.store.sources import source

Saved = Literal["created", "updated", "unchanged", "exists"]
Set = Literal["paused", "resumed", "deleted", "unknown"]
Ticked = Literal["placed", "moved", "paused", "gone"]
_pack = msgspec.msgpack.Encoder().encode
_saved: _Status[Saved] = _Status(Saved)
_set: _Status[Set] = _Status(Set)
_ticked: _Status[Ticked] = _Status(Ticked)


class Due(NamedTuple):
    """One schedule of a tick round: the cursor and JSON its plan started from (``""`` and
    ``b""`` for a schedule found deleted), the new cursor, the next fire time and its ticks (to
    place in partition 0); ``last``: the id of its last tick placed before the call, in the
    partitions a multi-partition service routes them to (worker/cron.py), or ``""``."""

    name: str
    cursor: str
    spec: bytes
    new_cursor: int
    next_fire: int
    ticks: Sequence[Registration]
    last: str = ""


class CronScripts:
    """The schedule scripts, registered on one client."""

    NAMES = ("cron_save", "cron_set", "cron_tick")

    def __init__(self, redis: RedisClient) -> None:
        self._s: dict[str, AsyncScript] = {n: redis.register_script(source(n)) for n in self.NAMES}

    async def save(self, k: ServiceKeys, name: str, spec: bytes, mode: Literal["declare", "create"]) -> Saved:
        keys = [k.schedules, k.ticks, k.cron]
        return _saved(await self._s["cron_save"](keys=keys, args=[name, spec, mode]))

    async def set(self, k: ServiceKeys, action: Literal["pause", "resume", "delete"], name: str) -> Set:
        return _set(await self._s["cron_set"](keys=[k.schedules, k.ticks, k.cron], args=[action, name]))

    async def tick(self, k: ServiceKeys, due: Sequence[Due]) -> list[tuple[Ticked, int]]:
        """Place the ticks of every schedule in ``due`` (registrations in partition 0) and move
        each cursor that still reads what its plan started from, in one script call;
        (status, ticks placed by this call) per schedule, in order."""
        keys = [k.streams[0], k.delayed, k.schedules, k.ticks, k.cron, *k.streams[1:]]
        args: list[str | bytes | int] = [k.service, len(due)]
        for d in due:
            keys += (k.inv(r.id) for r in d.ticks)
            args += [d.name, d.cursor, d.spec, d.new_cursor, d.next_fire, d.last, len(d.ticks)]
            for r in d.ticks:
                sched = "" if r.scheduled_ms is None else str(r.scheduled_ms)
                small: tuple[str, ...] = (
                    r.id,
                    r.fp,
                    r.handler,
                    "",
                    "",
                    "",
                    "",
                    r.trace,
                    r.reply,
                    sched,
                    r.prio,
                )
                if r.flow_key:  # position 12: a callable's flow key value
                    small += (r.flow_key,)
                args += [_pack(small), r.payload]
        keys += flow.flow_keys(k)  # the gates: a tick is a start like any send
        flat = await self._s["cron_tick"](keys=keys, args=args)
        return [(_ticked(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]
