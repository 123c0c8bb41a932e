"""A registration writes only the fields whose value is not its readers' default (lib/place.lua),
and reads as if it had written them all: through ``Client.get``, ``GET /invocations/{id}``, the
admin pending view, and the previous release's ``claim.lua`` (a rolling deploy runs both)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliq import Accepted, Client, Service
from reliq.admin.pending import pending
from reliq.store import scripts
from reliq.store.keys import GROUP, ServiceKeys
from reliq.store.record import fields, parse
from reliq.store.replies import claims

from ..conftest import Names, client
from ..gateway.conftest import gateway

# what a due-now registration without options writes; a field added here must be one a reader of
# the previous release cannot default (it costs every registration an HSET argument)
WRITTEN = {"state", "fp", "service", "handler", "payload", "parent", "key", "attempt", "entry", "created"}
WRITTEN |= {"tl"}
LEFT_OUT = {"updated", "due", "deliveries", "crashes", "epoch", "trace"}  # each read as its default
PREVIOUS_CLAIM = Path(__file__).resolve().parents[1] / "fixtures" / "rolling-8a346e7" / "claim.lua"


async def _delivered(c: Client, svc: str, key: str | None = None) -> tuple[ServiceKeys, Accepted, str]:
    """One registration of ``svc``, delivered to consumer ``w1`` (not claimed yet): its keys,
    its acceptance and its stream entry id."""
    k = ServiceKeys(svc)
    await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
    sent = await c.send(svc, "h", {"n": 1}, key=key)
    [[_, [(eid, _)]]] = await c.redis.xreadgroup(GROUP, "w1", {k.stream: ">"}, count=1)
    return k, sent, eid.decode()


async def _fields(c: Client, inv: str) -> dict[str, bytes]:
    return fields(await c.redis.hgetall(c.keys_of(inv).inv(inv)))


async def test_a_registration_writes_no_field_its_readers_default(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        plain = await c.send(svc, "h", {"n": 1})
        [many] = await c.send_many(svc, "h", [{"n": 2}])
        for inv in (plain.id, many.id):
            h = await _fields(c, inv)
            assert set(h) == WRITTEN and len(h) <= 11, sorted(h)
        # a field is written when it says something: a due time that is not created, a traceparent
        later = await c.send_json(svc, "h", b"3", delay=60, trace="00-abc-def-01")
        h = await _fields(c, later.id)
        assert set(h) == WRITTEN | {"due", "trace"}
        assert int(h["due"]) - int(h["created"]) == 60_000 and h["trace"] == b"00-abc-def-01"
        assert not (LEFT_OUT - {"due", "trace"}) & set(h)
        for inv in (plain.id, many.id, later.id):
            await c.cancel(inv)


async def test_the_status_document_of_a_fresh_registration_shows_every_default(
    url: str, names: Names
) -> None:
    svc = Service(names())
    async with client(url) as c, gateway(url, svc) as http:
        sent = await c.send(svc.name, "h", {"n": 1})
        doc = await c.get(sent.id)
        assert doc is not None and doc.created is not None
        assert (doc.service, doc.state, doc.attempt, doc.deliveries, doc.crashes, doc.epoch) == (
            svc.name,
            "pending",
            1,
            0,
            0,
            0,
        )
        assert doc.updated == doc.created and doc.due == doc.created and doc.traceparent is None
        got = (await http.get(f"/invocations/{sent.id}")).json()
        assert {k: got[k] for k in ("service", "attempt", "deliveries", "crashes", "epoch")} == {
            "service": svc.name,
            "attempt": 1,
            "deliveries": 0,
            "crashes": 0,
            "epoch": 0,
        }
        assert got["updated"] == got["due"] == got["created"] == doc.created
        # delivered, not claimed yet (a worker between its read and its claim): epoch 0, not null
        k = ServiceKeys(svc.name)
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        await c.redis.xreadgroup(GROUP, "w1", {k.stream: ">"}, count=1)
        [entry] = (await pending(c, svc.name)).items
        assert (entry.invocation_id, entry.attempt, entry.epoch) == (sent.id, 1, 0)
        await c.cancel(sent.id)


async def test_a_record_of_the_previous_release_reads_the_same(url: str, names: Names) -> None:
    """The previous release wrote every field, with its default value: parse reads both alike."""
    svc = names()
    async with client(url) as c:
        sent = await c.send(svc, "h", {"n": 1})
        k = c.keys_of(sent.id)
        lean = await c.redis.hgetall(k.inv(sent.id))
        h = fields(lean)
        created = h["created"]
        full = {**lean, b"updated": created, b"due": created, b"deliveries": b"0", b"crashes": b"0"}
        full |= {b"epoch": b"0", b"trace": b""}
        assert parse(sent.id, full, {}, []) == parse(sent.id, lean, {}, [])
        await c.cancel(sent.id)


async def test_the_previous_release_claims_a_record_of_this_one(url: str, names: Names) -> None:
    """A worker of the previous release (its claim.lua, tests/fixtures/rolling-8a346e7) claims a
    registration of this release: the same 11 values per entry as for a record it wrote itself."""
    svc = names()
    previous = PREVIOUS_CLAIM.read_text()
    async with client(url) as c:
        k, sent, eid = await _delivered(c, svc, key="k1")
        entries = [(eid, sent.id)]
        reply = await c.redis.register_script(previous)(
            keys=[k.stream, k.inv(sent.id)], args=[GROUP, "w1", 30_000, "t1", eid]
        )
        [got] = claims(entries, reply)
        assert (got.status, got.epoch, got.handler, got.attempt) == ("run", 1, "h", 1)
        assert got.payload == b'{"n":1}'
        assert (got.crashes, got.deliveries, got.parent, got.key, got.trace) == (0, 1, None, "k1", None)
        doc = await c.get(sent.id)
        assert doc is not None and (doc.state, doc.epoch, doc.deliveries) == ("running", 1, 1)
        assert doc.due == doc.created
        assert doc.updated is not None and doc.updated >= (doc.created or 0)
        await c.cancel(sent.id)


async def test_payload_bytes_are_stored_as_sent_whatever_their_encoding(url: str, names: Names) -> None:
    """register.lua's batch argument carries payloads as msgpack str (its cmsgpack has no bin):
    UTF-8 JSON as text, any other bytes under a str header; both are stored byte for byte."""
    svc = names()
    bodies = [b'{"s":"\xc3\xa9"}', b'"\xff\xfe"', b"[" + b"1," * 40_000 + b"1]"]
    async with client(url) as c:
        sent = [await c.send_json(svc, "h", body) for body in bodies]
        for a, body in zip(sent, bodies, strict=True):
            assert (await _fields(c, a.id))["payload"] == body
            await c.cancel(a.id)


async def test_claim_defaults_the_fields_a_later_release_may_leave_out(url: str, names: Names) -> None:
    """This release still writes parent, key and attempt (its predecessor's claim.lua needs them);
    its own claim.lua defaults them, so that the release after it may leave them out too."""
    svc = names()
    async with client(url) as c:
        k, sent, eid = await _delivered(c, svc)
        await c.redis.hdel(k.inv(sent.id), "parent", "key", "attempt")
        [got] = await c.scripts.claim(k, "w1", 30_000, [(eid, sent.id)])
        assert (got.status, got.attempt, got.parent, got.key, got.deliveries) == ("run", 1, None, None, 1)
        await c.cancel(sent.id)


async def test_a_resent_claim_answers_the_first_claim_with_the_left_out_fields_defaulted(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim call re-sent after its reply was lost (the same claim token) answers what the first
    call did, nothing bumped, for a record without the fields a registration leaves out
    (``crashes``; ``attempt`` as a later release may): read as their defaults, not as ''."""
    svc = names()
    monkeypatch.setattr(scripts.secrets, "token_hex", lambda _: "0123456789abcdef")  # one token, twice
    async with client(url) as c:
        k, sent, eid = await _delivered(c, svc)
        await c.redis.hdel(k.inv(sent.id), "attempt")
        [first] = await c.scripts.claim(k, "w1", 30_000, [(eid, sent.id)])
        [again] = await c.scripts.claim(k, "w1", 30_000, [(eid, sent.id)])
        assert again == first
        got = (first.status, first.epoch, first.attempt, first.crashes, first.deliveries)
        assert got == ("run", 1, 1, 0, 1)
        await c.cancel(sent.id)


async def test_parse_defaults_the_service_from_the_id(url: str, names: Names) -> None:
    """Written still (the previous release's parse requires it), but read from the id when absent."""
    svc = names()
    async with client(url) as c:
        sent = await c.send(svc, "h", {"n": 1})
        k = c.keys_of(sent.id)
        await c.redis.hdel(k.inv(sent.id), "service")
        doc = await c.get(sent.id)
        assert doc is not None and doc.service == svc
        await c.cancel(sent.id)


async def test_claim_and_complete_write_only_their_own_time_and_complete_leaves_the_holder(
    url: str, names: Names
) -> None:
    """The hot path's writes: claim writes 'started' (no 'updated'; 'crashes' only when it grows),
    complete writes 'finished' and leaves owner, lease and entry (a succeeded record never runs
    again). The status document reads 'updated' as the latest time and no holder once finished,
    and the previous release's claim.lua skips the finished record like any other."""
    svc = names()
    async with client(url) as c:
        k, sent, eid = await _delivered(c, svc)
        [got] = await c.scripts.claim(k, "w1", 30_000, [(eid, sent.id)])
        raw = await _fields(c, sent.id)
        assert "updated" not in raw and "crashes" not in raw and raw["owner"] == b"w1"
        running = await c.get(sent.id)
        assert running is not None and running.updated == running.started and running.owner == "w1"
        await c.scripts.complete(k, 600_000, [(sent.id, eid, got.epoch, "succeeded", b"1", False)])
        raw = await _fields(c, sent.id)
        assert "updated" not in raw and (raw["owner"], raw["entry"]) == (b"w1", eid.encode())
        doc = await c.get(sent.id)
        assert doc is not None and doc.state == "succeeded" and doc.updated == doc.finished
        assert (doc.owner, doc.lease_until) == (None, None)
        reply = await c.redis.register_script(PREVIOUS_CLAIM.read_text())(
            keys=[k.stream, k.inv(sent.id)], args=[GROUP, "w2", 30_000, "t2", eid]
        )
        assert claims([(eid, sent.id)], reply)[0].status == "skip"
