"""The snapshot the checker works from: what Valkey says about every key once the system has
drained, read through ``reliq.Client`` (``get``, ``parked``) plus ``XPENDING`` and the heartbeat
keys, with the harness's own direct connection (never through the fault proxy)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from reliq import Client
from reliq.admin.timeline import parse_timeline
from reliq.store.keys import GROUP, keyed_id
from reliq.store.record import TERMINAL


class KeyState(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    id: str
    state: str | None = None
    reason: str | None = None
    journaled: str | None = None  # the nonce ctx.step journaled for "effect"
    attempt: int = 0
    deliveries: int = 0
    crashes: int = 0
    parent: str | None = None
    result: Any = None  # tree parents: the result document
    children: list[str] = []  # child ids in call order
    suspensions: int = 0
    handler: str = ""
    undo: str | None = None  # the nonce ctx.step journaled for "undo" (cancel workload)
    events: list[tuple[int, str]] = []  # cancel workload parents: the timeline (server ms, event)


class Pending(msgspec.Struct, frozen=True, kw_only=True):
    entry: str
    consumer: str
    idle_ms: int
    deliveries: int


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    keys: list[KeyState]
    parked: list[str]
    pending: list[Pending]
    live_consumers: list[str]
    lost_entries: int
    stream_len: int
    delayed: int
    children: list[KeyState] = []  # tree workload: every parent's children, key "<parent key>/<i>"
    suspended: int = 0  # ids left in reliq:{S}:suspended
    outbox: int = 0  # relay messages left in reliq:{S}:outbox


async def unsettled(client: Client, service: str, ids: list[str]) -> int:
    """How much is still moving: acked invocations not finished, plus the stream, the delayed and
    suspended sets and the relay's outbox (a tree's children live there)."""
    k = client.keys(service)
    async with client.redis.pipeline(transaction=False) as p:
        for inv in ids:
            p.hget(k.inv(inv), "state")
        p.xlen(k.stream)
        p.zcard(k.delayed)
        p.zcard(k.suspended)
        p.xlen(k.outbox)
        *states, xlen, delayed, suspended, outbox = await p.execute()
    open_ = sum(1 for s in states if s is None or s.decode() not in TERMINAL)
    return open_ + int(xlen) + int(delayed) + int(suspended) + int(outbox)


async def key_states(
    client: Client, ids: dict[str, str], concurrency: int = 32, timelines: bool = False
) -> list[KeyState]:
    """The record of each ``key -> invocation id`` (at most ``concurrency`` reads at once), with
    its timeline when ``timelines``."""
    sem = asyncio.Semaphore(concurrency)

    async def one(key: str, inv: str) -> KeyState:
        async with sem:
            doc = await client.get(inv)
            tl = await client.redis.hget(client.keys_of(inv).inv(inv), "tl") if timelines else None
        if doc is None:
            return KeyState(key=key, id=inv)
        nonce, undo = doc.steps.get("effect"), doc.steps.get("undo")
        return KeyState(
            key=key,
            id=inv,
            state=doc.state,
            reason=doc.reason,
            journaled=nonce if isinstance(nonce, str) else None,
            attempt=doc.attempt,
            deliveries=doc.deliveries,
            crashes=doc.crashes,
            parent=doc.parent_id,
            result=doc.result,
            children=doc.children,
            suspensions=doc.suspensions,
            handler=doc.handler,
            undo=undo if isinstance(undo, str) else None,
            events=[(e.at, e.event) for e in parse_timeline(tl)],
        )

    return list(await asyncio.gather(*(one(key, inv) for key, inv in ids.items())))


async def children_states(client: Client, parents: list[KeyState]) -> list[KeyState]:
    """The records of every parent's children, keyed ``<parent key>/<call position>``."""
    ids = {f"{p.key}/{i}": c for p in parents for i, c in enumerate(p.children)}
    return await key_states(client, ids)


async def take_snapshot(client: Client, service: str, keys: list[str], timelines: bool = False) -> Snapshot:
    k = client.keys(service)
    states = await key_states(client, {key: keyed_id(service, key) for key in keys}, timelines=timelines)
    raw = await client.redis.xpending_range(k.stream, GROUP, "-", "+", 1000)
    pending = [
        Pending(
            entry=p["message_id"].decode(),
            consumer=p["consumer"].decode(),
            idle_ms=int(p["time_since_delivered"]),
            deliveries=int(p["times_delivered"]),
        )
        for p in raw
    ]
    live = [
        c.decode()[len(k.consumer_prefix) :] async for c in client.redis.scan_iter(k.consumer_prefix + "*")
    ]
    return Snapshot(
        keys=states,
        parked=await client.parked(service, limit=1000),
        pending=pending,
        live_consumers=live,
        lost_entries=int(await client.redis.xlen(k.lost)),
        stream_len=int(await client.redis.xlen(k.stream)),
        delayed=int(await client.redis.zcard(k.delayed)),
        children=await children_states(client, states),
        suspended=int(await client.redis.zcard(k.suspended)),
        outbox=int(await client.redis.xlen(k.outbox)),
    )
