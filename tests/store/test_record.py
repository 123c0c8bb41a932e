"""record.py owns the record's field names: every field the scripts write is declared in
``Field`` (and its docstring table), and every declared field is written by some script."""

from __future__ import annotations

from reliq import Client
from reliq.store.flow import flow_keys
from reliq.store.keys import GROUP, ServiceKeys
from reliq.store.record import FIELDS, STATES, TERMINAL, Field, fields, found, parse
from reliq.store.replies import Registration

from ..conftest import Names, client


async def _snapshot(c: Client, k: ServiceKeys, inv: str, seen: set[str]) -> None:
    seen.update(fields(await c.redis.hgetall(k.inv(inv))))


async def _read(c: Client, k: ServiceKeys) -> str:
    [[_, [(eid, _)]]] = await c.redis.xreadgroup(GROUP, "w", {k.stream: ">"}, count=1)
    return str(eid.decode())


async def test_every_field_the_scripts_write_is_declared_and_every_declared_field_is_written(
    url: str, names: Names
) -> None:
    svc = names()
    k = ServiceKeys(svc)
    seen: set[str] = set()
    async with client(url) as c:
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        # a: register -> claim -> step -> link_child -> renew -> complete
        a = await c.send_json(svc, "h", b"1", key="ka", parent="p.abcdefghijklmnopqrstuvwxyz", trace="00-t")
        await _snapshot(c, k, a.id, seen)
        eid = await _read(c, k)
        [claimed] = await c.scripts.claim(k, "w", 30_000, [(eid, a.id)])
        assert await c.scripts.step(k, a.id, claimed.epoch, "s", b"1")
        kid = f"{svc}.abcdefghijklmnopqrstuvwxyz"
        assert await c.scripts.link_child(k, a.id, claimed.epoch, kid, 1) == "linked"
        assert await c.scripts.renew(k, "w", 30_000, [(a.id, eid, claimed.epoch)]) == ["ok"]
        await _snapshot(c, k, a.id, seen)
        assert await c.scripts.complete(k, 60_000, [(a.id, eid, claimed.epoch, "succeeded", b"2")]) == ["ok"]
        await _snapshot(c, k, a.id, seen)
        # b: register -> claim -> retry -> promote -> claim -> park -> discard -> redrive -> cancel
        b = await c.send(svc, "h", 2)
        eid = await _read(c, k)
        [claimed] = await c.scripts.claim(k, "w", 30_000, [(eid, b.id)])
        assert await c.scripts.retry(k, b.id, eid, claimed.epoch, 0, b'{"type":"E"}', 60_000, 0) == "ok"
        await _snapshot(c, k, b.id, seen)
        assert await c.scripts.promote(k, [b.id]) == 1
        eid = await _read(c, k)
        [claimed] = await c.scripts.claim(k, "w", 30_000, [(eid, b.id)])
        assert await c.scripts.park(k, b.id, eid, claimed.epoch, "terminal", b"{}", 60_000) == "ok"
        assert await c.scripts.discard(k, b.id, "ops", 60_000) == "discarded"
        await _snapshot(c, k, b.id, seen)
        assert await c.scripts.redrive(k, b.id, "ops") == "redriven"
        assert await c.scripts.cancel(k, b.id, 60_000) == "cancelled"
        await _snapshot(c, k, b.id, seen)
        # c: register -> claim -> note (inbox) -> suspend (waits, suspensions) -> wake
        d = await c.send(svc, "h", 3)
        [[_, pending]] = await c.redis.xreadgroup(GROUP, "w", {k.stream: ">"}, count=10)
        eid = next(e.decode() for e, f in pending if f[b"i"].decode() == d.id)
        [claimed] = await c.scripts.claim(k, "w", 30_000, [(eid, d.id)])
        assert (await c.scripts.note(k, d.id, claimed.epoch, "d:1", 60_000))[1] > 0
        waits = b'[["p:go", 1, 0]]'
        assert await c.scripts.suspend(k, d.id, eid, claimed.epoch, waits, "p:go") == "suspended"
        await _snapshot(c, k, d.id, seen)
        assert await c.scripts.wake(k, d.id, "p:go", b"V1") == "resumed"
        await c.redis.delete(*k.per_invocation(d.id))
        # d: a tick of a schedule with a reply target and a priority (the optional fields of register)
        e = Registration(
            id=f"{svc}.bcdefghijklmnopqrstuvwxyza",
            fp="f",
            handler="h",
            payload=b"4",
            reply="billing/on_charged",
            scheduled_ms=5,
            prio="low",
        )
        [(status, _)] = await c.scripts.register_many(k, [e])
        assert status == "accepted"
        await _snapshot(c, k, e.id, seen)
        await c.redis.delete(k.inv(e.id), *k.streams)
        # e: a handler with flow limits (key, permit, rate): the second start waits for the rate
        await c.redis.hset(k.prefix + "flow", "f", b'{"key":"a","limit":1,"rate":1,"per":60000}')
        for n in (1, 2):
            f = await c.send(svc, "f", {"a": "x", "n": n})
            await _snapshot(c, k, f.id, seen)
            await c.redis.delete(k.inv(f.id))
        await c.redis.delete(*k.streams, k.delayed, *flow_keys(k))
        assert seen <= FIELDS, f"written but not declared in record.Field: {sorted(seen - FIELDS)}"
        assert not FIELDS - seen, f"declared but never written: {sorted(FIELDS - seen)}"
        doc = await c.get(a.id)
        assert (
            doc is not None and doc.result == 2 and doc.idempotency_key == "ka" and doc.traceparent == "00-t"
        )
        await c.redis.delete(k.audit, k.archive, k.parked, k.minutes)


def test_the_docstring_table_lists_every_field_and_the_states_are_the_literal() -> None:
    import reliq.store.record as record

    doc = record.__doc__ or ""
    assert all(f"``{name}``" in doc for name in FIELDS)
    assert TERMINAL < STATES and "running" in STATES and len(STATES) == 9
    assert Field.TIMELINE == "tl" and len(FIELDS) == len([n for n in vars(Field) if n.isupper()])


def test_parse_reads_through_the_field_names() -> None:
    raw = {
        b"state": b"retrying",
        b"service": b"s",
        b"handler": b"h",
        b"due": b"5",
        b"cancel": b"1",
        b"payload": b"[1]",
        b"key": b"",
    }
    inv = parse("s.x", raw, {b"st": b"2"}, [b"s.c"])
    assert (inv.state, inv.next_retry, inv.cancel_requested, inv.payload) == ("retrying", 5, True, [1])
    assert inv.idempotency_key is None and inv.steps == {"st": 2} and inv.children == ["s.c"]
    assert found(raw) and not found({}) and not found({b"step": b"x"})
