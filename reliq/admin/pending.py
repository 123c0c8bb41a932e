"""Step 2a of the admin views: a service's pending-entries lists (one per partition), merged in
entry-id order (oldest entry first, the partition breaking ties) and joined with the records.

One page costs: the layout read, one pipeline with an ``XPENDING`` summary and one
``XPENDING ... [IDLE ms] start + limit+1 [consumer]`` range per partition, one pipeline of
``XRANGE id id`` per row shown, one of ``HMGET`` of the records, one of ``EXISTS`` of the
owners' heartbeats. A page reads at most ``partitions x (limit + 1)`` PEL rows (and joins only
``limit``), whatever the size of the lists. The cursor is described in ``reliq.admin.paging``.

>>> page = await pending(client, "orders", min_idle_ms=60_000, limit=50)
>>> [(e.partition, e.invocation_id, e.owner, e.owner_alive) for e in page.items]
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from reliq.admin import parked as parked_sets
from reliq.admin.documents import PendingEntry, PendingPage
from reliq.admin.paging import (
    MAX_LIMIT,
    Scope,
    _int,
    _ms,
    alive,
    clamp,
    entry_key,
    next_cursor,
    parse_cursor,
    scope,
)
from reliq.client import Client
from reliq.codec import text
from reliq.store.keys import GROUP, LEVELS, RELEASE_IDLE_MS
from reliq.store.record import Field

F = Field
_PEL_FIELDS = (F.HANDLER, F.STATE, F.ATTEMPT, F.EPOCH, F.LEASE_UNTIL, F.STEP)


async def pending(
    client: Client,
    service: str,
    *,
    cursor: str | None = None,
    consumer: str | None = None,
    min_idle_ms: int = 0,
    handler: str | None = None,
    limit: int = 100,
    partition: int | None = None,
) -> PendingPage:
    """One page of the pending entries of every partition (or only ``partition``), oldest entry
    first, joined with the records. ``cursor`` is ``next_cursor`` of the previous page. With
    ``handler``, the lists are followed chunk by chunk (500 entries) until the page holds
    ``limit`` of that handler's entries or ``SCAN_BUDGET`` entries were examined; ``next_cursor``
    points after the last entry examined."""
    limit = clamp(limit)
    sc = await scope(client, service, partition)
    items: list[PendingEntry] = []
    examined, following, budget = 0, cursor, parked_sets.SCAN_BUDGET
    while True:
        n = min(MAX_LIMIT, budget - examined) if handler else limit
        now, total, got, after_each = await _chunk(client, service, sc, following, consumer, min_idle_ms, n)
        following = after_each[-1] if after_each else None
        for e, after in zip(got, after_each, strict=True):
            examined += 1
            if handler is None or e.handler == handler:
                items.append(e)
            if len(items) == limit:
                following = after
                break
        if following is None or len(items) == limit or not handler or examined >= budget:
            break
    return PendingPage(
        service=service,
        now=now,
        total=total,
        items=items,
        next_cursor=following,
        partition=partition,
        partitions=sc.layout.high,
    )


async def _chunk(
    client: Client,
    service: str,
    sc: Scope,
    cursor: str | None,
    consumer: str | None,
    min_idle_ms: int,
    limit: int,
) -> tuple[int, int, list[PendingEntry], list[str | None]]:
    """(server now, pending count, up to ``limit`` entries after ``cursor`` joined with their
    records, the cursor after each entry: ``None`` after the last one of the lists)."""
    after = parse_cursor(cursor)
    tie = None
    if after and after[1] is not None:
        if not after[1].isdigit() or int(after[1]) >= sc.layout.high * len(LEVELS):
            raise ValueError(f"malformed cursor {cursor!r}: use next_cursor of the previous page")
        tie = int(after[1])
    # every priority level's stream of every partition; source = partition * 3 + level (the tie)
    sources = [
        (k.partition * len(LEVELS) + i, k.at(level)) for k in sc.keys for i, level in enumerate(LEVELS)
    ]
    async with client.redis.pipeline(transaction=False) as p:
        p.time()
        for src, k in sources:
            start = "-"
            if after:
                start = after[0] if tie is not None and src > tie else f"({after[0]}"
            p.xpending(k.stream, GROUP)
            p.xpending_range(
                k.stream, GROUP, start, "+", limit + 1, consumername=consumer, idle=min_idle_ms or None
            )
        replies = await p.execute(raise_on_error=False)
    for reply in replies:  # no stream or group yet: nothing pending there; anything else is an error
        if isinstance(reply, ResponseError) and "NOGROUP" not in str(reply):
            raise reply
    now, total = _ms(replies[0]), 0
    rows: list[tuple[tuple[int, int], int, dict[str, Any]]] = []
    for i, (src, _) in enumerate(sources):
        summary, got = replies[1 + 2 * i], replies[2 + 2 * i]
        if isinstance(summary, dict):  # an error: no stream or group yet, nothing is pending
            total += int(summary["pending"])
        if isinstance(got, list):
            rows += [(entry_key(text(r["message_id"])), src, r) for r in got]
    rows.sort(key=lambda row: (row[0], row[1]))
    shown = rows[:limit]
    ids = [text(r["message_id"]) for _, _, r in rows]
    cursors: list[str | None] = [
        next_cursor(ids[i], str(src), ids[i + 1]) if i + 1 < len(rows) else None
        for i, (_, src, _) in enumerate(shown)
    ]
    return now, total, await _join(client, service, shown, now), cursors


async def _join(
    client: Client, service: str, rows: list[tuple[tuple[int, int], int, dict[str, Any]]], now: int
) -> list[PendingEntry]:
    """Each row's invocation id (its stream entry), record fields and owner liveness; a row's
    source is partition * 3 + its level's index in ``LEVELS``."""
    async with client.redis.pipeline(transaction=False) as p:
        for _, src, r in rows:
            part, level = divmod(src, len(LEVELS))
            eid = text(r["message_id"])
            p.xrange(client.keys(service, part).at(LEVELS[level]).stream, eid, eid, count=1)
        entries = await p.execute() if rows else []
    ids = [text(e[0][1].get(b"i", b"")) if e else None for e in entries]
    async with client.redis.pipeline(transaction=False) as p:
        for (_, src, _r), inv in zip(rows, ids, strict=True):
            if inv:
                p.hmget(client.keys(service, src // len(LEVELS)).inv(inv), _PEL_FIELDS)
        recs = iter(await p.execute() if any(ids) else [])
    live = await alive(client, client.keys(service), {text(r["consumer"]) for _, _, r in rows})
    items = []
    for (_, src, r), inv in zip(rows, ids, strict=True):
        part = src // len(LEVELS)
        owner = text(r["consumer"])
        h, st, attempt, epoch, lease, step = next(recs) if inv else (None,) * 6
        lease_until = _int(lease)
        idle, eid = int(r["time_since_delivered"]), text(r["message_id"])
        released = idle >= RELEASE_IDLE_MS  # the sentinel release gives, not a real idle time
        reclaim = None if live[owner] else max(0, (lease_until or now) - now)
        items.append(
            PendingEntry(
                entry_id=eid,
                invocation_id=inv,
                handler=text(h) if h else None,
                state=text(st) if st else None,
                owner=owner,
                owner_alive=live[owner],
                idle_ms=min(idle, max(0, now - entry_key(eid)[0])),  # at most the entry's age
                deliveries=int(r["times_delivered"]),
                attempt=_int(attempt),
                epoch=_int(epoch) if epoch or not st else 0,  # absent until the first claim
                lease_until=lease_until,
                reclaim_in_ms=0 if released else reclaim,
                step=text(step) if step else None,
                lost=not inv,
                partition=part,
                released=released,
            )
        )
    return items
