"""Step 2b of the admin views: a service's parked sets (or archives), one per partition, merged
newest first (``reliq.admin.paging.zset_page``) and joined with the records; and the walk the
bulk redrive makes, oldest first (``ascending``). A page costs the reads ``zset_page`` makes plus
one pipeline of ``HMGET``.

A ``handler`` filter is applied while paging: the page follows the sets chunk by chunk (500
members) until it holds ``limit`` of that handler's invocations, or ``SCAN_BUDGET`` members were
examined; ``next_cursor`` then points after the last member examined, so a filtered page is empty
only when nothing matched within the budget, and the next page continues from there.
"""

from __future__ import annotations

from typing import Any

import msgspec

from reliq.admin.documents import ErrorSummary, ParkedItem, ParkedPage
from reliq.admin.paging import MAX_LIMIT, Row, _int, _zcursor, clamp, scope, zset_page
from reliq.client import Client
from reliq.codec import text
from reliq.store.keys import ServiceKeys
from reliq.store.record import Field

F = Field
_FIELDS = (F.STATE, F.HANDLER, F.REASON, F.ERROR, F.ATTEMPT, F.DELIVERIES, F.CRASHES, F.REDRIVES)
_error = msgspec.json.Decoder(ErrorSummary).decode
SCAN_BUDGET = 5000  # members a filtered page (or a bulk redrive) examines at most per call


def cursor_of(row: Row) -> str:
    """The cursor after ``row`` (``<score>@<invocation id>``), in either direction."""
    return f"{int(row[1])}@{text(row[0])}"


async def parked(
    client: Client,
    service: str,
    *,
    cursor: str | None = None,
    limit: int = 100,
    handler: str | None = None,
    archived: bool = False,
    partition: int | None = None,
) -> ParkedPage:
    """One page of the parked sets (or the archives) of every partition, or only ``partition``."""

    def key(k: ServiceKeys) -> str:
        return k.archive if archived else k.parked

    limit = clamp(limit)
    chunk = limit
    items: list[ParkedItem] = []
    examined, following = 0, cursor
    while True:
        if handler:
            chunk = min(MAX_LIMIT, SCAN_BUDGET - examined)
        page = await zset_page(client, service, key, cursor=following, limit=chunk, partition=partition)
        following = page.next_cursor
        for row, item in zip(page.rows, await _join(client, service, page.rows), strict=True):
            examined += 1
            if handler is None or item.handler == handler:
                items.append(item)
            if len(items) == limit or (handler and examined == SCAN_BUDGET):
                if row is not page.rows[-1] or page.next_cursor:
                    following = cursor_of(row)  # stopped inside the sets: continue after this one
                break
        if following is None or len(items) == limit or not handler or examined >= SCAN_BUDGET:
            break
    return ParkedPage(
        service=service,
        now=page.now,
        archived=archived,
        total=page.total,
        items=items,
        next_cursor=following,
        partition=partition,
        partitions=page.partitions,
    )


async def _join(client: Client, service: str, rows: list[tuple[bytes, float, int]]) -> list[ParkedItem]:
    async with client.redis.pipeline(transaction=False) as p:
        for m, _, part in rows:
            p.hmget(client.keys(service, part).inv(text(m)), _FIELDS)
        recs: list[Any] = await p.execute() if rows else []
    items = []
    for (m, score, part), (st, h, reason, err, attempt, deliveries, crashes, redrives) in zip(
        rows, recs, strict=True
    ):
        inv = text(m)
        if st is None:
            items.append(ParkedItem(invocation_id=inv, parked_at=int(score), expired=True, partition=part))
            continue
        items.append(
            ParkedItem(
                invocation_id=inv,
                handler=text(h),
                reason=text(reason) if reason else None,
                error=_error(err) if err else None,
                attempt=_int(attempt),
                deliveries=_int(deliveries) or 0,  # absent until the first claim
                crashes=_int(crashes) or 0,
                redrives=_int(redrives) or 0,
                parked_at=int(score),
                partition=part,
            )
        )
    return items


async def ascending(
    client: Client, service: str, n: int, archived: bool, partition: int | None, cursor: str | None
) -> tuple[list[Row], bool]:
    """Up to ``n`` members of the parked sets (or archives) after ``cursor`` (``cursor_of`` a
    member), oldest first over the partitions: by score, then partition, then id; and whether
    more follow. Each partition reads ``n + 1`` (the cursor's own partition also the members
    with the cursor's score: one ``ZCOUNT``)."""
    sc = await scope(client, service, partition)
    after = _zcursor(cursor, service, sc.layout.high)

    def key(k: ServiceKeys) -> str:
        return k.archive if archived else k.parked

    same = 0
    if after and any(k.partition == after[2] for k in sc.keys):
        same = int(await client.redis.zcount(key(client.keys(service, after[2])), after[0], after[0]))
    async with client.redis.pipeline(transaction=False) as p:
        for k in sc.keys:
            if after is None:
                p.zrange(key(k), 0, n, withscores=True)
            else:
                low = f"({after[0]}" if k.partition < after[2] else after[0]
                extra = same if k.partition == after[2] else 0
                p.zrangebyscore(key(k), low, "+inf", start=0, num=n + 1 + extra, withscores=True)
        replies = await p.execute()
    rows: list[Row] = []
    for k, got in zip(sc.keys, replies, strict=True):
        for m, score in got:
            if after and k.partition == after[2] and score == after[0] and text(m) <= after[1]:
                continue  # same score as the cursor, at or before it
            rows.append((m, score, k.partition))
    rows.sort(key=lambda r: (r[1], r[2], r[0]))
    return rows[:n], len(rows) > n


async def count_from(client: Client, service: str, archived: bool, partition: int | None, cursor: str) -> int:
    """Members at or after the score of ``cursor`` (an upper bound of those after it)."""
    sc = await scope(client, service, partition)
    score = cursor.partition("@")[0]
    async with client.redis.pipeline(transaction=False) as p:
        for k in sc.keys:
            p.zcount(k.archive if archived else k.parked, score, "+inf")
        return sum(int(n) for n in await p.execute())


async def count(client: Client, service: str, archived: bool, partition: int | None) -> int:
    sc = await scope(client, service, partition)
    async with client.redis.pipeline(transaction=False) as p:
        for k in sc.keys:
            p.zcard(k.archive if archived else k.parked)
        return sum(int(n) for n in await p.execute())
