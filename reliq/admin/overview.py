"""Read-only views of a service for operators: the overview (this module), the pending-entries
list (``reliq.admin.pending``), the parked set and archive (``reliq.admin.parked``); one invocation's full
detail is ``reliq.admin.detail``. No KEYS, no SCAN: every view is a bounded number of pipelined reads.

A partitioned service (``reliq.store.layout``) is read partition by partition (``0..high-1``) and
added up (``reliq.admin.aggregate``); every document also says which partition each number or row
comes from, and the lists take an optional ``partition`` filter.

>>> page = await pending(client, "orders", min_idle_ms=60_000, limit=50)
>>> [(e.partition, e.invocation_id, e.owner, e.owner_alive) for e in page.items]
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from reliq.admin import aggregate
from reliq.admin.documents import Minute, OldestPending, Overview, PartitionOverview, ServiceOverview
from reliq.admin.paging import _int, _ms, alive, clamp, scope
from reliq.admin.parked import parked
from reliq.admin.pending import pending
from reliq.client import Client
from reliq.codec import text
from reliq.store.flow import flow_keys
from reliq.store.keys import GROUP, OUTCOMES, SERVICES, InvalidName, ServiceKeys, check_name

__all__ = ["alive", "clamp", "known_service", "overview", "parked", "pending", "service_overview", "services"]

MINUTES = 15
MAX_CONSUMERS = aggregate.MAX_CONSUMERS
_PER_PARTITION = 22  # commands per partition in service_overview's pipeline (12 + 5 per extra level)


async def services(client: Client) -> list[str]:
    return sorted(text(s) for s in await client.redis.smembers(SERVICES))


async def known_service(client: Client, service: str) -> bool:
    """A valid name that workers registered (or that has a stream)."""
    try:
        k = client.keys(check_name("service", service))
    except InvalidName:
        return False
    async with client.redis.pipeline(transaction=False) as p:
        p.sismember(SERVICES, service)
        p.exists(k.stream)
        member, stream = await p.execute()
    return bool(member) or bool(stream)


def _minutes(raw: Any, now: int) -> list[Minute]:
    h = {text(k): text(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    current = now // 60000
    out = []
    for m in range(current - MINUTES + 1, current + 1):
        slot, fresh = str(m % 60), h.get(str(m % 60)) == str(m)
        counts = {o: int(h.get(f"{slot}:{o}", 0)) if fresh else 0 for o in OUTCOMES}
        out.append(Minute(minute=m * 60000, **counts))
    return out


def _read(p: Any, k: ServiceKeys) -> None:
    p.xlen(k.stream)
    p.xinfo_groups(k.stream)
    p.xpending(k.stream, GROUP)
    p.xpending_range(k.stream, GROUP, "-", "+", 1)
    p.zcard(k.delayed)
    p.zcard(k.parked)
    p.zcard(k.archive)
    p.xlen(k.lost)
    p.xinfo_consumers(k.stream, GROUP)
    p.hgetall(k.minutes)
    p.zcard(k.suspended)
    p.zcard(flow_keys(k)[3])
    for stream in k.streams[1:]:  # the high and low streams: summed into the partition's numbers
        p.xlen(stream)
        p.xinfo_groups(stream)
        p.xpending(stream, GROUP)
        p.xpending_range(stream, GROUP, "-", "+", 1)
        p.xinfo_consumers(stream, GROUP)


def _levels(replies: list[Any]) -> list[Any]:
    """The 12 values of one partition with its high and low streams' numbers folded in: lengths,
    lags and pending counts summed, the oldest pending entry of any level, consumers merged."""
    base = list(replies[:12])
    for i in range(12, len(replies), 5):
        xlen, groups, summary, oldest, consumers = replies[i : i + 5]
        if isinstance(xlen, int):
            base[0] = (base[0] if isinstance(base[0], int) else 0) + xlen
        mine = (
            next((g for g in groups if text(g["name"]) == GROUP), None) if isinstance(groups, list) else None
        )
        if mine and isinstance(base[1], list):
            base[1] = [{**g, "lag": _sum_lag(g.get("lag"), mine.get("lag"))} for g in base[1]]
        if isinstance(summary, dict) and isinstance(base[2], dict):
            base[2] = {**base[2], "pending": int(base[2]["pending"]) + int(summary["pending"])}
        if isinstance(oldest, list) and oldest:
            mine_first = base[3] if isinstance(base[3], list) and base[3] else None
            if (
                mine_first is None
                or oldest[0]["time_since_delivered"] > mine_first[0]["time_since_delivered"]
            ):
                base[3] = oldest
        if isinstance(consumers, list):
            have = {text(c["name"]): c for c in base[8]} if isinstance(base[8], list) else {}
            for c in consumers:
                seen = have.get(text(c["name"]))
                if seen is None:
                    have[text(c["name"])] = c
                else:
                    pending = int(seen.get("pending", 0)) + int(c.get("pending", 0))
                    have[text(c["name"])] = {
                        **seen,
                        "pending": pending,
                        "idle": min(int(seen.get("idle") or 0), int(c.get("idle") or 0)),
                    }
            base[8] = list(have.values())
    return base


def _sum_lag(a: Any, b: Any) -> Any:
    return None if a is None or b is None else int(a) + int(b)


def _partition(part: int, replies: list[Any], now: int) -> tuple[PartitionOverview, list[dict[str, Any]]]:
    """One partition's numbers (consumers still without liveness) and its group's consumers."""
    (
        xlen,
        groups,
        summary,
        oldest,
        delayed,
        parked_n,
        archived,
        lost,
        consumers,
        minutes,
        suspended,
        queued,
    ) = _levels(replies)
    group = next((g for g in groups if text(g["name"]) == GROUP), None) if isinstance(groups, list) else None
    first = None
    if isinstance(oldest, list) and oldest:
        o, eid = oldest[0], text(oldest[0]["message_id"])
        age = max(0, now - int(eid.split("-", 1)[0]))
        first = OldestPending(
            entry_id=eid,
            age_ms=age,
            idle_ms=min(int(o["time_since_delivered"]), age),  # a released entry's sentinel: its age
            owner=text(o["consumer"]),
            deliveries=int(o["times_delivered"]),
            partition=part,
        )
    infos = [
        {"name": text(c["name"]), "pending": int(c.get("pending", 0)), "idle": _int(c.get("idle"))}
        for c in (consumers if isinstance(consumers, list) else [])
    ]
    doc = PartitionOverview(
        partition=part,
        stream_length=int(xlen) if isinstance(xlen, int) else 0,
        lag=_int(group.get("lag")) if group else None,
        pending=int(summary["pending"]) if isinstance(summary, dict) else 0,
        oldest_pending=first,
        delayed=int(delayed),
        parked=int(parked_n),
        archived=int(archived),
        lost=int(lost),
        suspended=int(suspended),
        queued=int(queued),
        consumers=[],
        consumers_total=len(infos),
        minutes=_minutes(minutes, now),
    )
    return doc, infos


async def service_overview(client: Client, service: str) -> ServiceOverview:
    """The service's numbers summed over its partitions, plus each partition's own."""
    sc = await scope(client, service)
    async with client.redis.pipeline(transaction=False) as p:
        p.time()
        for k in sc.keys:
            _read(p, k)
        replies = await p.execute(raise_on_error=False)
    now, n = _ms(replies[0]), _PER_PARTITION
    read = [_partition(k.partition, replies[1 + i * n : 1 + (i + 1) * n], now) for i, k in enumerate(sc.keys)]
    infos = [i for _, i in read]
    ranked = aggregate.consumer_totals(infos)
    shown = ranked[:MAX_CONSUMERS]
    hbs = await client.heartbeats(service, [c[0] for c in shown])
    live = {name: hb is not None for name, hb in hbs.items()}
    held: dict[str, list[int]] = {}
    for doc, part_infos in read:
        for c in part_infos:
            if c["pending"]:
                held.setdefault(c["name"], []).append(doc.partition)
    consumers = [aggregate.consumer(nm, pend, idle, hbs[nm], held.get(nm, [])) for nm, pend, idle in shown]
    parts = [
        msgspec.structs.replace(doc, consumers=aggregate.partition_consumers(part_infos, live))
        for doc, part_infos in read
    ]
    return aggregate.service(service, sc.layout, parts, consumers, len(ranked))


async def overview(client: Client) -> Overview:
    """Every registered service, plus the server's durability level."""
    names = await services(client)
    docs, durability = await asyncio.gather(
        asyncio.gather(*(service_overview(client, s) for s in names)), client.durability()
    )
    return Overview(now=await client.server_time_ms(), durability=durability, services=list(docs))
