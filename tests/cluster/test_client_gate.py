"""reliq's Cluster client waits for a free connection instead of failing (redis-py's asyncio
``RedisCluster`` raises ``MaxConnectionsError`` past ``max_connections`` per node), and a task that
already holds a gate slot (a pipeline retrying a redirected command) never waits for a second."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from redis.asyncio import Redis

from reliq import Client
from reliq.store.gate import GatedCluster, gated
from reliq.store.topology import connect

from ..conftest import Names


async def test_a_thousand_concurrent_commands_wait_for_connections_instead_of_failing(
    url: str, names: Names
) -> None:
    async with Client(url) as c:
        assert isinstance(c.redis, GatedCluster)
        ids = [f"{names()}.aaaaaaaaaaaaaaaaaaaaaaaaaa" for _ in range(3)]
        states = await asyncio.gather(*(c.state(ids[i % 3]) for i in range(1000)))
        assert states == [None] * 1000


async def test_a_task_holding_the_gate_does_not_wait_for_a_second_slot(url: str, names: Names) -> None:
    rc = connect(url, max_connections=1)
    try:
        key = f"{names()}-gate"
        async with gated(rc.gate):  # as a pipeline does while it re-sends a redirected command
            assert await asyncio.wait_for(rc.get(key), 5) is None
        async with rc.pipeline() as p:
            p.get(key)
            p.get(key + "x")
            assert await asyncio.wait_for(p.execute(), 5) == [None, None]
    finally:
        await rc.aclose()


def test_reliq_partitions_sets_the_count_and_names_each_partition_s_node(
    url: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    from reliq.cli.main import main

    service = names()
    main(["--redis-url", url, "partitions", service, "3"])
    doc = msgspec.json.decode(capsys.readouterr().out)
    assert (doc["partitions"], doc["high"], doc["previous"]) == (3, 3, 1)
    assert set(doc["nodes"]) == {"0", "1", "2"} and all(":" in n for n in doc["nodes"].values())
    main(["--redis-url", url.replace("redis+cluster://", "redis://"), "--cluster", "partitions", service])
    assert msgspec.json.decode(capsys.readouterr().out)["nodes"] == doc["nodes"]


async def test_durability_is_read_from_every_primary_and_is_the_weakest(url: str) -> None:
    async with Client(url) as c:
        d = await c.durability()
        assert d.level == "fsync" and len(d.nodes) == 3 and set(d.nodes.values()) == {"fsync"}
        primary = next(iter(d.nodes))
        host, port = primary.rsplit(":", 1)
        node = Redis(host=host, port=int(port))
        try:
            await node.config_set("appendfsync", "everysec")
            d = await c.durability()
            assert d.level == "process" and d.nodes[primary] == "process"
            assert sorted(d.nodes.values()) == ["fsync", "fsync", "process"]
        finally:
            await node.config_set("appendfsync", "always")
            await node.aclose()
