"""Cron: the workers place schedule ticks. There is no scheduler process: every worker runs one
tick loop per service, and whichever is alive places the ticks.

Each round reads the schedules due now from ``reliq:{S}:cron`` (name -> next fire time), plans
each one's ticks from its cursor (``store/cron.plan``: catch-up policy, grace) and calls
``cron_tick.lua`` once for the whole round (up to ``BATCH`` schedules: one round trip and one
fsync, however many schedules fire together), which places them and moves each cursor only if
no other worker moved it first. A tick's id derives from (schedule, tick time), so it is placed
once however many workers race for it, and a re-sent script call places nothing twice.

A multi-partition service's ticks are routed like sends (``place_routed``): a keyed handler's
tick goes to its key's partition, so it shares the key's limits with the sends of that key. Then
the round is two steps: ``register.lua`` places the ticks in their partitions, after which
``cron_tick.lua`` moves the cursors in partition 0. A crash or a lost race between the two is
harmless: the next round plans the same ticks from the same cursor, their ids are the same, and
registration keeps one of each. A pause, an edit or a delete that lands between the two steps
lets the planned ticks through, as if it had come a moment later. A worker that was paused for
longer than its visibility timeout after planning drops the plan (as a zombie's lease would
lapse): a tick placed long ago whose record is gone after the retention period is not placed again.

A schedule that cannot be planned (unreadable, or stored before a check refused its definition:
a cron date that never occurs) costs one error line and is looked at again ``BROKEN_RETRY_MS``
later; the others tick on.
"""

from __future__ import annotations

import logging
import time

import msgspec

from reliq import codec
from reliq.client import routing
from reliq.errors import TRANSIENT
from reliq.service import Handler
from reliq.store import cron, flow
from reliq.store.cron_scripts import Due
from reliq.store.keys import ServiceKeys, locate, tick_id, tick_token
from reliq.store.replies import Registration
from reliq.worker.inflight import Runtime

log = logging.getLogger("reliq.worker.cron")
MAX_SLEEP = 1.0
BATCH = 250  # schedules handled per round (one script call)
BROKEN_RETRY_MS = 60_000  # a schedule that cannot be planned is looked at again after this


async def publish_schedules(rt: Runtime) -> None:
    """Store the schedules declared with ``@svc.cron`` (the code's version wins; a paused one
    stays paused)."""
    for s in rt.app.services.values():
        k = rt.client.keys(s.name)
        for spec in s.schedules.values():
            await rt.client.cron_scripts.save(k, spec.name, cron.encode(spec), "declare")


def registrations(
    k: ServiceKeys, s: cron.Schedule, ticks: list[int], handler: Handler | None = None
) -> list[Registration]:
    """The ticks' registrations; with the ``handler`` (this worker has its code), a callable
    concurrency key's value for the schedule's payload goes with them (cron_tick.lua gates a tick
    like any send, and skips one whose key is bad: logged here)."""
    body = codec.encode(s.payload)
    fp = codec.fingerprint(s.handler, body)
    fk = ""
    if handler is not None and ticks:
        try:
            fk = handler.flow_key_of(body)
            if handler.flow is not None and handler.flow.key not in ("", flow.CALLABLE):
                flow.payload_key(handler.flow, body, None)
        except Exception as e:  # the user's callable or payload: the ticks are skipped, not placed
            log.error("schedule %s.%s: bad flow key (%s); its ticks are skipped", k.service, s.name, e)
    return [
        Registration(
            id=tick_id(k.service, s.name, t),
            fp=fp,
            handler=s.handler,
            payload=body,
            scheduled_ms=t,
            flow_key=fk,
        )
        for t in ticks
    ]


async def place_routed(
    rt: Runtime, service: str, ticks: dict[str, list[Registration]]
) -> tuple[dict[str, str], int]:
    """Step one of a multi-partition service's round: each schedule's ticks get the id a send
    with the tick's token would get (in its flow key's partition, or its token's) and are placed
    by ``register.lua``, one call per partition. Returns each schedule's last tick id that was
    not refused (``bad_key``: decided, not placed; a tick is never refused for backpressure) and
    how many ticks were new."""
    c = rt.client
    routed: dict[str, list[Registration]] = {}
    by_part: dict[int, list[Registration]] = {}
    for name, regs in ticks.items():
        for r in regs:
            try:
                anchor = await routing.anchor(c, service, r.handler, r.payload, r.flow_key or None)
            except flow.BadKey:  # register.lua refuses it as bad_key: routed by its own token
                anchor = None
            token = tick_token(service, name, r.scheduled_ms or 0)
            r = msgspec.structs.replace(r, id=await routing.route(c, service, token, anchor))
            routed.setdefault(name, []).append(r)
            by_part.setdefault(locate(r.id)[1], []).append(r)
    status: dict[str, str] = {}
    for part, regs in by_part.items():
        answers = await c.scripts.register_many(c.keys(service, part), regs)
        status.update((r.id, a.status) for r, a in zip(regs, answers, strict=True))
    last = {}
    for name, regs in routed.items():
        kept = [r.id for r in regs if status[r.id] != "bad_key"]
        if kept:
            last[name] = kept[-1]
    return last, sum(1 for s in status.values() if s == "accepted")


async def tick_once(rt: Runtime, k: ServiceKeys, now: int) -> float:
    """Place what is due at ``now`` (server ms, estimated); returns the pause before the next round."""
    redis = rt.client.redis
    due = [codec.text(n) for n in await redis.zrangebyscore(k.cron, "-inf", now, start=0, num=BATCH)]
    if due:
        async with redis.pipeline(transaction=False) as p:
            p.hmget(k.schedules, due)
            p.hmget(k.ticks, due)
            specs, cursors = await p.execute()
        planned = time.monotonic()
        grace = int(rt.config.cron_grace * 1000)
        round_: list[Due] = []
        svc = rt.app.services.get(k.service)
        for name, raw, cur in zip(due, specs, cursors, strict=True):
            if not raw:  # deleted: the script takes it out of the zset
                round_.append(Due(name, "", b"", now, now, []))
                continue
            cursor = codec.text(cur) if cur else ""
            try:
                s = cron.decode(raw)
                plan = cron.plan(s, int(cur) if cur else now, now, grace)
                ticks = registrations(k, s, plan.ticks, svc.handlers.get(s.handler) if svc else None)
            except Exception as e:  # a definition stored before a check refused it: skip it, tick the rest
                log.error(
                    "schedule %s.%s cannot be planned (%s: %s); retried in %d s",
                    k.service,
                    name,
                    type(e).__name__,
                    e,
                    BROKEN_RETRY_MS // 1000,
                )
                # its cursor stays, its next look is later (one error line per schedule, not a spin);
                # an edit, a pause or a delete meanwhile wins as usual (the script's checks)
                keep = int(cur) if cur and cur.isdigit() else now
                round_.append(Due(name, cursor, raw, keep, now + BROKEN_RETRY_MS, []))
                continue
            round_.append(Due(name, cursor, raw, plan.cursor, plan.next_fire, ticks))
        if round_ and routing.routed(rt.client, await rt.client.layout(k.service)):
            if time.monotonic() - planned > rt.config.visibility_timeout:
                return 0.0  # paused since it planned (a zombie): plan again from the cursors
            last, new = await place_routed(rt, k.service, {d.name: list(d.ticks) for d in round_ if d.ticks})
            rt.ticks_placed += new
            round_ = [d._replace(ticks=[], last=last.get(d.name, "")) for d in round_]
        if round_:  # the whole round in one script call: one round trip, one fsync
            rt.ticks_placed += sum(placed for _, placed in await rt.client.cron_scripts.tick(k, round_))
        if len(due) == BATCH:
            return 0.0
    nxt = await redis.zrange(k.cron, 0, 0, withscores=True)
    if not nxt:
        return MAX_SLEEP
    return max(0.0, min(MAX_SLEEP, (float(nxt[0][1]) - now) / 1000))


async def tick_loop(rt: Runtime, k: ServiceKeys) -> None:
    offset_ms: int | None = None  # server clock minus ours, re-measured every 60 rounds
    rounds = 0
    while not rt.stopping.is_set():
        rounds += 1
        try:
            if offset_ms is None or rounds % 60 == 0:
                offset_ms = await rt.client.server_time_ms() - int(time.time() * 1000)
            pause = await tick_once(rt, k, int(time.time() * 1000) + offset_ms)
        except TRANSIENT as e:
            log.warning("tick loop of %s failed: %s", k.service, e)
            pause = MAX_SLEEP
        if pause > 0:
            await rt.sleep(pause)
