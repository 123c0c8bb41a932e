"""Flow keys on a multi-partition service (issue 14): every invocation of one key value lands in
one partition (so a per-key limit holds service-wide), a keyless rate limit keeps its handler in
one partition, an idempotency key still maps to one id (token from the key, partition from the
flow key), a bad key is refused before anything is written, and one partition reads nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from reliq import Client, Context, Service
from reliq.store.flow import flow_token
from reliq.store.keys import key_token, locate, partition_of_token

from .conftest import Names, client, running, wait_until
from .flow_util import ends, mark, replay

P = 3


class Acct(msgspec.Struct):
    account: str
    n: int = 0


def _keys(service: str) -> list[str]:
    """Four key values whose flow partitions are not all the same."""
    home = partition_of_token(flow_token(service, "work", "a0"), P)
    other = next(
        f"a{j}" for j in range(3, 200) if partition_of_token(flow_token(service, "work", f"a{j}"), P) != home
    )
    return ["a0", "a1", "a2", other]


async def all_done(c: Client, ids: list[str]) -> bool:
    return [await c.state(i) for i in ids] == ["succeeded"] * len(ids)


@pytest.mark.semantics  # also on a Cluster, where the partitions are different slots
async def test_one_key_lands_in_one_partition_and_its_limit_holds_service_wide(
    url: str, names: Names, tmp_path: Path
) -> None:
    witness = tmp_path / "witness"
    svc = Service(names(), partitions=P)

    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def work(ctx: Context, req: Acct) -> int:
        mark(witness, "S", req.account, req.n)
        await asyncio.sleep(0.01)  # a window in which a second holder of the key would show
        mark(witness, "E", req.account, req.n)
        return req.n

    keys = _keys(svc.name)
    home = {k: partition_of_token(flow_token(svc.name, "work", k), P) for k in keys}
    async with client(url) as c:
        async with running(svc, url, concurrency=1):  # publishes the layout and the spec
            pass
        ids: dict[str, list[str]] = {k: [] for k in keys}
        for i in range(32):
            k = keys[i % 4]
            ids[k].append((await c.send(svc.name, "work", {"account": k, "n": i})).id)
        # an idempotency key whose own token falls in another partition than the flow key's
        idem = next(
            f"i{j}" for j in range(100) if partition_of_token(key_token(svc.name, f"i{j}"), P) != home["a0"]
        )
        first = await c.send(svc.name, "work", {"account": "a0", "n": 32}, key=idem)
        again = await c.send(svc.name, "work", {"account": "a0", "n": 32}, key=idem)
        assert first.status == "accepted" and again.status == "previously_accepted" and again.id == first.id
        assert locate(first.id)[2] == key_token(svc.name, idem)  # the token: from the idempotency key
        ids["a0"].append(first.id)
        for k, of_key in ids.items():
            assert {locate(i)[1] for i in of_key} == {home[k]}, k  # the partition: from the flow key
        async with running(svc, url, concurrency=20):  # every partition consumed, a backlog
            await wait_until(lambda: ends(witness) == 33, timeout=30, what="all 33 done")
    most, order = replay(witness)
    assert most == dict.fromkeys(keys, 1)  # one holder per key across the whole service
    for k, started in order.items():
        assert started == sorted(started), k  # per-key FIFO: registration order


async def test_a_keyless_rate_limit_keeps_its_handler_in_one_partition(url: str, names: Names) -> None:
    svc = Service(names(), partitions=P)

    @svc.handler(rate_limit="1000/s", burst=100)
    async def ping(ctx: Context) -> None: ...

    @svc.handler
    async def free(ctx: Context) -> None: ...

    async with running(svc, url), client(url) as c:
        pinged = [(await c.send(svc.name, "ping")).id for _ in range(12)]
        freed = [(await c.send(svc.name, "free")).id for _ in range(24)]
        assert {locate(i)[1] for i in pinged} == {partition_of_token(flow_token(svc.name, "ping"), P)}
        assert len({locate(i)[1] for i in freed}) > 1  # a handler without limits spreads
        await wait_until(lambda: all_done(c, pinged + freed), timeout=20, what="every invocation done")


async def test_a_bad_key_on_a_partitioned_service_is_refused_before_anything_is_written(
    url: str, names: Names
) -> None:
    svc = Service(names(), partitions=P)

    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def work(ctx: Context, req: Acct) -> None: ...

    async with running(svc, url):
        pass
    async with client(url) as c:
        calls: list[str] = []
        c.scripts.register_many = lambda *a, **kw: calls.append("register")  # type: ignore[method-assign]
        for bad in ({"n": 1}, {"account": 1.5}, {"account": None}, {"account": "x" * 300}):
            with pytest.raises(ValueError, match="flow key"):
                await c.send(svc.name, "work", bad)
        assert calls == []  # refused by the producer: no script call at all


async def test_one_partition_reads_no_flow_spec_on_the_send_path(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def work(ctx: Context, req: Acct) -> None: ...

    async with running(svc, url), client(url) as c:
        sent = [(await c.send(svc.name, "work", {"account": "a", "n": i})).id for i in range(3)]
        assert len(c.flow_specs) == 0  # nothing to route: the spec was never read
        await wait_until(lambda: all_done(c, sent), what="done")


async def test_a_debounced_send_opens_its_window_in_its_keys_partition(url: str, names: Names) -> None:
    """Windows of many debounce keys but one key value all wait in that value's partition, where
    its limit is enforced (the debounce key's own partition would split the key's line)."""
    svc = Service(names(), partitions=P)

    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def work(ctx: Context, req: Acct) -> None: ...

    async with client(url) as c:
        async with running(svc, url, concurrency=1):  # publishes the layout and the spec
            pass
        home = partition_of_token(flow_token(svc.name, "work", "a0"), P)
        sent = [
            await c.send(svc.name, "work", {"account": "a0", "n": i}, debounce=30, debounce_key=f"d{i}")
            for i in range(12)
        ]
        assert [a.status for a in sent] == ["accepted"] * 12
        assert {locate(a.id)[1] for a in sent} == {home}
        joined = await c.send(svc.name, "work", {"account": "a0", "n": 99}, debounce=30, debounce_key="d3")
        assert joined.status == "debounced" and joined.id == sent[3].id
