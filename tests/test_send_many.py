"""``Client.send_many`` (issue 16): one script call per partition per chunk of 500, answers in
input order, each item idempotent on its own, refusals per item (``BatchError``) without losing the
accepted ones, every input checked before anything is written, and the same from ``SyncClient``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from reliq import (
    Accepted,
    Backpressure,
    BatchError,
    Client,
    Context,
    IdempotencyConflict,
    Service,
    SyncClient,
)
from reliq.client.callbacks import CallbackHostRefused
from reliq.store.flow import BadKey
from reliq.store.keys import ServiceKeys, locate
from reliq.store.replies import Registered, Registration

from .conftest import Names, client, running

P = 3


class Acct(msgspec.Struct):
    account: str
    n: int = 0


def count_calls(c: Client) -> list[tuple[int, int]]:
    """Record (partition, items) of every register.lua call the client makes from now on."""
    calls: list[tuple[int, int]] = []
    inner = c.scripts.register_many

    async def counting(k: ServiceKeys, items: Sequence[Registration], **kw: Any) -> list[Registered]:
        calls.append((k.partition, len(items)))
        return await inner(k, items, **kw)

    c.scripts.register_many = counting  # type: ignore[method-assign]
    return calls


async def payload_of(c: Client, invocation_id: str) -> Any:
    return msgspec.json.decode(await c.redis.hget(c.keys_of(invocation_id).inv(invocation_id), "payload"))


async def written(c: Client, service: str) -> list[bytes]:
    """Every key of the service (any partition)."""
    return [k async for k in c.redis.scan_iter(match=f"reliq:{{{service}*")]


async def test_a_large_batch_answers_in_input_order_in_chunks_of_500(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        calls = count_calls(c)
        got = await c.send_many(svc, "job", [{"n": i} for i in range(1201)])
        assert calls == [(0, 500), (0, 500), (0, 201)]  # one script call per chunk, in order
        assert len(got) == 1201 and len({a.id for a in got}) == 1201
        assert {(a.status, a.state) for a in got} == {("accepted", "pending")}
        for i in (0, 499, 500, 1000, 1200):
            assert await payload_of(c, got[i].id) == {"n": i}
        assert await c.backlog(svc) == 1201
        assert await c.send_many(svc, "job", []) == []


async def test_a_keyed_batch_resent_answers_the_same_ids_and_a_conflict_is_reported_per_item(
    url: str, names: Names
) -> None:
    svc = names()
    keys = [f"order-{i}" for i in range(20)]
    async with client(url) as c:
        first = await c.send_many(svc, "job", list(range(20)), keys=keys)
        again = await c.send_many(svc, "job", list(range(20)), keys=keys)
        assert [a.id for a in again] == [a.id for a in first]
        assert {a.status for a in again} == {"previously_accepted"}
        assert first[3].id == await c.id_for(svc, "order-3")  # the id a single send would use
        # and the same fingerprint (send_many hashes the handler's part once): no conflict
        single = await c.send(svc, "job", 3, key="order-3")
        assert (single.id, single.status) == (first[3].id, "previously_accepted")

        # item 1 conflicts (same key, another payload); items 0 and 2 still get their answers
        with pytest.raises(BatchError) as e:
            await c.send_many(svc, "job", [0, 99, "new"], keys=["order-0", "order-1", "order-new"])
        results = e.value.results
        assert list(e.value.failed) == [1] and isinstance(results[1], IdempotencyConflict)
        assert results[1].invocation_id == first[1].id
        assert results[0] == Accepted(id=first[0].id, status="previously_accepted", state="pending")
        placed = e.value.accepted[2]
        assert placed.status == "accepted" and await payload_of(c, placed.id) == "new"
        assert await payload_of(c, first[1].id) == 1  # the conflicting payload changed nothing
        assert "1 of 3 items" in str(e.value) and "IdempotencyConflict" in str(e.value)


async def test_backpressure_mid_batch_refuses_only_the_items_past_the_limit(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        await c.set_max_queued(svc, 5)
        await c.send_many(svc, "job", [0, 1], keys=["k0", "k1"])
        with pytest.raises(BatchError) as e:
            await c.send_many(svc, "job", list(range(2, 8)), keys=[f"k{i}" for i in range(2, 8)])
        results = e.value.results
        assert [type(r).__name__ for r in results] == ["Accepted"] * 3 + ["Backpressure"] * 3
        assert all(r.retry_after > 0 for r in results[3:] if isinstance(r, Backpressure))
        for i in range(5, 8):  # nothing was written for the refused ones
            assert not await c.redis.exists(c.keys(svc).inv(await c.id_for(svc, f"k{i}")))
        assert await c.backlog(svc) == 5
        # full: a re-send of an accepted key still answers as before, a new item is refused
        with pytest.raises(BatchError) as again:
            await c.send_many(svc, "job", [0, 8], keys=["k0", "k8"])
        assert (
            isinstance(again.value.results[0], Accepted)
            and again.value.results[0].status == "previously_accepted"
        )
        assert list(again.value.failed) == [1] and isinstance(again.value.failed[1], Backpressure)
        await c.set_max_queued(svc, "none")
        assert len(await c.send_many(svc, "job", [5, 6, 7], keys=["k5", "k6", "k7"])) == 3


async def test_bad_input_raises_and_writes_nothing(url: str, names: Names) -> None:
    svc = names()
    ok = [{"n": i} for i in range(700)]  # more than one chunk: a lazy check would have written one
    keys: list[str | None] = [f"k{i}" for i in range(700)]
    async with client(url) as c:
        calls = count_calls(c)
        bad_key = [*keys[:650], "bad\nkey", *keys[651:]]
        bad: list[tuple[type[Exception], Any]] = [
            (ValueError, c.send_many("Bad Name", "job", ok)),
            (ValueError, c.send_many(svc, "no such", ok)),
            (ValueError, c.send_many(svc, "job", ok, keys=bad_key)),
            (ValueError, c.send_many(svc, "job", ok, keys=keys[:699])),  # one key per payload
            (TypeError, c.send_many(svc, "job", [*ok[:600], object()])),  # not JSON-encodable
            (TypeError, c.send_many(svc, "job", {"n": 1})),  # a dict is not a list of payloads
            (ValueError, c.send_many(svc, "job", ok, priority="urgent")),  # type: ignore[arg-type]
            (ValueError, c.send_many(svc, "job", ok, delay=-1)),
            (ValueError, c.send_many(svc, "job", ok, reply_to=("billing", "Bad"))),
            (TypeError, c.send_many(svc, "job", ok, key="k")),  # type: ignore[call-overload]
            (CallbackHostRefused, c.send_many(svc, "job", ok, callback_url="https://elsewhere.example/x")),
        ]
        for exc, call in bad:
            with pytest.raises(exc):
                await call
        assert calls == [] and await written(c, svc) == []


@pytest.mark.semantics  # on a Cluster the partitions are different slots
async def test_a_multi_partition_batch_routes_each_item_like_send(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        await c.set_partitions(svc, P)
        calls = count_calls(c)
        keys = [f"k{i}" for i in range(60)]
        got = await c.send_many(svc, "job", list(range(60)), keys=keys)
        parts = {locate(a.id)[1] for a in got}
        assert parts == set(range(P))  # 60 keys spread over all three
        assert sorted(p for p, _ in calls) == list(range(P))  # one call per partition
        assert sum(n for _, n in calls) == 60
        assert [a.id for a in got] == [await c.id_for(svc, k) for k in keys]
        assert [await payload_of(c, a.id) for a in got] == list(range(60))
        fresh = await c.send_many(svc, "job", list(range(30)))
        assert [await payload_of(c, a.id) for a in fresh] == list(range(30))
        again = await c.send_many(svc, "job", list(range(60)), keys=keys)
        assert [a.id for a in again] == [a.id for a in got]
        assert {a.status for a in again} == {"previously_accepted"}


@pytest.mark.semantics
async def test_flow_keyed_handlers_route_and_check_each_item(url: str, names: Names) -> None:
    svc = Service(names(), partitions=P)
    done: list[tuple[str, int]] = []

    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def by_field(ctx: Context, req: Acct) -> None:
        done.append((req.account, req.n))

    @svc.handler(concurrency_key=lambda req: req.account.upper(), concurrency_limit=1)
    async def by_callable(ctx: Context, req: Acct) -> None:
        done.append((req.account, req.n))

    async with client(url) as c, running(svc, url, concurrency=4):
        items = [Acct(account=f"a{i % 4}", n=i) for i in range(24)]
        field = await c.send_many(svc.name, "by_field", [msgspec.to_builtins(x) for x in items])
        ref = await c.send_many(by_callable, items)
        for answers in (field, ref):
            home: dict[str, int] = {}
            for item, a in zip(items, answers, strict=True):  # one account, one partition
                assert home.setdefault(item.account, locate(a.id)[1]) == locate(a.id)[1]
        fk = await c.redis.hget(c.keys_of(ref[5].id).inv(ref[5].id), "fk")
        assert fk is not None and fk.endswith(b"A1")  # the callable's value, computed per item
        for a in [*field, *ref]:
            await c.result(a.id, timeout=30)
        # one item without its flow key: the whole batch is refused before anything is written
        calls = count_calls(c)
        with pytest.raises(BadKey, match="item 2"):
            await c.send_many(svc.name, "by_field", [{"account": "a"}, {"account": "b"}, {"n": 1}])
        with pytest.raises(BadKey):  # a callable key by name: nothing computes it
            await c.send_many(svc.name, "by_callable", [{"account": "a"}])
        assert calls == []
    assert len(done) == 48


async def test_sync_client_send_many_from_threads(url: str, names: Names) -> None:
    svc = names()
    sync = await asyncio.to_thread(SyncClient, url)
    try:

        def batch(t: int) -> list[Accepted]:
            return sync.send_many(
                svc, "job", [t * 100 + j for j in range(50)], keys=[f"{t}-{j}" for j in range(50)]
            )

        with ThreadPoolExecutor(4) as pool:
            got = await asyncio.gather(*(asyncio.wrap_future(pool.submit(batch, t)) for t in range(4)))
        ids = [a.id for answers in got for a in answers]
        assert len(set(ids)) == 200
        again = await asyncio.to_thread(batch, 2)
        assert [a.id for a in again] == [a.id for a in got[2]]
        assert {a.status for a in again} == {"previously_accepted"}
        with pytest.raises(BatchError):  # refusals reach the thread as from Client
            await asyncio.to_thread(sync.send_many, svc, "job", ["other"], keys=["0-0"])
    finally:
        await asyncio.to_thread(sync.close)


async def test_one_partition_checks_every_flow_key_before_writing(url: str, names: Names) -> None:
    svc = Service(names())  # one partition: nothing routes, the script alone would refuse item 2

    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def work(ctx: Context, req: Acct) -> None:
        return None

    async with client(url) as c:
        async with running(svc, url):  # publishes the flow spec
            pass
        calls = count_calls(c)
        with pytest.raises(BadKey, match="item 2"):
            await c.send_many(work, [Acct(account="a"), Acct(account="b"), {"n": 1}])  # type: ignore[list-item]
        assert calls == [] and await c.backlog(svc.name) == 0


async def test_a_failed_chunk_is_reported_for_its_items_and_the_rest_of_its_partition(
    url: str, names: Names
) -> None:
    svc = names()
    async with client(url) as c:
        calls = count_calls(c)
        counting = c.scripts.register_many

        async def second_fails(k: ServiceKeys, items: Sequence[Registration], **kw: Any) -> list[Registered]:
            if len(calls) == 1:
                calls.append((k.partition, len(items)))
                raise RedisConnectionError("connection lost")
            return await counting(k, items, **kw)

        c.scripts.register_many = second_fails  # type: ignore[method-assign]
        with pytest.raises(BatchError) as e:
            await c.send_many(svc, "job", list(range(1201)))
        assert calls == [(0, 500), (0, 500)]  # the third chunk was never sent
        assert sorted(e.value.accepted) == list(range(500))
        assert sorted(e.value.failed) == list(range(500, 1201))
        assert all(isinstance(x, RedisConnectionError) for x in e.value.failed.values())
        assert await c.backlog(svc) == 500


async def test_the_options_apply_to_every_item(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        got = await c.send_many(
            svc, "job", [1, 2, 3], delay=60, priority="low", reply_to=("billing", "on_done")
        )
        assert {a.state for a in got} == {"scheduled"}
        for a in got:
            rec = await c.redis.hmget(c.keys_of(a.id).inv(a.id), ["reply", "prio", "due", "created"])
            assert rec[:2] == [b"billing/on_done", b"low"]
            assert int(rec[2]) - int(rec[3]) == 60_000
        assert await c.redis.zcard(c.keys(svc).delayed) == 3
