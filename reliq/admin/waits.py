"""Why an invocation waits, and the invocations of a service that wait (issue 14, operators).

A waiting invocation is in one of these places, and its record says which (``store/flow.py``,
``store/record.py``):

==============  ==========================================  =====================================
cause           where it waits                              reason text
==============  ==========================================  =====================================
concurrency     its key's line (``fl:wait``), no entry      ``concurrency key K, 3 ahead (1 running)``
admitted        a permit, its stream entry not yet claimed  ``admitted (key K), waiting for a worker``
rate            the delayed set, ``wait`` = ``rate``         ``rate limit until T``
scheduled       the delayed set (a send with a delay)       ``scheduled for T``
retrying        the delayed set (a retry's backoff)         ``retry backoff until T``
priority        a stream entry of a non-normal priority     ``priority low``
worker          a stream entry                              ``waiting for a worker``
==============  ==========================================  =====================================

"3 ahead" counts the key's waiters registered before it (one ``ZLEXCOUNT`` of the key's range);
"running" is the key's permit count. Every reason is read with a bounded number of pipelined
commands per invocation (three for ``queued``, none for the others).

>>> page = await waiting(client, "orders", limit=50)
>>> [(w.invocation_id, w.reason.text) for w in page.items]
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from reliq.admin.paging import _int, clamp, scope
from reliq.client import Client
from reliq.codec import text
from reliq.store import flow
from reliq.store.keys import ServiceKeys
from reliq.store.record import Field

F = Field
_FIELDS = (F.STATE, F.HANDLER, F.FLOW_KEY, F.FLOW_SEQ, F.WAIT, F.UNTIL, F.DUE, F.PRIO)  # prio: '' = normal


class WaitReason(msgspec.Struct, frozen=True, kw_only=True):
    """Why an invocation has not started (yet): ``cause`` (see the module table) and a sentence;
    ``key``/``ahead``/``running`` for a per-key wait, ``until`` (ms) for a time."""

    cause: str
    text: str
    key: str | None = None
    ahead: int | None = None
    running: int | None = None
    until: int | None = None


class WaitingItem(msgspec.Struct, frozen=True, kw_only=True):
    invocation_id: str
    handler: str | None
    state: str | None
    partition: int
    reason: WaitReason | None


class WaitingPage(msgspec.Struct, frozen=True, kw_only=True):
    """The first ``limit`` waiters of each place (key lines in key order, then the delayed set by
    due time), and the totals: ``queued`` (in key lines), ``delayed`` (the delayed sets)."""

    service: str
    now: int
    queued: int
    delayed: int
    items: list[WaitingItem]
    partition: int | None = None


def at(ms: int) -> str:
    """A server time as the reason sentences show it (UTC, ms precision)."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _s(v: Any) -> str:
    return text(v) if v else ""


async def reasons(client: Client, records: list[tuple[str, list[Any]]]) -> list[WaitReason | None]:
    """The reason of each ``(invocation id, HMGET of _FIELDS)``; None when it does not wait."""
    queued = [(i, r) for i, r in records if _s(r[0]) == "queued" and r[2]]
    async with client.redis.pipeline(transaction=False) as p:
        for inv, r in queued:
            held, count, wait = flow.flow_keys(client.keys_of(inv))[1:4]
            fk, seq = _s(r[2]), _s(r[3])
            p.hexists(held, inv)
            p.hget(count, fk)
            p.zlexcount(wait, f"[{fk}\0", f"({fk}\0{seq}\0")
        replies = await p.execute() if queued else []
    lines = {inv: replies[3 * n : 3 * n + 3] for n, (inv, _) in enumerate(queued)}
    return [_reason(r, lines.get(inv)) for inv, r in records]


def _reason(r: list[Any], line: list[Any] | None) -> WaitReason | None:
    state, key = _s(r[0]), _s(r[2]).partition("\0")[2] or None
    until, due = _int(r[5]), _int(r[6])
    if state == "queued" and line is not None:
        admitted, running, ahead = bool(line[0]), int(line[1] or 0), int(line[2])
        if admitted:
            return WaitReason(cause="admitted", text=f"admitted (key {key}), waiting for a worker", key=key)
        return WaitReason(
            cause="concurrency",
            text=f"concurrency key {key}, {ahead} ahead ({running} running)",
            key=key,
            ahead=ahead,
            running=running,
        )
    if state == "scheduled" and _s(r[4]) == "rate":
        t = until or due or 0
        return WaitReason(cause="rate", text=f"rate limit until {at(t)}", key=key, until=t)
    if state == "scheduled" and due is not None:
        return WaitReason(cause="scheduled", text=f"scheduled for {at(due)}", until=due)
    if state == "retrying" and due is not None:
        return WaitReason(cause="retrying", text=f"retry backoff until {at(due)}", until=due)
    if state == "pending":
        prio = _s(r[7])
        if prio and prio != "normal":
            return WaitReason(cause="priority", text=f"priority {prio}")
        return WaitReason(cause="worker", text="waiting for a worker")
    return None


async def reason_of(client: Client, invocation_id: str) -> WaitReason | None:
    """One invocation's reason (``reliq inspect``, the detail view); None when it does not wait."""
    r = await client.redis.hmget(client.keys_of(invocation_id).inv(invocation_id), _FIELDS)
    return (await reasons(client, [(invocation_id, r)]))[0] if r[0] else None


async def reason_in(client: Client, invocation_id: str, record: dict[str, bytes]) -> WaitReason | None:
    """The reason of a record read already (``fields`` of its HGETALL)."""
    return (await reasons(client, [(invocation_id, [record.get(f) for f in _FIELDS])]))[0]


async def waiting(
    client: Client,
    service: str,
    *,
    handler: str | None = None,
    key: str | None = None,
    limit: int = 100,
    partition: int | None = None,
) -> WaitingPage:
    """The invocations of ``service`` that wait for a permit or a time, with their reasons: the
    first ``limit`` of the key lines (only ``handler``'s, only ``key``'s with both given) and of
    the delayed sets, per partition; the totals count everything."""
    limit = clamp(limit)
    if key is not None and handler is None:
        raise ValueError("key needs handler: a flow key is a handler's")
    if key is not None:
        flow.key_value(key)
    lo = "-" if handler is None else f"[{handler}\0" + ("" if key is None else f"{key}\0")
    hi = "+" if handler is None else f"({handler}\1" if key is None else f"({handler}\0{key}\1"
    sc = await scope(client, service, partition)
    now = await client.server_time_ms()  # not in the pipeline: a Cluster pipeline refuses TIME
    async with client.redis.pipeline(transaction=False) as p:
        for k in sc.keys:
            wait = flow.flow_keys(k)[3]
            p.zcard(wait)
            p.zcard(k.delayed)
            p.zrangebylex(wait, lo, hi, 0, limit)
            p.zrange(k.delayed, 0, limit - 1)
        replies = await p.execute()
    queued, delayed = 0, 0
    ids: list[tuple[str, int]] = []
    for n, k in enumerate(sc.keys):
        nq, nd, members, due = replies[4 * n : 4 + 4 * n]
        queued, delayed = queued + int(nq), delayed + int(nd)
        ids += [(text(m).rsplit("\0", 1)[1], k.partition) for m in members]
        ids += [(text(i), k.partition) for i in due]
    async with client.redis.pipeline(transaction=False) as p:
        for inv, _ in ids:
            p.hmget(client.keys_of(inv).inv(inv), _FIELDS)
        recs = await p.execute() if ids else []
    found = [(inv, part, r) for (inv, part), r in zip(ids, recs, strict=True) if r[0]]
    if handler is not None:
        found = [row for row in found if _s(row[2][1]) == handler]
    if key is not None:
        found = [row for row in found if _s(row[2][2]) == f"{handler}\0{key}"]
    why = await reasons(client, [(inv, r) for inv, _, r in found])
    items = [
        WaitingItem(invocation_id=inv, handler=_s(r[1]) or None, state=_s(r[0]), partition=part, reason=w)
        for (inv, part, r), w in zip(found, why, strict=True)
    ]
    return WaitingPage(
        service=service, now=now, queued=queued, delayed=delayed, items=items, partition=partition
    )


RATE_SCAN = 1000  # delayed members read per partition to tell rate waits from scheduled ones


async def causes(client: Client, service: str) -> dict[str, int]:
    """How many invocations of ``service`` wait, by cause (``/metrics``): ``concurrency`` (in key
    lines), ``rate`` (delayed by a rate limit) and ``scheduled`` (the rest of the delayed sets:
    sends with a delay and retry backoffs). A rate wait is due before its bucket's time, so only
    the delayed members due by the latest bucket time are read (at most ``RATE_SCAN`` per
    partition, none when no rate bucket is live)."""
    sc = await scope(client, service)
    now = await client.server_time_ms()  # not in the pipeline: a Cluster pipeline refuses TIME
    async with client.redis.pipeline(transaction=False) as p:
        for k in sc.keys:
            p.zcard(flow.flow_keys(k)[3])
            p.zcard(k.delayed)
            p.zrevrange(flow.flow_keys(k)[4], 0, 0, withscores=True)
        replies = await p.execute()
    out = {"concurrency": 0, "rate": 0, "scheduled": 0}
    scan: list[tuple[ServiceKeys, float]] = []
    for n, k in enumerate(sc.keys):
        queued, delayed, last = replies[3 * n : 3 + 3 * n]
        out["concurrency"] += int(queued)
        out["scheduled"] += int(delayed)
        if last and int(delayed):
            scan.append((k, max(float(now), float(last[0][1]))))
    if not scan:
        return out
    async with client.redis.pipeline(transaction=False) as p:
        for k, until in scan:
            p.zrevrangebyscore(k.delayed, until, "-inf", 0, RATE_SCAN)
        due = await p.execute()
    ids = [(k, text(i)) for (k, _), members in zip(scan, due, strict=True) for i in members]
    async with client.redis.pipeline(transaction=False) as p:
        for k, i in ids:
            p.hget(k.inv(i), F.WAIT)
        rate = sum(1 for w in await p.execute() if w == b"rate")
    out["rate"], out["scheduled"] = rate, out["scheduled"] - rate
    return out
