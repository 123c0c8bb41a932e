"""Partitioned services on one server: ids carry their partition, keys spread over partitions by
key hash, a retry with the same key converges across a partition-count change, and workers
consume every partition that may hold work (or the subset they were given)."""

from __future__ import annotations

import asyncio
import re

import pytest
import redis

from reliq import Client, Context, Service
from reliq.admin.intake import intake
from reliq.cli.main import _partition_set
from reliq.store.keys import (
    InvalidName,
    ServiceKeys,
    key_token,
    keyed_id,
    locate,
    new_id,
    partition_of,
    partition_of_token,
)
from reliq.store.layout import write_layout

from .conftest import Names, client, running, wait_until


def test_ids_name_their_partition_and_partition_zero_keeps_the_plain_form() -> None:
    assert re.fullmatch(r"orders\.[a-z2-7]{26}", keyed_id("orders", "k", 1))
    ids = [keyed_id("orders", f"k{i}", 4) for i in range(200)]
    parts = {partition_of(i) for i in ids}
    assert parts == {0, 1, 2, 3}  # a key hash spreads over every partition
    for i in ids:
        service, p, token = locate(i)
        assert service == "orders" and p == partition_of_token(token, 4)
        assert (p == 0) == (i.count(".") == 1)
    assert keyed_id("orders", "k", 4) == keyed_id("orders", "k", 4)  # stable
    assert partition_of(new_id("orders", 1)) == 0


@pytest.mark.parametrize(
    "bad", ["o.0.abcdefghijklmnopqrstuvwxyz", "o.1024.abcdefghijklmnopqrstuvwxyz", "o.x.abc", "o.1."]
)
def test_malformed_partitioned_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidName):
        locate(bad)


def test_each_partition_has_its_own_hash_tag_and_service_wide_keys_stay_in_partition_zero() -> None:
    k0, k3 = ServiceKeys("orders"), ServiceKeys("orders", 3)
    assert k0.stream == "reliq:{orders}:stream" and k3.stream == "reliq:{orders:3}:stream"
    assert k3.inv("orders.3.x") == "reliq:{orders:3}:inv:orders.3.x"
    for a, b in [(k0.registry, k3.registry), (k0.layout, k3.layout), (k0.consumer("w"), k3.consumer("w"))]:
        assert a == b and a.startswith("reliq:{orders}:")
    assert k0.cancel_channel == k3.cancel_channel


def test_cli_partition_subset() -> None:  # the --cluster URLs: tests/store/test_topology.py
    assert _partition_set("0,2") == {0, 2} and _partition_set("1-3") == {1, 2, 3}
    assert _partition_set(None) is None
    with pytest.raises(SystemExit):
        _partition_set("a")


async def test_sends_spread_over_partitions_and_land_in_their_partition_keys(url: str, names: Names) -> None:
    name = names()
    svc = Service(name, partitions=3)
    done: list[str] = []

    @svc.handler
    async def job(ctx: Context, n: int) -> int:
        done.append(ctx.id)
        return n

    async with running(svc, url), client(url) as c:
        assert (await c.layout(name, fresh=True)).partitions == 3  # the worker published it
        ids = [(await c.send(name, "job", i, key=f"k{i}")).id for i in range(30)]
        assert {partition_of(i) for i in ids} == {0, 1, 2}
        for i in ids:
            assert await c.redis.exists(c.keys_of(i).inv(i))
            assert await c.result(i, 10) is not None
        assert sorted(done) == sorted(ids)


async def test_a_key_placed_before_a_partition_change_converges_after_it(url: str, names: Names) -> None:
    name = names()
    async with Client(url) as c:
        await c.set_partitions(name, 2)
        key = next(
            f"k{i}"
            for i in range(100)
            if partition_of_token(key_token(name, f"k{i}"), 2)
            != partition_of_token(key_token(name, f"k{i}"), 5)
        )
        first = await c.send(name, "job", {"a": 1}, key=key)
        lay = await c.set_partitions(name, 5)
        assert (lay.partitions, lay.high, lay.previous) == (5, 5, 2)
        again = await c.send(name, "job", {"a": 1}, key=key)
        assert again.id == first.id and again.status == "previously_accepted"
        fresh = await c.send(name, "job", {"a": 1}, key=key + "-new")
        assert partition_of(fresh.id) == partition_of_token(key_token(name, key + "-new"), 5)
        for i in (first.id, fresh.id):
            await c.cancel(i)  # clean up: nothing consumes this service


async def test_shrinking_keeps_old_partitions_drained_and_a_subset_worker_stays_in_its_lane(
    url: str, names: Names
) -> None:
    name = names()
    svc = Service(name)
    ran: list[str] = []

    @svc.handler
    async def job(ctx: Context) -> None:
        ran.append(ctx.id)

    async with Client(url) as c:
        await c.set_partitions(name, 4)
        ids = [(await c.send(name, "job", key=f"s{i}")).id for i in range(24)]
        await c.set_partitions(name, 2)  # partitions 2 and 3 now only drain
        assert (await c.layout(name)).high == 4
        async with running(svc, url, partitions=frozenset({0})):
            await wait_until(lambda: len(ran) == sum(partition_of(i) == 0 for i in ids), what="partition 0")
            assert all(partition_of(i) == 0 for i in ran)
        async with running(svc, url):  # all partitions that may hold work: 0..3
            await wait_until(lambda: sorted(ran) == sorted(ids), what="every partition to drain")


def keys_per_partition(service: str, partitions: int, each: int) -> list[str]:
    """``each`` idempotency keys of every partition of ``service`` (keys drawn blindly miss a
    partition now and then: the service name, and so each key's partition, is random)."""
    by_part: dict[int, list[str]] = {p: [] for p in range(partitions)}
    for k in (f"k{i}" for i in range(50 * partitions * each)):
        by_part[partition_of_token(key_token(service, k), partitions)].append(k)
    return [k for p in range(partitions) for k in by_part[p][:each]]


async def test_a_running_worker_picks_up_partitions_added_to_its_service(url: str, names: Names) -> None:
    name = names()
    svc = Service(name)
    ran: list[str] = []

    @svc.handler
    async def job(ctx: Context) -> None:
        ran.append(ctx.id)

    async with running(svc, url, layout_interval=0.1), client(url) as c:
        await c.set_partitions(name, 3)  # grown while the worker runs (it started with 1)
        ids = [(await c.send(name, "job", key=k)).id for k in keys_per_partition(name, 3, 4)]
        assert {partition_of(i) for i in ids} == {0, 1, 2}
        await wait_until(lambda: sorted(ran) == sorted(ids), what="the new partitions to be consumed")


async def test_concurrent_partition_changes_never_lower_high(url: str, names: Names) -> None:
    """``high`` covers every partition any writer ever placed on, or work there would strand."""
    name = names()
    async with Client(url) as c, Client(url) as d:
        counts = [2 + i % 30 for i in range(60)]
        await asyncio.gather(*(x.set_partitions(name, n) for x, n in zip([c, d] * 30, counts, strict=True)))
        lay = await c.layout(name, fresh=True)
        assert lay.high == max(counts) and lay.partitions in counts


def test_cli_refuses_bad_counts_names_and_ids_without_a_traceback_or_a_write(
    url: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    from reliq.cli.main import main

    name = names()
    for argv, said in [
        (["partitions", name, "0"], "partitions must be an integer in 1..1024"),
        (["partitions", name, "5000"], "partitions must be an integer in 1..1024"),
        (["partitions", "Bad"], "invalid service name"),
        (["get", f"{name}.01.abcdefghijklmnopqrstuvwxyz"], "malformed invocation id"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(["--redis-url", url, *argv])
        assert e.value.code == 2  # bad input, one line on stderr
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith(f"reliq {argv[0]}: ") and said in line
    r = redis.Redis.from_url(url)
    try:
        assert not r.exists(ServiceKeys(name).layout)
    finally:
        r.close()


async def test_an_explicit_id_must_belong_to_the_service_it_is_sent_to(url: str, names: Names) -> None:
    a, b = names(), names()
    async with Client(url) as c:
        with pytest.raises(ValueError, match="does not belong"):
            await c.send_json(a, "job", b"null", invocation_id=new_id(b))
        assert not await c.redis.exists(c.keys(a).stream, c.keys(b).stream)


async def test_a_partition_change_spreads_limits_and_default_priorities_to_every_partition(
    url: str, names: Names
) -> None:
    """New partitions get the code's default priority, the code's max_queued and an operator's
    override, each limit re-split over the new count: at once by ``set_partitions``, and by a
    running worker when the count changes under it."""
    name = names()
    svc = Service(name, max_queued=12)

    @svc.handler(priority="high")
    async def job(ctx: Context) -> None: ...

    async with client(url) as c:
        async with running(svc, url):  # publishes the code's specs (one partition)
            pass
        await c.set_max_queued(name, 30)
        await c.set_partitions(name, 3)  # no worker runs
        flows = [await c.redis.hgetall(c.keys(name, p).flow) for p in range(3)]
        assert [f[b"*!"] for f in flows] == [b"q=10 of=30"] * 3
        assert [f[b"p:job"] for f in flows] == [b"high"] * 3
        doc = await intake(c, name)
        assert (doc.max_queued, doc.source, doc.code) == (30, "override", 12)
        # three keys per partition (nine drawn blindly missed a partition in ~8% of runs)
        ids = [(await c.send(name, "job", key=k)).id for k in keys_per_partition(name, 3, 3)]
        assert {partition_of(i) for i in ids} == {0, 1, 2}
        for p in range(3):  # the handler's default priority applies in every partition
            assert await c.redis.xlen(c.keys(name, p).at("high").stream) == sum(
                partition_of(i) == p for i in ids
            )
        for i in ids:
            await c.cancel(i)
        await c.set_max_queued(name, "code")
        async with running(svc, url, layout_interval=0.1):
            await write_layout(c.scripts, c.keys(name), 4)  # the layout alone: the worker re-splits

            async def code_share() -> bool:
                flows = [await c.redis.hget(c.keys(name, p).flow, "*") for p in range(4)]
                return flows == [b"q=3 of=12"] * 4

            await wait_until(code_share, what="the worker to re-split the code's max_queued")
        await c.set_partitions(name, 2)  # shrunk: partitions 2-3 drain, new work goes to 0-1 only
        await c.set_max_queued(name, 20)
        flows = [await c.redis.hget(c.keys(name, p).flow, "*!") for p in range(4)]
        assert flows == [b"q=10 of=20"] * 4  # the share of the partitions new work goes to
