"""Read-only views of a service for operators: the overview, the pending-entries list (PEL)
joined with the invocation records, and the parked set and archive (one invocation's full detail
is ``reliq.detail``). No KEYS, no SCAN: every view is a bounded number of pipelined reads.

>>> page = await pending(client, "orders", min_idle_ms=60_000, limit=50)
>>> [(e.invocation_id, e.owner, e.owner_alive) for e in page.items]
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import msgspec

from .client import Client
from .keys import GROUP, SERVICES, InvalidName, ServiceKeys, check_name
from .views import (
    Consumer,
    ErrorSummary,
    Minute,
    OldestPending,
    Overview,
    ParkedItem,
    ParkedPage,
    PendingEntry,
    PendingPage,
    ServiceOverview,
)

MAX_LIMIT = 500
MINUTES = 15
MAX_CONSUMERS = 100
_OUTCOMES = ("succeeded", "failed", "retried", "cancelled")
_ENTRY_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
_heartbeat = msgspec.json.Decoder(dict[str, Any]).decode
_error = msgspec.json.Decoder(ErrorSummary).decode


def clamp(limit: int) -> int:
    """Page sizes are clamped to 1..500."""
    return max(1, min(int(limit), MAX_LIMIT))


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _int(v: Any) -> int | None:
    return int(v) if v not in (None, b"", "") else None


def _ms(sec_usec: tuple[int, int]) -> int:
    return int(sec_usec[0]) * 1000 + int(sec_usec[1]) // 1000


async def services(client: Client) -> list[str]:
    return sorted(_s(s) for s in await client.redis.smembers(SERVICES))


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


def _minutes(raw: dict[bytes, bytes], now: int) -> list[Minute]:
    h = {_s(k): _s(v) for k, v in raw.items()}
    current = now // 60000
    out = []
    for m in range(current - MINUTES + 1, current + 1):
        slot, fresh = str(m % 60), h.get(str(m % 60)) == str(m)
        counts = {o: int(h.get(f"{slot}:{o}", 0)) if fresh else 0 for o in _OUTCOMES}
        out.append(Minute(minute=m * 60000, **counts))
    return out


def _consumer(info: dict[str, Any], beat: bytes | None) -> Consumer:
    hb = _heartbeat(beat) if beat is not None else {}
    return Consumer(
        name=_s(info["name"]),
        alive=beat is not None,
        pending=int(info.get("pending", 0)),
        idle_ms=_int(info.get("idle")),
        inflight=hb.get("inflight"),
        concurrency=hb.get("concurrency"),
        host=hb.get("host"),
        pid=hb.get("pid"),
        processed=hb.get("processed"),
        heartbeat_at=hb.get("at"),
    )


async def service_overview(client: Client, service: str) -> ServiceOverview:
    k = client.keys(service)
    async with client.redis.pipeline(transaction=False) as p:
        p.time()
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
        replies = await p.execute(raise_on_error=False)
    t, xlen, groups, summary, oldest, delayed, parked, archived, lost, consumers, minutes = replies
    now = _ms(t)
    group = next((g for g in groups if _s(g["name"]) == GROUP), None) if isinstance(groups, list) else None
    summary = summary if isinstance(summary, dict) else {"pending": 0}
    first = None
    if isinstance(oldest, list) and oldest:
        o, eid = oldest[0], _s(oldest[0]["message_id"])
        first = OldestPending(
            entry_id=eid,
            age_ms=max(0, now - int(eid.split("-", 1)[0])),
            idle_ms=int(o["time_since_delivered"]),
            owner=_s(o["consumer"]),
            deliveries=int(o["times_delivered"]),
        )
    infos = consumers if isinstance(consumers, list) else []
    infos = sorted(infos, key=lambda c: (-int(c.get("pending", 0)), int(c.get("idle") or 0)))
    shown = infos[:MAX_CONSUMERS]
    beats = await client.redis.mget([k.consumer(_s(c["name"])) for c in shown]) if shown else []
    return ServiceOverview(
        service=service,
        stream_length=int(xlen),
        lag=_int(group.get("lag")) if group else None,
        pending=int(summary["pending"]),
        oldest_pending=first,
        delayed=int(delayed),
        parked=int(parked),
        archived=int(archived),
        lost=int(lost),
        consumers=[_consumer(c, b) for c, b in zip(shown, beats, strict=True)],
        consumers_total=len(infos),
        minutes=_minutes(minutes if isinstance(minutes, dict) else {}, now),
    )


async def overview(client: Client) -> Overview:
    """Every registered service, plus the server's durability level."""
    names = await services(client)
    docs, durability = await asyncio.gather(
        asyncio.gather(*(service_overview(client, s) for s in names)), client.durability()
    )
    return Overview(now=await client.server_time_ms(), durability=durability, services=list(docs))


async def alive(client: Client, k: ServiceKeys, owners: set[str]) -> dict[str, bool]:
    names = sorted(owners)
    if not names:
        return {}
    async with client.redis.pipeline(transaction=False) as p:
        for n in names:
            p.exists(k.consumer(n))
        return {n: bool(e) for n, e in zip(names, await p.execute(), strict=True)}


_PEL_FIELDS = ("handler", "state", "attempt", "epoch", "lease_until", "step")


async def pending(
    client: Client,
    service: str,
    *,
    cursor: str | None = None,
    consumer: str | None = None,
    min_idle_ms: int = 0,
    handler: str | None = None,
    limit: int = 100,
) -> PendingPage:
    """One page of the pending-entries list, oldest entry first, joined with the records.
    ``cursor`` is the last entry id of the previous page (exclusive)."""
    k, limit = client.keys(service), clamp(limit)
    if cursor and not _ENTRY_ID.match(cursor):
        raise ValueError(f"malformed cursor {cursor!r}: use next_cursor of the previous page")
    start = f"({cursor}" if cursor else "-"
    async with client.redis.pipeline(transaction=False) as p:
        p.time()
        p.xpending(k.stream, GROUP)
        p.xpending_range(k.stream, GROUP, start, "+", limit, consumername=consumer, idle=min_idle_ms or None)
        t, summary, rows = await p.execute(raise_on_error=False)
    now = _ms(t)
    if isinstance(rows, Exception):  # no stream or group yet: nothing is pending
        return PendingPage(service=service, now=now, total=0, items=[], next_cursor=None)
    async with client.redis.pipeline(transaction=False) as p:
        for r in rows:
            eid = _s(r["message_id"])
            p.xrange(k.stream, eid, eid, count=1)
        entries = await p.execute()
    ids = [_s(e[0][1].get(b"i", b"")) if e else None for e in entries]
    async with client.redis.pipeline(transaction=False) as p:
        for i in ids:
            if i:
                p.hmget(k.inv(i), *_PEL_FIELDS)
        recs = iter(await p.execute())
    live = await alive(client, k, {_s(r["consumer"]) for r in rows})
    items = []
    for r, inv in zip(rows, ids, strict=True):
        owner = _s(r["consumer"])
        h, st, attempt, epoch, lease, step = next(recs) if inv else (None,) * 6
        lease_until = _int(lease)
        items.append(
            PendingEntry(
                entry_id=_s(r["message_id"]),
                invocation_id=inv,
                handler=_s(h) if h else None,
                state=_s(st) if st else None,
                owner=owner,
                owner_alive=live[owner],
                idle_ms=int(r["time_since_delivered"]),
                deliveries=int(r["times_delivered"]),
                attempt=_int(attempt),
                epoch=_int(epoch),
                lease_until=lease_until,
                reclaim_in_ms=None if live[owner] else max(0, (lease_until or now) - now),
                step=_s(step) if step else None,
                lost=not inv,
            )
        )
    next_cursor = _s(rows[-1]["message_id"]) if len(rows) == limit else None
    if handler:
        items = [e for e in items if e.handler == handler]
    total = int(summary["pending"]) if isinstance(summary, dict) else 0
    return PendingPage(service=service, now=now, total=total, items=items, next_cursor=next_cursor)


_PARKED_FIELDS = ("handler", "reason", "error", "attempt", "deliveries", "crashes", "redrives")


async def parked(
    client: Client,
    service: str,
    *,
    cursor: int = 0,
    limit: int = 100,
    handler: str | None = None,
    archived: bool = False,
) -> ParkedPage:
    """One page of the parked set (or the archive), newest first; ``cursor`` is an offset."""
    k, limit, cursor = client.keys(service), clamp(limit), max(0, cursor)
    key = k.archive if archived else k.parked
    async with client.redis.pipeline(transaction=False) as p:
        p.time()
        p.zcard(key)
        p.zrevrange(key, cursor, cursor + limit - 1, withscores=True)
        t, total, members = await p.execute()
    async with client.redis.pipeline(transaction=False) as p:
        for m, _ in members:
            p.hmget(k.inv(_s(m)), "state", *_PARKED_FIELDS)
        recs = await p.execute()
    items = []
    for (m, score), (st, h, reason, err, attempt, deliveries, crashes, redrives) in zip(
        members, recs, strict=True
    ):
        inv = _s(m)
        if st is None:
            items.append(ParkedItem(invocation_id=inv, parked_at=int(score), expired=True))
            continue
        items.append(
            ParkedItem(
                invocation_id=inv,
                handler=_s(h),
                reason=_s(reason) if reason else None,
                error=_error(err) if err else None,
                attempt=_int(attempt),
                deliveries=_int(deliveries),
                crashes=_int(crashes),
                redrives=_int(redrives) or 0,
                parked_at=int(score),
            )
        )
    if handler:
        items = [i for i in items if i.handler == handler]
    more = cursor + limit < int(total)
    return ParkedPage(
        service=service,
        now=_ms(t),
        archived=archived,
        total=int(total),
        items=items,
        next_cursor=str(cursor + limit) if more else None,
    )
