"""reliq's Cluster client waits for a free connection instead of failing (redis-py's asyncio
``RedisCluster`` raises ``MaxConnectionsError`` past ``max_connections`` per node), and a task that
already holds a gate slot (a pipeline retrying a redirected command) never waits for a second."""

from __future__ import annotations

import asyncio

from reliq import Client
from reliq.topology import GatedCluster, _gated, connect

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
        async with _gated(rc.gate):  # as a pipeline does while it re-sends a redirected command
            assert await asyncio.wait_for(rc.get(key), 5) is None
        async with rc.pipeline() as p:
            p.get(key)
            p.get(key + "x")
            assert await asyncio.wait_for(p.execute(), 5) == [None, None]
    finally:
        await rc.aclose()
