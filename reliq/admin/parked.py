"""Step 2b of the admin views: a service's parked sets (or archives), one per partition, merged
newest first (``reliq.admin.paging.zset_page``) and joined with the records; and the bulk
redrive, which walks them oldest first. A page costs the reads ``zset_page`` makes plus one
pipeline of ``HMGET``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from reliq.admin.documents import ErrorSummary, ParkedItem, ParkedPage
from reliq.admin.paging import _int, scope, zset_page
from reliq.client import Client
from reliq.codec import text
from reliq.store.keys import ServiceKeys
from reliq.store.record import Field

F = Field
_FIELDS = (F.STATE, F.HANDLER, F.REASON, F.ERROR, F.ATTEMPT, F.DELIVERIES, F.CRASHES, F.REDRIVES)
_error = msgspec.json.Decoder(ErrorSummary).decode


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

    page = await zset_page(client, service, key, cursor=cursor, limit=limit, partition=partition)
    items = await _join(client, service, page.rows)
    if handler:
        items = [i for i in items if i.handler == handler]
    return ParkedPage(
        service=service,
        now=page.now,
        archived=archived,
        total=page.total,
        items=items,
        next_cursor=page.next_cursor,
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


async def oldest(client: Client, service: str, n: int, archived: bool, partition: int | None) -> list[str]:
    """The ``n`` oldest members of the parked sets (or archives), merged over the partitions."""
    sc = await scope(client, service, partition)
    async with client.redis.pipeline(transaction=False) as p:
        for k in sc.keys:
            p.zrange(k.archive if archived else k.parked, 0, n - 1, withscores=True)
        replies = await p.execute()
    rows = [(m, s, k.partition) for k, got in zip(sc.keys, replies, strict=True) for m, s in got]
    rows.sort(key=lambda r: (r[1], r[2], r[0]))
    return [text(m) for m, _, _ in rows[:n]]


async def count(client: Client, service: str, archived: bool, partition: int | None) -> int:
    sc = await scope(client, service, partition)
    async with client.redis.pipeline(transaction=False) as p:
        for k in sc.keys:
            p.zcard(k.archive if archived else k.parked)
        return sum(int(n) for n in await p.execute())
