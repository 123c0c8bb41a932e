"""reliq's core semantics on a real local Valkey Cluster (3 primaries, 1 replica each), with
partitioned services whose three partitions live on three different primaries: registration
idempotency, reclaim after SIGKILL, fencing, retries, parking and redrive, steps and children,
cancel, a live partition-count change, and the gateway's durable placement (WAIT on the owning
node). The same scenarios on one server are the single-node suite (tests/test_*.py)."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import key_slot

from reliq import Client, Context, IdempotencyConflict, InvocationFailed, Service
from reliq.devserver.cluster import EmbeddedCluster
from reliq.store.keys import GROUP, ServiceKeys, child_token, key_token, partition_of, partition_of_token

from ..conftest import Names, client, running, wait_until
from ..e2e.test_crash import Workers
from ..gateway.conftest import gateway

P = 3


def owner_port(cluster: EmbeddedCluster, key: str) -> int:
    """The port of the primary that serves ``key``'s slot, from the cluster's own slot map."""
    slot = key_slot(key.encode())
    with redis.Redis(port=cluster.nodes[0].port, socket_timeout=5) as r:
        for start, end, primary, *_ in r.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return int(primary[1])
    raise AssertionError(f"no node serves slot {slot}")


def spread_service(cluster: EmbeddedCluster, names: Names, prefix: str = "s", partitions: int = P) -> str:
    """A fresh service name whose partitions 0..partitions-1 all live on different primaries
    (registered with ``names`` for the leak check)."""
    for _ in range(500):
        name = f"{prefix}{uuid.uuid4().hex[:12]}"
        ports = {owner_port(cluster, ServiceKeys(name, p).stream) for p in range(partitions)}
        if len(ports) == partitions:
            names.used.append(name)
            return name
    raise AssertionError("no service name spreads over the primaries")


def keys_per_partition(service: str, partitions: int = P, prefix: str = "k") -> list[str]:
    """One idempotency key per partition: result[p] lands in partition p."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < partitions:
        key = f"{prefix}{i}"
        found.setdefault(partition_of_token(key_token(service, key), partitions), key)
        i += 1
    return [found[p] for p in range(partitions)]


def on_node(port: int, key: str) -> bool:
    """``key`` exists on the node at ``port`` itself (a plain connection: no redirection)."""
    with redis.Redis(port=port, socket_timeout=5) as r:
        return bool(r.exists(key))


async def test_registration_is_idempotent_in_every_partition_on_its_own_node(
    cluster: EmbeddedCluster, url: str, names: Names
) -> None:
    name = spread_service(cluster, names)
    async with client(url) as c:
        await c.set_partitions(name, P)
        ports = []
        ids = []
        for p, key in enumerate(keys_per_partition(name)):
            first = await c.send(name, "h", {"p": p}, key=key)
            again = await c.send(name, "h", {"p": p}, key=key)
            assert first.status == "accepted" and again.status == "previously_accepted"
            assert again.id == first.id and partition_of(first.id) == p
            with pytest.raises(IdempotencyConflict):
                await c.send(name, "h", {"p": -1}, key=key)
            k = c.keys_of(first.id)
            assert k == c.keys(name, p) and k.inv(first.id).startswith(k.prefix)
            port = owner_port(cluster, k.inv(first.id))
            assert on_node(port, k.inv(first.id)) and on_node(port, k.stream)  # record + entry, same node
            assert await c.redis.xlen(k.stream) == 1
            inv = await c.get(first.id)
            assert inv is not None and inv.payload == {"p": p}  # the conflict changed nothing
            ports.append(port)
            ids.append(first.id)
        assert len(set(ports)) == P  # three partitions, three primaries
        # racing registrations converge per key, across partitions
        raced = await asyncio.gather(*(c.send(name, "h", i % 6, key=f"race-{i % 6}") for i in range(60)))
        assert len({r.id for r in raced}) == 6 and sum(r.status == "accepted" for r in raced) == 6
        for i in ids + sorted({r.id for r in raced}):
            assert await c.cancel(i) == "cancelled"


async def test_a_sigkilled_worker_s_work_is_reclaimed_in_every_partition_exactly_once(
    cluster: EmbeddedCluster, url: str, names: Names, tmp_path: Path
) -> None:
    workers = Workers(url, spread_service(cluster, names, "e"), tmp_path)
    try:
        async with Client(url) as c:
            await c.set_partitions(workers.service, P)  # the e2e app follows the stored layout
            a = workers.start("a")
            await wait_until(lambda: c.redis.exists(ServiceKeys(workers.service).consumer("a")), what="a up")
            keys = keys_per_partition(workers.service)
            accs = [await c.send(workers.service, "slow", 2.0, key=k) for k in keys]
            assert sorted(partition_of(x.id) for x in accs) == [0, 1, 2]
            await wait_until(lambda: len(workers.events("start")) == P, what="three handlers running in a")
            a.kill()
            a.wait()
            b = workers.start("b")
            for acc in accs:
                assert await c.result(acc.id, 30) == b.pid
                inv = await c.get(acc.id)
                assert inv is not None and inv.state == "succeeded"
                assert (inv.crashes, inv.deliveries, inv.epoch) == (1, 2, 2)
                k = c.keys_of(acc.id)
                assert await c.redis.xlen(k.stream) == 0
                assert (await c.redis.xpending(k.stream, GROUP))["pending"] == 0
    finally:
        workers.stop_all()
    starts = Counter(pid for _, pid in workers.events("start"))
    assert starts == {a.pid: P, b.pid: P}
    effects = workers.events("effect")  # each invocation's effect ran once, in b
    assert sorted(i for i, _ in effects) == sorted(x.id for x in accs) and {p for _, p in effects} == {b.pid}


async def test_a_worker_that_lost_its_lease_is_fenced_out_on_the_partition_s_node(
    cluster: EmbeddedCluster, url: str, names: Names
) -> None:
    name = spread_service(cluster, names)
    async with client(url) as c:
        await c.set_partitions(name, P)
        acc = await c.send(name, "h", {"x": 1}, key=keys_per_partition(name)[2])
        k = c.keys_of(acc.id)
        assert k.partition == 2
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        [[_, entries]] = await c.redis.xreadgroup(GROUP, "old", {k.stream: ">"}, count=1)
        eid = entries[0][0].decode()
        old = (await c.scripts.claim(k, "old", 30000, [(eid, acc.id)]))[0].epoch
        await c.redis.xclaim(k.stream, GROUP, "new", 0, [eid])
        new = (await c.scripts.claim(k, "new", 30000, [(eid, acc.id)]))[0].epoch
        assert new == old + 1
        assert not await c.scripts.step(k, acc.id, old, "charge", b'"stale"')
        assert await c.scripts.link_child(k, acc.id, old, "x.abcdefghijklmnopqrstuvwxyz", 1) == "fenced"
        assert await c.scripts.complete(k, 60000, [(acc.id, eid, old, "succeeded", b"1")]) == ["fenced"]
        assert await c.scripts.retry(k, acc.id, eid, old, 0, b"{}", 60000, 0) == "fenced"
        assert await c.scripts.park(k, acc.id, eid, old, "terminal", b"{}", 60000) == "fenced"
        assert await c.scripts.renew(k, "old", 30000, [(acc.id, eid, old)]) == ["lost"]
        inv = await c.get(acc.id)
        assert inv is not None and inv.state == "running" and inv.owner == "new" and inv.steps == {}
        assert await c.scripts.step(k, acc.id, new, "charge", b'"fresh"')
        assert await c.scripts.complete(k, 60000, [(acc.id, eid, new, "succeeded", b"2")]) == ["ok"]
        inv = await c.get(acc.id)
        assert inv is not None and inv.result == 2 and inv.steps == {"charge": "fresh"}
        assert await c.redis.xlen(k.stream) == 0


async def test_retries_back_off_then_park_in_each_partition_and_redrive_runs_again(
    cluster: EmbeddedCluster, url: str, names: Names
) -> None:
    name = spread_service(cluster, names)
    svc = Service(name, partitions=P)
    runs: dict[str, list[float]] = {}
    healed = asyncio.Event()

    @svc.handler(max_attempts=3, backoff_base=0.2, backoff_max=0.2)
    async def flaky(ctx: Context, n: int) -> int:
        runs.setdefault(ctx.id, []).append(time.monotonic())
        if not healed.is_set():
            raise RuntimeError(f"boom {ctx.attempt}")
        return n

    async with running(svc, url), client(url) as c:
        accs = [await c.send(name, "flaky", p, key=k) for p, k in enumerate(keys_per_partition(name))]

        async def all_failed() -> bool:
            return all([await c.state(a.id) == "failed" for a in accs])

        await wait_until(all_failed, timeout=20, what="every invocation parked")
        assert sorted(await c.parked(name)) == sorted(a.id for a in accs)
        for p, a in enumerate(accs):
            k = c.keys_of(a.id)
            assert k.partition == p and await c.redis.zscore(k.parked, a.id) is not None
            inv = await c.get(a.id)
            assert inv is not None and inv.attempt == 3 and inv.reason == "attempts-exhausted"
            assert inv.error is not None and "boom 3" in inv.error.message
            times = runs[a.id]
            assert len(times) == 3 and all(b - a >= 0.09 for a, b in itertools.pairwise(times))  # backoff
        healed.set()
        for a in accs:
            assert await c.redrive(a.id) == "redriven"
        assert [await c.result(a.id, 10) for a in accs] == [0, 1, 2]
        assert all(len(runs[a.id]) == 4 for a in accs)
        assert await c.parked(name) == []


async def test_steps_run_once_and_children_on_other_nodes_are_not_duplicated_by_parent_retries(
    cluster: EmbeddedCluster, url: str, names: Names
) -> None:
    parent, child = (
        Service(spread_service(cluster, names, "p"), partitions=P),
        Service(spread_service(cluster, names, "c"), partitions=P),
    )
    effects: Counter[str] = Counter()
    child_runs: Counter[str] = Counter()
    seen: list[list[str]] = []

    def charge() -> str:
        effects["charge"] += 1
        return "rcpt"

    @child.handler
    async def work(ctx: Context, n: int) -> int:
        child_runs[ctx.id] += 1
        return n * 10

    @parent.handler(max_attempts=3, backoff_base=0.01)
    async def fan_out(ctx: Context) -> dict[str, Any]:
        receipt = await ctx.step("charge", charge)
        # one keyed child per partition of the child service, then one by call order
        wanted: dict[int, str] = {}
        i = 0
        while len(wanted) < P:
            key = f"c{i}"
            wanted.setdefault(partition_of_token(child_token(child.name, ctx.id, key), P), key)
            i += 1
        sent = [await ctx.send(child.name, "work", p, key=wanted[p]) for p in range(P)]
        total = await ctx.call(child.name, "work", 7)
        seen.append(sent)
        if ctx.attempt < 3:
            raise RuntimeError("the parent fails after its children were placed")
        return {"receipt": receipt, "total": total}

    async with running(parent, url), running(child, url), client(url) as c:
        acc = await c.send(parent.name, "fan_out")
        assert await c.result(acc.id, 20) == {"receipt": "rcpt", "total": 70}
        inv = await c.get(acc.id)
        assert inv is not None and inv.attempt == 3 and inv.steps == {"charge": "rcpt"}
        assert len(inv.children) == P + 1 and len(seen) == 3 and all(s == seen[0] for s in seen)
        assert sorted(partition_of(x) for x in seen[0]) == [0, 1, 2]
        ports = {owner_port(cluster, c.keys_of(x).inv(x)) for x in seen[0]}
        assert len(ports) == P  # the children live on three different primaries
        for x in inv.children:
            assert await c.result(x, 10) in (0, 10, 20, 70)
            ch = await c.get(x)
            assert ch is not None and ch.parent_id == acc.id
    assert effects == {"charge": 1}
    assert len(child_runs) == P + 1 and set(child_runs.values()) == {1}


async def test_running_handlers_in_every_partition_are_cancelled_through_pub_sub(
    cluster: EmbeddedCluster, url: str, names: Names
) -> None:
    svc = Service(spread_service(cluster, names), partitions=P)
    started: set[str] = set()
    cancelled: list[str] = []

    @svc.handler
    async def forever(ctx: Context) -> None:
        started.add(ctx.id)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(ctx.id)
            raise

    # visibility 60 s: renewal (which also sees the cancel flag) runs every 20 s, so only the
    # pub/sub listener on the RedisCluster can make this pass
    async with running(svc, url, visibility_timeout=60.0, shutdown_grace=1.0), client(url) as c:
        accs = [await c.send(svc.name, "forever", key=k) for k in keys_per_partition(svc.name)]
        await wait_until(lambda: len(started) == P, what="a handler running in every partition")
        t0 = time.monotonic()
        for a in accs:
            assert await c.cancel(a.id) == "cancelling"

        async def all_cancelled() -> bool:
            return all([await c.state(a.id) == "cancelled" for a in accs])

        await wait_until(all_cancelled, timeout=5, what="every handler cancelled")
        assert time.monotonic() - t0 < 5
        assert sorted(cancelled) == sorted(a.id for a in accs)
        with pytest.raises(InvocationFailed):
            await c.result(accs[0].id, 1)


def covering(service: str, prefix: str, n: int, layouts: tuple[int, ...]) -> list[str]:
    """n keys `prefix0, prefix1, ...` (a sliding window), at least one in each partition of each layout."""
    keys = [f"{prefix}{i}" for i in range(n)]
    for extra in itertools.count(n):
        seen = {(p, partition_of_token(key_token(service, k), p)) for k in keys for p in layouts}
        if len(seen) == sum(layouts):
            return keys
        keys = [*keys[1:], f"{prefix}{extra}"]
    raise AssertionError("unreachable")


async def test_changing_the_partition_count_of_a_live_service_loses_and_duplicates_nothing(
    cluster: EmbeddedCluster, url: str, names: Names
) -> None:
    name = names("g")
    svc = Service(name)  # follows whatever layout the producers set
    ran: Counter[str] = Counter()

    @svc.handler
    async def job(ctx: Context, n: int) -> int:
        ran[ctx.id] += 1
        return n

    async with client(url) as c:
        # keys chosen so that every partition of both layouts gets some, and some keys move (random
        # names alone left a partition empty about once in 250 runs)
        olds = covering(name, "old", 24, (2, 4))
        news = covering(name, "new", 24, (4,))
        await c.set_partitions(name, 2)
        before = [(await c.send(name, "job", i, key=k)).id for i, k in enumerate(olds)]
        assert {partition_of(i) for i in before} == {0, 1}
        lay = await c.set_partitions(name, 4)  # work is still queued in partitions 0 and 1
        assert (lay.partitions, lay.high, lay.previous) == (4, 4, 2)
        tokens = [key_token(name, k) for k in olds]
        moved = [i for i, t in enumerate(tokens) if partition_of_token(t, 2) != partition_of_token(t, 4)]
        assert moved
        for i in moved:  # a retry of a key placed before the change finds it in its old partition
            again = await c.send(name, "job", i, key=olds[i])
            assert again.id == before[i] and again.status == "previously_accepted"
        async with client(url) as other:  # a producer that never saw the old layout converges too
            again = await other.send(name, "job", moved[0], key=olds[moved[0]])
            assert again.id == before[moved[0]] and again.status == "previously_accepted"
        after = [(await c.send(name, "job", 100 + i, key=k)).id for i, k in enumerate(news)]
        assert {partition_of(i) for i in after} == {0, 1, 2, 3}
        assert len({owner_port(cluster, c.keys(name, p).stream) for p in range(4)}) >= 2
        async with running(svc, url):
            await wait_until(lambda: sorted(ran) == sorted(before + after), what="every invocation run")

            async def drained() -> bool:  # old partitions drained too (completions are flushed in batches)
                return all([await c.redis.xlen(c.keys(name, p).stream) == 0 for p in range(4)])

            await wait_until(drained, what="every partition's stream empty")
        assert set(ran.values()) == {1}
        assert [await c.result(i, 1) for i in before] == list(range(24))


@pytest.mark.parametrize("durability", ["replicas:1", "fsync"])
async def test_the_gateway_places_durably_on_the_node_that_owns_the_partition(
    cluster: EmbeddedCluster, url: str, names: Names, durability: str
) -> None:
    name = spread_service(cluster, names)
    svc = Service(name, partitions=P)

    @svc.handler
    async def noop(ctx: Context, n: int) -> int:
        return n

    def waits() -> dict[int, int]:  # WAIT calls per node, from each node's own counters: every
        # node, not only the first primaries (on a loaded machine a replica may have taken over)
        out = {}
        for node in cluster.nodes:
            with redis.Redis(port=node.port, socket_timeout=5) as r:
                out[node.port] = int(r.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))
        return out

    async with client(url) as c:
        await c.set_partitions(name, P)
        async with gateway(url, svc, durability=durability, wait_timeout_ms=5000) as http:
            keys = keys_per_partition(name)
            for p, key in enumerate(keys):
                before = waits()
                r = await http.post(f"/send/{name}/noop", json=p, headers={"Idempotency-Key": key})
                assert r.status_code == 202, r.text
                body = r.json()
                assert body["durability"] == durability and partition_of(body["id"]) == p
                port = owner_port(cluster, c.keys_of(body["id"]).inv(body["id"]))
                assert on_node(port, c.keys_of(body["id"]).inv(body["id"]))
                grew = {n for n, v in waits().items() if v > before[n]}
                assert grew == ({port} if durability.startswith("replicas") else set())
                again = await http.post(f"/send/{name}/noop", json=p, headers={"Idempotency-Key": key})
                assert again.status_code == 202 and again.json()["status"] == "previously_accepted"
            assert (await http.get("/readyz")).status_code == 200
        if durability == "fsync":  # more replicas than the cluster has: WAIT says no, never a 2xx
            async with gateway(url, svc, durability="replicas:2", wait_timeout_ms=100) as http:
                r = await http.post(f"/send/{name}/noop", json=9, headers={"Idempotency-Key": "k-more"})
                assert r.status_code == 503 and "retry with the same Idempotency-Key" in r.json()["detail"]
        async with running(svc, url):
            for p, key in enumerate(keys):
                assert await c.result(await c.id_for(name, key), 10) == p
            if durability == "fsync":
                assert await c.result(await c.id_for(name, "k-more"), 10) == 9
