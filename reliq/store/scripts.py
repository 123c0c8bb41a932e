"""Typed wrappers around the Lua scripts in ``reliq/store/lua/`` (one method per script file).

Each script is loaded from fixed source and called with EVALSHA (redis-py reloads it after
NOSCRIPT). Every key a script touches is passed in KEYS (so is the ``done`` channel the settling
scripts publish on); all of them share one hash tag. The
source loaded is the script with the ``lua/lib/`` libraries it names prepended (sources.py).
Every reply is decoded once, into the types of ``reliq.store.replies``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from reliq.codec import text
from reliq.store import batch
from reliq.store.batch import Items
from reliq.store.commands import RedisClient
from reliq.store.flow import flow_keys as _fk
from reliq.store.keys import GROUP, ServiceKeys
from reliq.store.layout import Layout
from reliq.store.replies import (
    Cancelled,
    Claim,
    Completed,
    Discarded,
    Redriven,
    Registered,
    Registration,
    Released,
    Renewed,
    Requeued,
    Retried,
    Settled,
    Suspended,
    Taken,
    Woken,
    as_cancelled,
    as_completed,
    as_discarded,
    as_redriven,
    as_released,
    as_renewed,
    as_requeued,
    as_retried,
    as_settled,
    as_suspended,
    as_woken,
    claims,
    pairs,
    taken,
)
from reliq.store.sources import source as _source

__all__ = ["Claim", "Registered", "Registration", "Scripts", "pairs"]

Arg = str | bytes | int | float


class Scripts:
    """All of reliq's scripts, registered on one client."""

    # fmt: off
    NAMES = (
        "register", "claim", "take", "complete", "retry", "park", "promote", "renew", "release", "step",
        "link_child", "cancel", "redrive", "record_lost", "discard", "release_entry", "retry_now",
        "reap", "set_layout", "suspend", "wake", "note", "set_limits", "set_intake", "read",
    )
    # fmt: on

    def __init__(self, redis: RedisClient) -> None:
        self._s: dict[str, AsyncScript] = {n: redis.register_script(_source(n)) for n in self.NAMES}

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        return await self._s[name](keys=list(keys), args=list(args))

    async def register(self, k: ServiceKeys, item: Registration) -> Registered:
        """One registration (tests, tools); the producer batches with ``register_many``."""
        return (await self.register_many(k, [item]))[0]

    async def register_many(
        self,
        k: ServiceKeys,
        items: Items,
        *,
        pipe: Pipeline | None = None,
        max_queued: int | None = None,
    ) -> list[Registered]:
        """Place a batch of one service's invocations (``Registration`` items, or a ``Batch`` of
        one handler: ``reliq.store.batch``) in one script call. With ``pipe``, the call is queued
        in that pipeline (so a WAIT can follow on the same connection) and [] returned: decode
        that pipeline's reply with ``pairs``. ``max_queued``: the partition's limit when the
        service set none (lib/backpressure.lua)."""
        s, p = k.streams, k.inv_prefix
        keys = [s[0], k.delayed, s[1], s[2], k.flow, *[p + i for i in batch.ids(items)], *_fk(k)]
        args: list[Arg] = [k.service, "" if max_queued is None else max_queued, batch.packed(items)]
        if pipe is not None:
            await self._s["register"](keys=keys, args=args, client=pipe)
            return []
        return pairs(await self._run("register", keys, args))

    async def claim(
        self, k: ServiceKeys, consumer: str, lease_ms: int, entries: Sequence[tuple[str, str]]
    ) -> list[Claim]:
        """``entries``: (entry id, invocation id), delivered to ``consumer``. One ``Claim`` per
        entry, in order."""
        return claims(entries, await self._run("claim", *_claiming(k, consumer, lease_ms, entries)))

    async def take(
        self, k: ServiceKeys, consumer: str, lease_ms: int, entries: Sequence[tuple[str, str]]
    ) -> Taken:
        """Deliver and claim ``entries`` a plain XREAD of ``k.stream`` found (take.lua): a
        ``Claim`` each (``skip``: another consumer took it), the stream's next mark, and the
        entries delivered that were not named (claim those)."""
        return taken(entries, await self._run("take", *_claiming(k, consumer, lease_ms, entries)))

    async def complete(
        self,
        k: ServiceKeys,
        retention_ms: int,
        items: Sequence[tuple[str, str, int, str, bytes] | tuple[str, str, int, str, bytes, bool]],
    ) -> list[Completed]:
        """``items``: (invocation id, entry id, epoch, final state, result[, journal]). Without
        ``journal`` (an attempt that touched no journal key) only the record key is passed; the
        script answers 'keys' when the record says a journal key exists: call again with it."""
        keys = [k.stream, k.minutes, k.done_channel, k.outbox]
        args: list[Arg] = [GROUP, retention_ms]
        for item in items:
            inv, eid, epoch, state, result = item[:5]
            if len(item) == 5 or item[5]:
                keys.extend(k.per_invocation(inv))
                args.extend((eid, epoch, state, result, "j"))
            else:
                keys.append(k.inv(inv))
                args.extend((eid, epoch, state, result, ""))
        keys += _fk(k)
        return [as_completed(x) for x in await self._run("complete", keys, args)]

    async def retry(
        self, k: ServiceKeys, inv: str, eid: str, epoch: int, delay: int, error: bytes, keep: int, mode: int
    ) -> Retried:
        """``delay``, ``keep`` (retention): ms; ``mode`` (retry.lua ARGV[8]): 1 a failed compensation
        runs again, 2 a cancel interrupted the handler (it compensates if it has a journal)."""
        keys = [*k.per_invocation(inv), k.stream, k.delayed, k.minutes, k.done_channel, k.outbox, *_fk(k)]
        args: list[str | bytes | int] = [GROUP, eid, epoch, delay, error, inv, keep, mode]
        reply = await self._run("retry", keys, args)
        return as_retried(reply)

    async def park(
        self, k: ServiceKeys, inv: str, eid: str, epoch: int, reason: str, error: bytes, retention_ms: int
    ) -> Settled:
        keys = [*k.per_invocation(inv), k.stream, k.parked, k.minutes, k.done_channel, k.outbox, *_fk(k)]
        reply = await self._run("park", keys, [GROUP, eid, epoch, reason, error, inv, retention_ms])
        return as_settled(reply)

    async def promote(self, k: ServiceKeys, ids: Sequence[str]) -> int:
        keys = [k.delayed, k.streams[0], k.suspended, k.minutes, *k.streams[1:]]
        for i in ids:
            keys += (k.inv(i), k.inbox(i))
        keys += _fk(k)
        return int(await self._run("promote", keys, ids))

    async def renew(
        self, k: ServiceKeys, consumer: str, lease_ms: int, items: Sequence[tuple[str, str, int]]
    ) -> list[Renewed]:
        """``items``: (invocation id, entry id, epoch). One status per item, in order."""
        args: list[Arg] = [GROUP, consumer, lease_ms]
        for _, eid, epoch in items:
            args.extend((eid, epoch))
        r = await self._run("renew", [k.stream, *(k.inv(i) for i, _, _ in items)], args)
        return [as_renewed(x) for x in r]

    async def release(
        self, k: ServiceKeys, consumer: str, idle_ms: int, items: Sequence[tuple[str, str, int]]
    ) -> int:
        args: list[Arg] = [GROUP, consumer, idle_ms]
        for _, eid, epoch in items:
            args.extend((eid, epoch))
        return int(await self._run("release", [k.stream, *(k.inv(i) for i, _, _ in items)], args))

    async def step(self, k: ServiceKeys, inv: str, epoch: int, name: str, value: bytes) -> bool:
        return bool(await self._run("step", [k.inv(inv), k.steps(inv)], [epoch, name, value]))

    async def link_child(
        self, k: ServiceKeys, inv: str, epoch: int, child: str, order: int, handler: str = "", fp: str = ""
    ) -> str:
        """'linked' | 'fenced' | 'cancelled' | what the journal holds at ``order`` when it is
        another call (a child id, or 'handler <name>'). ``fp``: the child's fingerprint."""
        keys = [k.inv(inv), k.children(inv), k.inbox(inv)]
        return text(await self._run("link_child", keys, [epoch, child, order, handler, fp]))

    async def cancel(
        self, k: ServiceKeys, inv: str, retention_ms: int, who: str = "", *, tombstone: bool = False
    ) -> Cancelled:
        """``tombstone``: a parent's cancel reached this child; an unknown id gets a cancelled
        record, so that a registration arriving later never runs."""
        keys = [*k.per_invocation(inv), k.delayed, k.audit, k.done_channel, k.outbox, k.streams[0]]
        keys += (k.suspended, k.minutes, *k.streams[1:], *_fk(k))
        args: list[Arg] = [inv, retention_ms, who, "1" if tombstone else "", k.service]
        return as_cancelled(await self._run("cancel", keys, args))

    async def suspend(
        self, k: ServiceKeys, inv: str, eid: str, epoch: int, waits: bytes, detail: str
    ) -> Suspended:
        keys = [k.inv(inv), k.inbox(inv), k.stream, k.delayed, k.suspended, k.minutes, *k.streams, *_fk(k)]
        return as_suspended(await self._run("suspend", keys, [GROUP, eid, epoch, waits, inv, detail]))

    async def wake(self, k: ServiceKeys, inv: str, field: str, value: bytes, who: str = "") -> Woken:
        """Store ``value`` in the inbox field (first value stands); resume when that ends the wait."""
        s = k.streams
        keys = [k.inv(inv), k.inbox(inv), s[0], k.delayed, k.suspended, k.done_channel, k.minutes, s[1], s[2]]
        keys += _fk(k)
        return as_woken(await self._run("wake", keys, [field, value, inv, who]))

    async def note(
        self, k: ServiceKeys, inv: str, epoch: int, field: str, value: str | int
    ) -> tuple[str, int]:
        """Journal an inbox value of the running attempt: (the field's value, server now ms);
        ('', 0) when fenced."""
        v, now = await self._run("note", [k.inv(inv), k.inbox(inv)], [epoch, field, value])
        return text(v), int(now)

    async def redrive(self, k: ServiceKeys, inv: str, who: str = "") -> Redriven:
        keys = [*k.per_invocation(inv), k.streams[0], k.parked, k.archive, k.audit, *k.streams[1:], *_fk(k)]
        return as_redriven(await self._run("redrive", keys, [inv, who]))

    async def discard(self, k: ServiceKeys, inv: str, who: str, retention_ms: int) -> Discarded:
        keys = [k.inv(inv), k.parked, k.archive, k.audit]
        return as_discarded(await self._run("discard", keys, [inv, who, retention_ms]))

    async def release_entry(
        self,
        k: ServiceKeys,
        inv: str,
        idle_ms: int,
        who: str,
        holder: tuple[str, bool] = ("", False),
        force: bool = False,
    ) -> Released:
        """``holder``: the record's owner the caller checked and whether its heartbeat exists
        (read outside the script: the heartbeat key is in slot ``{S}``, not the partition's)."""
        keys = [k.streams[0], k.inv(inv), k.audit, *k.streams[1:]]
        args: list[Arg] = [GROUP, idle_ms, who, inv, holder[0], int(holder[1]), int(force)]
        return as_released(await self._run("release_entry", keys, args))

    async def retry_now(self, k: ServiceKeys, inv: str, who: str) -> Requeued:
        keys = [k.inv(inv), k.delayed, k.streams[0], k.audit, *k.streams[1:]]
        return as_requeued(await self._run("retry_now", keys, [inv, who]))

    async def set_limits(self, k: ServiceKeys, handler: str, override: bytes, who: str) -> int:
        """Write (``b""``: delete) a handler's limits override in one partition and admit the
        waiters it lets in; returns how many were admitted."""
        keys = [k.audit, k.stream, *_fk(k)]
        return int(await self._run("set_limits", keys, [handler, override, who]))

    async def set_intake(self, k: ServiceKeys, value: str, given: str, who: str) -> None:
        """Write the ``max_queued`` override field of one partition (``value``: ``q=<n>`` or ''), or
        remove it (``value`` ``code``); audited as ``given`` under ``who``."""
        await self._run("set_intake", [k.flow, k.audit], [value, given, who])

    async def read(
        self, k: ServiceKeys, consumer: str, quotas: Sequence[int]
    ) -> tuple[list[str], list[str], list[str]]:
        """Deliver up to ``sum(quotas)`` new entries of the partition's three streams to
        ``consumer`` by the weighted read rule (``reliq.store.priority``); ``quotas`` and the
        answer in ``LEVELS`` order, each answer a flat list of entry id, invocation id pairs."""
        normal, high, low = await self._run("read", k.streams, [GROUP, consumer, *quotas])
        return [text(x) for x in normal], [text(x) for x in high], [text(x) for x in low]

    async def record_lost(self, k: ServiceKeys, consumer: str, entry_ids: Sequence[str]) -> int:
        return int(await self._run("record_lost", [k.lost], [consumer, *entry_ids]))

    async def reap(self, k: ServiceKeys, min_idle_ms: int, limit: int = 100) -> list[str]:
        """Delete consumers of the partition's group with nothing pending, idle >= ``min_idle_ms``."""
        return [text(x) for x in await self._run("reap", [k.stream], [GROUP, min_idle_ms, limit])]

    async def set_layout(self, k: ServiceKeys, partitions: int) -> Layout:
        """Set the partition count atomically; returns the layout after the call."""
        p, high, prev, changed = (int(x) for x in await self._run("set_layout", [k.layout], [partitions]))
        return Layout(p, high, prev, changed)


def _claiming(
    k: ServiceKeys, consumer: str, lease_ms: int, entries: Sequence[tuple[str, str]]
) -> tuple[list[str], list[Arg]]:
    """The KEYS and ARGV of claim.lua and take.lua: a fresh claim token per call."""
    keys = [k.stream, *(k.inv(i) for _, i in entries), *_fk(k)]
    return keys, [GROUP, consumer, lease_ms, secrets.token_hex(8), *(e for e, _ in entries)]
