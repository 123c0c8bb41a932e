"""One invocation, everything an operator asks about it: the status document (input, result or
error with traceback, steps), its timeline, its parent and children with their states, and its
pending entry (owner, alive?, idle); while suspended, what it waits for with each wait's state
(a child's state, a promise resolved or rejected, a timer fired). Bounded: at most 200 children
are looked up (``children_total`` counts them all). Everything is read in the invocation's
partition (its id says which); parent and children each in their own.

>>> d = await detail(client, "orders.3v9k...")
>>> [(e.event, e.actor, e.epoch) for e in d.timeline]
"""

from __future__ import annotations

from redis.exceptions import ResponseError

from reliq.admin.documents import Detail, EntryRef, Relative
from reliq.admin.paging import alive
from reliq.admin.suspended import wait_states
from reliq.admin.timeline import parse_timeline
from reliq.admin.waits import reason_in
from reliq.client import Client
from reliq.codec import text
from reliq.store.keys import GROUP, InvalidName, locate
from reliq.store.record import Field, fields, found, parse

MAX_CHILDREN = 200


async def _relatives(client: Client, ids: list[str]) -> list[Relative]:
    valid = []
    for i in ids:
        try:
            valid.append((i, locate(i)[0]))
        except InvalidName:
            continue
    async with client.redis.pipeline(transaction=False) as p:
        for i, _ in valid:
            p.hmget(client.keys_of(i).inv(i), [Field.HANDLER, Field.STATE])  # a relative's own partition
        recs = await p.execute() if valid else []
    return [
        Relative(id=i, service=s, handler=text(h) if h else None, state=text(st) if st else "expired")
        for (i, s), (h, st) in zip(valid, recs, strict=True)
    ]


async def detail(client: Client, invocation_id: str) -> Detail | None:
    """Record, input, result or error (with traceback), timeline, steps, parent and children,
    and the pending entry if it sits in the PEL. None when unknown or expired."""
    k = client.keys_of(invocation_id)
    async with client.redis.pipeline(transaction=False) as p:
        p.hgetall(k.inv(invocation_id))
        p.hgetall(k.steps(invocation_id))
        p.zrange(k.children(invocation_id), 0, MAX_CHILDREN - 1)
        p.zcard(k.children(invocation_id))
        p.zscore(k.parked, invocation_id)
        p.zscore(k.archive, invocation_id)
        rec, steps, children, total, in_parked, in_archive = await p.execute()
    if not found(rec):
        return None
    inv = parse(invocation_id, rec, steps, children)
    family = await _relatives(client, ([inv.parent_id] if inv.parent_id else []) + inv.children)
    parent = family[0] if inv.parent_id and family and family[0].id == inv.parent_id else None
    kids = family[1:] if parent else family
    entry = None
    h = fields(rec)
    eid = text(h.get(Field.ENTRY, b""))
    if eid:
        try:
            stream = k.at(text(h.get(Field.PRIO, b"")) or "normal").stream  # its priority's stream
            rows = await client.redis.xpending_range(stream, GROUP, eid, eid, 1)
        except ResponseError:  # no consumer group yet: nothing was delivered
            rows = []
        if rows:
            owner = text(rows[0]["consumer"])
            entry = EntryRef(
                entry_id=eid,
                owner=owner,
                owner_alive=(await alive(client, k, {owner}))[owner],
                idle_ms=int(rows[0]["time_since_delivered"]),
                deliveries=int(rows[0]["times_delivered"]),
            )
    waiting = (await wait_states(client, [(invocation_id, inv.waits)]))[0] if inv.waits else []
    return Detail(
        now=await client.server_time_ms(),  # not in the pipeline: a Cluster pipeline refuses TIME
        invocation=inv,
        timeline=parse_timeline(h.get(Field.TIMELINE)),
        parent=parent,
        children=kids,
        pending_entry=entry,
        parked=in_parked is not None,
        archived=in_archive is not None,
        partition=k.partition,
        waits=waiting,
        wait=await reason_in(client, invocation_id, h),
        children_total=int(total),
    )
