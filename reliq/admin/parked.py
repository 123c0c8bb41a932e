"""Step 2b of the admin views: a service's parked sets (or archives), one per partition, merged
newest first and joined with the records; and the bulk redrive, which walks them oldest first.

Order: time parked (descending), then partition, then id (descending, as ``ZREVRANGE`` orders
equal scores). The cursor is ``<time parked>@<invocation id>`` of the last item shown (the id
says its partition). The next page reads, per partition, ``ZREVRANGEBYSCORE`` from the cursor's
time, exclusive for partitions before the cursor's, inclusive after it; in the cursor's own
partition it also reads the members parked in the same millisecond (one ``ZCOUNT``) and skips
those not after the cursor. So a page costs the layout read, at most one ``ZCOUNT``, one
pipeline of ``ZCARD`` + one range of ``limit + 1`` per partition, and one of ``HMGET``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from reliq.admin.documents import ErrorSummary, ParkedItem, ParkedPage
from reliq.admin.paging import _int, _ms, clamp, scope
from reliq.client import Client
from reliq.codec import text
from reliq.store.keys import ServiceKeys, locate
from reliq.store.record import Field

F = Field
_FIELDS = (F.STATE, F.HANDLER, F.REASON, F.ERROR, F.ATTEMPT, F.DELIVERIES, F.CRASHES, F.REDRIVES)
_error = msgspec.json.Decoder(ErrorSummary).decode


def _parse(cursor: str | None) -> tuple[int, str, int] | None:
    """(time parked, id, partition) of a cursor; ``None`` (or ``"0"``) is the first page."""
    if not cursor or cursor == "0":
        return None
    score, at, member = cursor.partition("@")
    if not at or not score.isdigit() or len(score) > 15:
        raise ValueError(f"malformed cursor {cursor!r}: use next_cursor of the previous page")
    return int(score), member, locate(member)[1]  # InvalidName is a ValueError


def _merge(rows: list[tuple[bytes, float, int]]) -> list[tuple[bytes, float, int]]:
    """Newest first; same time: lower partition first; same partition: id descending."""
    rows.sort(key=lambda r: r[0], reverse=True)
    rows.sort(key=lambda r: (-r[1], r[2]))
    return rows


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
    limit, after = clamp(limit), _parse(cursor)
    sc = await scope(client, service, partition)

    def key(k: ServiceKeys) -> str:
        return k.archive if archived else k.parked

    same_ms = 0
    if after and any(k.partition == after[2] for k in sc.keys):
        same_ms = int(await client.redis.zcount(key(client.keys(service, after[2])), after[0], after[0]))
    async with client.redis.pipeline(transaction=False) as p:
        p.time()
        for k in sc.keys:
            p.zcard(key(k))
            if after is None:
                p.zrevrange(key(k), 0, limit, withscores=True)
            else:
                score, _, cp = after
                top = f"({score}" if k.partition < cp else score
                extra = same_ms if k.partition == cp else 0
                p.zrevrangebyscore(key(k), top, "-inf", start=0, num=limit + 1 + extra, withscores=True)
        replies = await p.execute()
    total, rows = 0, []
    for i, k in enumerate(sc.keys):
        total += int(replies[1 + 2 * i])
        for m, s in replies[2 + 2 * i]:
            if after and k.partition == after[2] and s == after[0] and text(m) >= after[1]:
                continue  # parked in the cursor's millisecond, at or before the cursor
            rows.append((m, s, k.partition))
    rows = _merge(rows)
    shown = rows[:limit]
    items = await _join(client, service, shown)
    if handler:
        items = [i for i in items if i.handler == handler]
    last = shown[-1] if len(rows) > limit else None
    return ParkedPage(
        service=service,
        now=_ms(replies[0]),
        archived=archived,
        total=total,
        items=items,
        next_cursor=f"{int(last[1])}@{text(last[0])}" if last else None,
        partition=partition,
        partitions=sc.layout.high,
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
                deliveries=_int(deliveries),
                crashes=_int(crashes),
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
