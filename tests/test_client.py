"""The Client's producer path (prepare -> register_many), its result path (outcome, wait, result),
and what it reads from the registry: handlers, services, heartbeats, backlog and counts."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from reliq import Client, Context, IdempotencyConflict, InvocationFailed, Service, Terminal, UnknownInvocation
from reliq.codec import fingerprint
from reliq.errors import NotConfirmed
from reliq.store.keys import SERVICES, InvalidName, keyed_id, partition_of
from reliq.store.registry import HandlerEntry, Heartbeat, decode_entry, decode_heartbeat, encode

from .conftest import Names, client, running, wait_until


async def test_prepare_derives_the_registration_and_writes_nothing(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
        reg = await c.prepare(svc, "h", b'{"a":1}', key="k1", delay=1.5, at=at, parent="p", trace="t")
        assert reg.id == keyed_id(svc, "k1") and reg.fp == fingerprint("h", b'{"a":1}')
        assert (reg.handler, reg.payload, reg.parent, reg.key, reg.trace) == ("h", b'{"a":1}', "p", "k1", "t")
        assert reg.delay_ms == 1500 and reg.due_ms == int(at.timestamp() * 1000)
        assert await c.get(reg.id) is None  # prepared, not placed
        fresh = await c.prepare(svc, "h", b"null", delay=timedelta(seconds=2))
        assert fresh.id != reg.id and fresh.key == "" and fresh.delay_ms == 2000 and fresh.due_ms is None
        assert (await c.prepare(svc, "h", b"null", key="k1")).id == reg.id  # same key, same id
        with pytest.raises(ValueError, match="does not belong"):
            await c.prepare(svc, "h", b"null", invocation_id=fresh.id.replace(svc, names(), 1))
        with pytest.raises(ValueError, match="non-negative"):
            await c.prepare(svc, "h", b"null", delay=-1)


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_register_many_places_one_partition_s_batch_idempotently(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        await c.set_partitions(svc, 4)
        regs = [await c.prepare(svc, "h", b"%d" % i, key=f"k{i}") for i in range(40)]
        where = c.where(regs[0].id)
        assert where == (svc, partition_of(regs[0].id))
        batch = [r for r in regs if c.where(r.id) == where]
        assert 1 < len(batch) < len(regs)  # 40 keys spread over 4 partitions
        assert await c.register_many(where, batch) == [("accepted", "pending")] * len(batch)
        assert await c.register_many(where, batch) == [("previously_accepted", "pending")] * len(batch)
        other = await c.prepare(svc, "h", b"999", key=batch[0].key)
        assert await c.register_many(where, [other]) == [("conflict", "pending")]
        assert await c.backlog(svc) == len(batch)
        for r in batch:
            inv = await c.get(r.id)
            assert inv is not None and inv.payload == int(r.payload) and inv.idempotency_key == r.key
            await c.cancel(r.id)


async def test_register_many_without_the_replicas_asked_for_is_not_confirmed(url: str, names: Names) -> None:
    """The test server has no replicas: WAIT 1 answers 0, the write exists, a re-send converges."""
    svc = names()
    async with client(url) as c:
        reg = await c.prepare(svc, "h", b"1", key="k")
        with pytest.raises(NotConfirmed, match="only 0 of 1 replicas"):
            await c.register_many(c.where(reg.id), [reg], replicas=1, wait_ms=50)
        assert await c.register_many(c.where(reg.id), [reg]) == [("previously_accepted", "pending")]
        await c.cancel(reg.id)


async def test_send_json_checks_its_input_and_reports_a_conflict(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        with pytest.raises(InvalidName):
            await c.send_json(svc, "Bad Name", b"1")
        with pytest.raises(ValueError, match="idempotency key"):
            await c.send_json(svc, "h", b"1", key="")
        first = await c.send_json(svc, "h", b"1", key="k", delay=60)
        assert (first.status, first.state) == ("accepted", "scheduled")
        with pytest.raises(IdempotencyConflict):
            await c.send_json(svc, "h", b"2", key="k")
        await c.cancel(first.id)


async def test_outcome_and_wait_follow_an_invocation_to_its_end(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler(max_attempts=1)
    async def double(ctx: Context, n: int) -> int:
        if n < 0:
            raise Terminal("negative", status=422)
        return 2 * n

    async with client(url) as c:
        assert await c.outcome(f"{svc.name}.{'a' * 26}") is None
        assert await c.wait(f"{svc.name}.{'a' * 26}", 1) is None
        with pytest.raises(InvalidName):
            await c.outcome("not an id")
        ok, bad = await c.send(svc.name, "double", 21), await c.send(svc.name, "double", -1)
        queued = await c.outcome(ok.id)
        assert queued is not None and queued.state == "pending" and not queued.finished
        t0 = time.monotonic()
        late = await c.wait(ok.id, 0.2)  # nothing runs it yet: the unfinished outcome, on time
        assert late is not None and late.state == "pending" and time.monotonic() - t0 >= 0.2
        with pytest.raises(TimeoutError):
            await c.result(ok.id, 0.05)
        async with running(svc, url):
            done = await c.wait(ok.id, 10, recheck=0.05)
            assert done is not None and done.finished and (done.state, done.result) == ("succeeded", b"42")
            failed = await c.wait(bad.id, 10)
            assert failed is not None and failed.state == "failed"
            assert msgspec.json.decode(failed.error)["status"] == 422
            assert await c.result(ok.id, 1) == 42
            with pytest.raises(InvocationFailed, match="negative"):
                await c.result(bad.id, 1)
        with pytest.raises(UnknownInvocation):
            await c.result(f"{svc.name}.{'b' * 26}", 1)


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_handlers_services_and_heartbeats_come_from_what_workers_publish(
    url: str, names: Names
) -> None:
    svc = Service(names())

    @svc.handler(max_attempts=4, timeout=30)
    async def place(ctx: Context, amount: int) -> None: ...

    @svc.handler
    def ping(ctx: Context) -> str:
        return "pong"

    async with client(url) as c:
        assert await c.handlers(svc.name) == {}
        async with running(svc, url) as w:
            assert svc.name in await c.services()
            found = await c.handlers(svc.name)
            assert found == {h.name: h.describe() for h in svc.handlers.values()}
            entry = found["place"]
            assert entry.input_schema == {"type": "integer"} and entry.takes_input and not entry.sync
            assert (entry.max_attempts, entry.timeout) == (4, 30)
            assert found["ping"].sync and not found["ping"].takes_input and found["ping"].input_schema == {}
            beats = await wait_until(
                lambda: _alive(c, svc.name, [w.consumer, "gone"]), what="the worker's heartbeat"
            )
            hb = beats[w.consumer]
            assert hb.consumer == w.consumer and hb.pid
            assert hb.concurrency == w.rt.limiter.capacity == 100  # adaptive, idle: where it starts
            assert beats["gone"] is None
            assert await c.heartbeats(svc.name, []) == {}
        assert (await c.heartbeats(svc.name, [w.consumer]))[w.consumer] is None  # cleared at stop
        await c.redis.srem(SERVICES, svc.name)


async def _alive(c: Client, service: str, consumers: list[str]) -> dict[str, Heartbeat | None] | None:
    beats = await c.heartbeats(service, consumers)
    return beats if beats[consumers[0]] is not None else None


def test_registry_documents_keep_the_previous_release_s_json() -> None:
    """Workers and gateways of two releases share one Redis during an upgrade: the Structs encode
    to the field names (and order) the dicts had, and decode what the dicts wrote."""
    old_entry = {
        "service": "orders",
        "handler": "place",
        "input_schema": {"type": "integer"},
        "sync": False,
        "takes_input": True,
        "max_attempts": 4,
        "timeout": None,
        "max_deliveries": 5,
    }
    entry = decode_entry(msgspec.json.encode(old_entry))
    # the old fields keep their names, order and values; fields added since come after them
    assert encode(entry).startswith(msgspec.json.encode(old_entry)[:-1] + b",")
    assert msgspec.json.decode(encode(entry)) == {**old_entry, "schema_version": ""}
    old_beat = {
        "consumer": "w1",
        "host": "h",
        "pid": 7,
        "started": 1,
        "inflight": 2,
        "concurrency": 10,
        "processed": 3,
        "at": 4,
    }
    beat = decode_heartbeat(msgspec.json.encode(old_beat))
    assert encode(beat).startswith(msgspec.json.encode(old_beat)[:-1] + b",")
    assert msgspec.json.decode(encode(beat)) == {**old_beat, "schemas": {}}
    # a newer writer's extra fields are ignored; a missing field is unknown, not an error
    assert decode_entry(b'{"handler":"x","new":1}') == HandlerEntry(handler="x")
    assert decode_heartbeat(b'{"inflight":1}') == Heartbeat(inflight=1)


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_backlog_and_counts_add_up_every_partition(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler(max_attempts=1)
    async def fail(ctx: Context) -> None:
        raise Terminal("no")

    async with client(url) as c:
        await c.set_partitions(svc.name, 3)
        ids = [(await c.send(svc.name, "fail")).id for _ in range(12)]
        later = await c.send(svc.name, "fail", delay=3600)
        assert len({partition_of(i) for i in ids}) > 1
        assert await c.backlog(svc.name) == 12
        counts = await c.counts(svc.name)
        assert (counts.backlog, counts.pending, counts.parked, counts.delayed) == (12, 0, 0, 1)
        async with running(svc, url):
            await wait_until(lambda: _parked(c, svc.name, 12), what="every invocation parked")
        counts = await c.counts(svc.name)
        assert (counts.backlog, counts.pending, counts.parked, counts.delayed) == (0, 0, 12, 1)
        assert await c.backlog(svc.name) == 0
        await c.cancel(later.id)


async def _parked(c: Client, service: str, n: int) -> bool:
    counts = await c.counts(service)
    return counts.parked == n and counts.backlog == 0


async def test_concurrent_sends_read_a_stale_layout_once(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load every producer finds the cached layout stale at the same moment: one read
    serves them all (each used to read it, on a connection of its own)."""
    import reliq.client

    reads = []
    read = reliq.client.read_layout

    async def counted(*args: Any) -> Any:
        reads.append(1)
        return await read(*args)

    monkeypatch.setattr(reliq.client, "read_layout", counted)
    svc = names()
    async with Client(url) as c:
        ids = await asyncio.gather(*(c.id_for(svc, None) for _ in range(50)))
        assert len(reads) == 1 and len(set(ids)) == 50
        await c.layout(svc, fresh=True)  # fresh is always a read of its own
        assert len(reads) == 2


async def test_arguments_of_the_wrong_type_are_named(url: str, names: Names) -> None:
    with pytest.raises(TypeError, match="redis_url must be a str"):
        Client(5)  # type: ignore[arg-type]
    async with client(url) as c:
        with pytest.raises(TypeError, match="at must be an aware datetime, not int"):
            await c.send(names(), "job", at=1)  # type: ignore[arg-type]
