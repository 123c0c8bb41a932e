"""Operator actions on stuck and parked work, each one fixed Lua script (all keys in KEYS) and
idempotent, each appending to the audit log ``reliq:{S}:audit`` of the invocation's partition
in the same script call (a capped stream: who, action, target, result; the entry id is the
time). An action names the invocation, whose id says its partition (``keys_of``): ``release``
finds the pending entry through the record's ``entry`` field in that partition's stream, so an
entry id never has to be matched to a stream. ``audit_log`` merges the partitions' logs.

==============  ===================  =====================================================
action          script               effect (statuses: changed first)
==============  ===================  =====================================================
``redrive``     ``redrive.lua``      failed (parked or archived) -> new attempt series
                                     (``redriven`` | ``not_failed``)
``discard``     ``discard.lua``      parked -> archive, redrivable until the record expires
                                     (``discarded`` | ``not_parked``)
``release``     ``release_entry``    pending entry marked idle for ages: the next reclaim
                                     scan takes it (``released`` | ``already_released`` |
                                     ``not_pending`` | ``owner_alive``: its holder beats and
                                     its lease runs, refused unless ``force``; not audited)
``retry-now``   ``retry_now.lua``    retrying -> queued now (``queued`` | ``not_retrying``)
``cancel``      ``cancel.lua``       as ``Client.cancel`` (``cancelled`` | ``cancelling`` |
                                     ``terminal``)
==============  ===================  =====================================================

>>> await act(client, "redrive", "orders.3v9k...", who="ops")
ActionResult(id='orders.3v9k...', action='redrive', status='redriven', changed=True, state='pending')
"""

from __future__ import annotations

from reliq.admin import overview as inspect
from reliq.admin import parked as parked_list
from reliq.admin.documents import ActionResult, AuditEntry, AuditPage, BulkResult
from reliq.admin.paging import MAX_LIMIT, clamp, entry_key, layouts, next_cursor, parse_cursor, scope
from reliq.client import Client
from reliq.codec import text
from reliq.errors import UnknownInvocation
from reliq.store.keys import RELEASE_IDLE_MS, ServiceKeys, check_name
from reliq.store.record import Field
from reliq.store.registry import read_retention
from reliq.store.replies import ActionStatus

ACTIONS = ("redrive", "discard", "release", "retry-now", "cancel")
CHANGED = frozenset({"redriven", "discarded", "released", "queued", "cancelled", "cancelling"})
_FIELDS = ("who", "action", "target", "result")


def _source(cursor: str | None) -> tuple[str, int] | None:
    """The tie-break of an audit cursor ``<id>@<service>:<partition>`` (see ``reliq.admin.paging``)."""
    parsed = parse_cursor(cursor)
    if parsed is None or parsed[1] is None:
        return None
    name, _, part = parsed[1].partition(":")
    if not part.isdigit():
        raise ValueError(f"malformed cursor {cursor!r}: use next_cursor of the previous page")
    return check_name("service", name), int(part)


async def audit_log(
    client: Client,
    *,
    limit: int = 100,
    cursor: str | None = None,
    service: str | None = None,
    partition: int | None = None,
) -> AuditPage:
    """Newest first, merged over every registered service (or one) and every partition (or
    ``partition`` only); same id in two streams: by service, then partition. ``cursor`` is
    ``next_cursor`` of the previous page. Reads at most ``limit + 1`` entries per partition."""
    limit = clamp(limit)
    parsed, tie = parse_cursor(cursor), _source(cursor)
    names = [service] if service else await inspect.services(client)
    if service and partition is not None:
        await scope(client, service, partition)  # ValueError for a partition the service lacks
    sources = [
        client.keys(name, p)
        for name, lay in zip(names, await layouts(client, names), strict=True)
        for p in range(lay.high)
        if partition is None or p == partition
    ]
    async with client.redis.pipeline(transaction=False) as p:
        for k in sources:
            top = "+"
            if parsed:
                top = parsed[0] if tie is not None and (k.service, k.partition) > tie else f"({parsed[0]}"
            p.xrevrange(k.audit, top, "-", count=limit + 1)
        pages = await p.execute() if sources else []
    items = []
    for k, rows in zip(sources, pages, strict=True):
        for eid, f in rows:
            entry = text(eid)
            fields = {n: text(f.get(n.encode(), b"")) for n in _FIELDS}
            at = int(entry.split("-", 1)[0])
            items.append(AuditEntry(id=entry, service=k.service, at=at, partition=k.partition, **fields))
    items.sort(key=lambda e: (e.service, e.partition))
    items.sort(key=lambda e: entry_key(e.id), reverse=True)
    page = items[:limit]
    following = items[limit].id if len(items) > limit else None
    last = page[-1] if following else None
    return AuditPage(
        items=page,
        next_cursor=next_cursor(last.id, f"{last.service}:{last.partition}", following) if last else None,
        now=await client.server_time_ms(),
    )


async def _holder(client: Client, k: ServiceKeys, inv: str) -> tuple[str, bool]:
    """The record's lease holder and whether its heartbeat exists, read before ``release_entry``
    runs (the heartbeat is in slot ``{S}``; the script refuses a holder that changed since)."""
    owner = text(await client.redis.hget(k.inv(inv), Field.OWNER) or b"")
    return owner, bool(owner) and bool(await client.redis.exists(k.consumer(owner)))


async def _retention(client: Client, k: ServiceKeys) -> int:
    """The retention the service's workers published (``reliq:{S}:settings``), else the client's."""
    return await read_retention(client.redis, k) or client.retention_ms


async def _run(
    client: Client, k: ServiceKeys, action: str, inv: str, who: str, force: bool = False
) -> ActionStatus:
    s = client.scripts
    if action == "redrive":
        return await s.redrive(k, inv, who)
    if action == "discard":
        return await s.discard(k, inv, who, await _retention(client, k))
    if action == "release":
        holder = ("", False) if force else await _holder(client, k, inv)
        return await s.release_entry(k, inv, RELEASE_IDLE_MS, who, holder, force)
    if action == "retry-now":
        return await s.retry_now(k, inv, who)
    if action == "cancel":
        outcome = await s.cancel(k, inv, await _retention(client, k), who)
        if outcome == "cancelling":
            await client.redis.publish(k.cancel_channel, inv)
        return outcome
    raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")


async def act(
    client: Client, action: str, invocation_id: str, *, who: str, force: bool = False
) -> ActionResult:
    """Run one action on one invocation (audited under ``who`` by its script). Raises
    ``UnknownInvocation`` for an unknown or expired id, ``InvalidName`` for a malformed one.
    ``force`` (release only): release an entry whose holder is alive with a valid lease."""
    k = client.keys_of(invocation_id)
    status = await _run(client, k, action, invocation_id, who, force)
    if status == "unknown":
        raise UnknownInvocation(invocation_id)
    state = await client.redis.hget(k.inv(invocation_id), Field.STATE)
    return ActionResult(
        id=invocation_id,
        action=action,
        status=status,
        changed=status in CHANGED,
        state=text(state) if state else None,
    )


async def redrive_parked(
    client: Client,
    service: str,
    *,
    who: str,
    handler: str | None = None,
    limit: int = 100,
    archived: bool = False,
    partition: int | None = None,
    cursor: str | None = None,
) -> BulkResult:
    """Redrive up to ``limit`` (1..500) of a service's parked (or archived) invocations, oldest
    first over every partition (or only ``partition``), optionally only one handler's (an
    expired member counts as a match: its redrive removes it). Walks the sets from ``cursor``
    (``next_cursor`` of the previous call), past members of other handlers, until ``limit`` are
    redriven, the sets end, or ``SCAN_BUDGET`` members were examined. ``next_cursor``: where to
    continue (``None``: the walk reached the end); ``remaining``: the size of the sets, or with
    ``handler`` the members from the cursor's time on (at most that many may be the handler's;
    0 once the walk reached the end)."""
    limit = clamp(limit)
    redriven: list[str] = []
    examined, following = 0, cursor
    budget = parked_list.SCAN_BUDGET
    while len(redriven) < limit and examined < budget:
        n = min(MAX_LIMIT, budget - examined)
        rows, more = await parked_list.ascending(client, service, n, archived, partition, following)
        ids = [text(m) for m, _, _ in rows]
        handlers: list[bytes | None] = [None] * len(ids)
        if handler and ids:
            async with client.redis.pipeline(transaction=False) as p:
                for i in ids:
                    p.hget(client.keys_of(i).inv(i), Field.HANDLER)
                handlers = await p.execute()
        for row, i, h in zip(rows, ids, handlers, strict=True):
            examined += 1
            following = parked_list.cursor_of(row)
            match = handler is None or h is None or text(h) == handler  # None: expired, removed
            if match and await client.scripts.redrive(client.keys_of(i), i, who) == "redriven":
                redriven.append(i)
            if len(redriven) >= limit:
                more = more or row is not rows[-1]
                break
        if not more:
            following = None
            break
    if handler:
        remaining = (
            0
            if following is None
            else await parked_list.count_from(client, service, archived, partition, following)
        )
    else:
        remaining = await parked_list.count(client, service, archived, partition)
    return BulkResult(
        service=service, redriven=redriven, examined=examined, remaining=remaining, next_cursor=following
    )
