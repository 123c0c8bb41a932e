"""Step 2c of the admin views: a service's suspended invocations (the ``suspended`` set of each
partition, merged newest first by ``reliq.admin.paging.zset_page``), each with what it waits for
and where each of those stands: a child's state, a promise resolved or rejected, a timer fired.

A page costs the reads of ``zset_page``, one pipeline of ``HMGET`` of the records, and one of the
inbox fields and the children's states (each child in its own partition, or service).

>>> page = await suspended(client, "orders", limit=50)
>>> [(i.invocation_id, [(w.kind, w.target, w.state) for w in i.waits]) for i in page.items]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reliq.admin.documents import SuspendedItem, SuspendedPage, WaitItem
from reliq.admin.paging import _int, zset_page
from reliq.client import Client
from reliq.codec import text
from reliq.store.keys import InvalidName, ServiceKeys, locate
from reliq.store.record import Field, Wait, waits

_PREFIX = {"child": "c:", "promise": "p:", "timer": "t:"}
_SETTLED = {"V": "resolved", "R": "rejected", "T": "fired"}


async def wait_states(client: Client, asked: Sequence[tuple[str, Sequence[Wait]]]) -> list[list[WaitItem]]:
    """For each (invocation id, its waits): the waits with their states, in one pipeline."""
    plan: list[tuple[str, Wait]] = []
    async with client.redis.pipeline(transaction=False) as p:
        for inv, ws in asked:
            for w in ws:
                if w.kind == "child":
                    try:
                        locate(w.target)
                    except InvalidName:
                        plan.append(("", w))
                        continue
                    p.hget(client.keys_of(w.target).inv(w.target), Field.STATE)
                    plan.append(("child", w))
                else:
                    p.hget(client.keys_of(inv).inbox(inv), _PREFIX[w.kind] + w.target)
                    plan.append(("inbox", w))
        replies: list[Any] = await p.execute() if any(how for how, _ in plan) else []
    got = iter(replies)
    flat: list[WaitItem] = []
    for how, w in plan:
        raw = next(got) if how else None
        state: str | None
        if how == "child":
            state = text(raw) if raw else "expired"
        else:
            state = _SETTLED.get(text(raw)[:1]) if raw else None
        flat.append(WaitItem(kind=w.kind, target=w.target, due=w.due, alone=w.alone, state=state))
    out, at = [], 0
    for _, ws in asked:
        out.append(flat[at : at + len(ws)])
        at += len(ws)
    return out


async def suspended(
    client: Client,
    service: str,
    *,
    cursor: str | None = None,
    limit: int = 100,
    partition: int | None = None,
) -> SuspendedPage:
    """One page of the suspended invocations of every partition, or only ``partition``."""

    def key(k: ServiceKeys) -> str:
        return k.suspended

    page = await zset_page(client, service, key, cursor=cursor, limit=limit, partition=partition)
    fields = (Field.STATE, Field.HANDLER, Field.SUSPENDS, Field.WAITS)
    async with client.redis.pipeline(transaction=False) as p:
        for m, _, part in page.rows:
            p.hmget(client.keys(service, part).inv(text(m)), fields)
        recs: list[Any] = await p.execute() if page.rows else []
    ids = [text(m) for m, _, _ in page.rows]
    found = [waits(rec[3]) for rec in recs]
    states = await wait_states(client, list(zip(ids, found, strict=True)))
    items = []
    for (_, score, part), inv, (st, h, susp, _), ws in zip(page.rows, ids, recs, states, strict=True):
        if st is None:
            gone = SuspendedItem(invocation_id=inv, suspended_at=int(score), expired=True, partition=part)
            items.append(gone)
            continue
        items.append(
            SuspendedItem(
                invocation_id=inv,
                suspended_at=int(score),
                handler=text(h) if h else None,
                state=text(st),
                suspensions=_int(susp),
                waits=ws,
                partition=part,
            )
        )
    return SuspendedPage(
        service=service,
        now=page.now,
        total=page.total,
        items=items,
        next_cursor=page.next_cursor,
        partition=partition,
        partitions=page.partitions,
    )
