"""Operator actions on stuck and parked work, each one fixed Lua script (all keys in KEYS) and
idempotent, each appending to the service's audit log ``reliq:{S}:audit`` in the same script
call (a capped stream: who, action, target, result; the entry id is the time).

==============  ===================  =====================================================
action          script               effect (statuses: changed first)
==============  ===================  =====================================================
``redrive``     ``redrive.lua``      failed (parked or archived) -> new attempt series
                                     (``redriven`` | ``not_failed``)
``discard``     ``discard.lua``      parked -> archive, redrivable until the record expires
                                     (``discarded`` | ``not_parked``)
``release``     ``release_entry``    pending entry marked idle for ages: the next reclaim
                                     scan takes it (``released`` | ``already_released`` |
                                     ``not_pending``)
``retry-now``   ``retry_now.lua``    retrying -> queued now (``queued`` | ``not_retrying``)
``cancel``      ``cancel.lua``       as ``Client.cancel`` (``cancelled`` | ``cancelling`` |
                                     ``terminal``)
==============  ===================  =====================================================

>>> await act(client, "redrive", "orders.3v9k...", who="ops")
ActionResult(id='orders.3v9k...', action='redrive', status='redriven', changed=True, state='pending')
"""

from __future__ import annotations

from . import inspect
from .client import Client
from .errors import UnknownInvocation
from .inspect import clamp
from .keys import ServiceKeys
from .views import ActionResult, AuditEntry, AuditPage, BulkResult

ACTIONS = ("redrive", "discard", "release", "retry-now", "cancel")
CHANGED = frozenset({"redriven", "discarded", "released", "queued", "cancelled", "cancelling"})
RELEASE_IDLE_MS = 2**40  # "idle for ages": older than any visibility timeout


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


async def audit_log(
    client: Client, *, limit: int = 100, cursor: str | None = None, service: str | None = None
) -> AuditPage:
    """Newest first, merged over every registered service (or one); ``cursor`` is the last id
    of the previous page (exclusive). Reads at most ``limit`` entries per service."""
    limit = clamp(limit)
    if cursor is not None and not _is_entry_id(cursor):
        raise ValueError(f"malformed cursor {cursor!r}: use next_cursor of the previous page")
    names = [service] if service else await inspect.services(client)
    async with client.redis.pipeline(transaction=False) as p:
        for name in names:
            p.xrevrange(client.keys(name).audit, f"({cursor}" if cursor else "+", "-", count=limit)
        pages = await p.execute()
    items = []
    for name, rows in zip(names, pages, strict=True):
        for eid, f in rows:
            entry = _s(eid)
            fields = {n: _s(f.get(n.encode(), b"")) for n in ("who", "action", "target", "result")}
            items.append(AuditEntry(id=entry, service=name, at=int(entry.split("-", 1)[0]), **fields))
    items.sort(key=lambda e: tuple(map(int, e.id.split("-"))), reverse=True)
    items = items[:limit]
    return AuditPage(items=items, next_cursor=items[-1].id if len(items) == limit else None)


def _is_entry_id(s: str) -> bool:
    a, sep, b = s.partition("-")
    return bool(sep) and a.isdigit() and b.isdigit() and len(s) <= 41


async def _run(client: Client, k: ServiceKeys, action: str, inv: str, who: str) -> str:
    s = client.scripts
    if action == "redrive":
        return await s.redrive(k, inv, who)
    if action == "discard":
        return await s.discard(k, inv, who, client.retention_ms)
    if action == "release":
        return await s.release_entry(k, inv, RELEASE_IDLE_MS, who)
    if action == "retry-now":
        return await s.retry_now(k, inv, who)
    if action == "cancel":
        outcome = await s.cancel(k, inv, client.retention_ms, who)
        if outcome == "cancelling":
            await client.redis.publish(k.cancel_channel, inv)
        return outcome
    raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")


async def act(client: Client, action: str, invocation_id: str, *, who: str) -> ActionResult:
    """Run one action on one invocation (audited under ``who`` by its script). Raises
    ``UnknownInvocation`` for an unknown or expired id, ``InvalidName`` for a malformed one."""
    k = client.keys_of(invocation_id)
    status = await _run(client, k, action, invocation_id, who)
    if status == "unknown":
        raise UnknownInvocation(invocation_id)
    state = await client.redis.hget(k.inv(invocation_id), "state")
    return ActionResult(
        id=invocation_id,
        action=action,
        status=status,
        changed=status in CHANGED,
        state=_s(state) if state else None,
    )


async def redrive_parked(
    client: Client,
    service: str,
    *,
    who: str,
    handler: str | None = None,
    limit: int = 100,
    archived: bool = False,
) -> BulkResult:
    """Redrive up to ``limit`` (1..500) of a service's parked (or archived) invocations, oldest
    first, optionally only one handler's; examines at most 5 x ``limit`` members per call."""
    k, limit = client.keys(service), clamp(limit)
    key = k.archive if archived else k.parked
    ids = [_s(m) for m in await client.redis.zrange(key, 0, 5 * limit - 1)]
    examined = len(ids)
    if handler:
        async with client.redis.pipeline(transaction=False) as p:
            for i in ids:
                p.hget(k.inv(i), "handler")
            handlers = await p.execute()
        ids = [i for i, h in zip(ids, handlers, strict=True) if h is None or _s(h) == handler]
    redriven: list[str] = []
    for i in ids:
        if len(redriven) >= limit:
            break
        if await client.scripts.redrive(k, i, who) == "redriven":  # 'unknown' ids leave the set
            redriven.append(i)
    remaining = int(await client.redis.zcard(key))
    return BulkResult(service=service, redriven=redriven, examined=examined, remaining=remaining)
