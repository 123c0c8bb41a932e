"""topology.py: which URL is a Cluster, what ``connect`` builds for each (without connecting),
and the per-node view (``Topology``) on one server and on a real Cluster."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection, Connection
from redis.exceptions import ConnectionError as RedisConnectionError

from reliq import Client
from reliq.devserver.cluster import EmbeddedCluster
from reliq.errors import TRANSIENT
from reliq.store.gate import SPARE, GatedCluster, GatedRedis
from reliq.store.topology import (
    Topology,
    as_cluster_url,
    connect,
    is_cluster_url,
    lost_as_connection_error,
)


def test_cluster_urls_and_the_cluster_flag() -> None:
    assert is_cluster_url("redis+cluster://h:1,h:2") and is_cluster_url("rediss+cluster://h:1")
    assert not is_cluster_url("redis://h:1") and not is_cluster_url("rediss://h:1/0")
    assert as_cluster_url("redis://h:1,h:2") == "redis+cluster://h:1,h:2"
    assert as_cluster_url("rediss://h:1") == "rediss+cluster://h:1"
    assert as_cluster_url("redis+cluster://h:1") == "redis+cluster://h:1"  # already one
    assert is_cluster_url(as_cluster_url("redis://h:1")) and not is_cluster_url("redis://h:1")


async def test_a_plain_url_is_one_server_behind_a_blocking_pool() -> None:
    r = connect("redis://127.0.0.1:1/3", max_connections=7)
    try:
        assert isinstance(r, GatedRedis) and r.gate._value == 7  # callers take turns (test_gate)
        pool = r.connection_pool  # with a few spare connections for pub/sub
        assert isinstance(pool, BlockingConnectionPool) and pool.max_connections == 7 + SPARE
        assert pool.connection_kwargs["db"] == 3 and pool.connection_kwargs["port"] == 1
    finally:
        await r.aclose()


async def test_a_cluster_url_lists_its_seed_nodes_and_credentials() -> None:
    rc = connect("rediss+cluster://u%40x:p%3Aw@10.0.0.1:7001, 10.0.0.2:7002,:7003", max_connections=5)
    try:
        assert isinstance(rc, GatedCluster) and rc.gate._value == 5
        seeds = sorted((n.host, n.port) for n in rc.startup_nodes)
        assert seeds == [("10.0.0.1", 7001), ("10.0.0.2", 7002), ("127.0.0.1", 7003)]
        kw = rc.get_connection_kwargs()
        assert (kw["username"], kw["password"]) == ("u@x", "p:w")
        assert rc.get_connection_kwargs()["connection_class"].__name__ == "SSLConnection"
    finally:
        await rc.aclose()


async def test_on_one_server_every_key_is_served_by_the_client_itself(url: str) -> None:
    async with Client(url) as c:
        t = Topology(connect(url))
        try:
            node = await t.node_for("reliq:{x}:stream")
            assert node is t.redis and await t.owner("reliq:{x}:stream") == ""
            assert await t.primaries() == [t.redis]
            assert (await t.inspect_all()).level == (await c.durability()).level == "fsync"
        finally:
            await t.close()
            await t.redis.aclose()


async def test_on_a_cluster_a_key_is_served_by_the_primary_owning_its_slot(cluster: EmbeddedCluster) -> None:
    rc = connect(cluster.url)
    t = Topology(rc)
    try:
        assert t.cluster and len(await t.primaries()) == 3
        owners = {await t.owner(f"reliq:{{s{i}}}:stream") for i in range(20)}
        assert len(owners) >= 2 and all(":" in o for o in owners)
        key = "reliq:{s0}:stream"
        node = await t.node_for(key)
        assert isinstance(node, Redis) and not isinstance(node, GatedCluster)
        kw = node.connection_pool.connection_kwargs
        assert f"{kw['host']}:{kw['port']}" == await t.owner(key)
        await node.set(key + "-probe", b"1", px=5_000)  # the node owns the slot: no MOVED
        assert await rc.get(key + "-probe") == b"1"
    finally:
        await t.close()
        await rc.aclose()


async def _closed_under_it(conn: AbstractConnection) -> None:
    """Close ``conn``'s transport behind redis-py's back, as a node's death can (the connection
    still looks connected), and let uvloop finish closing it."""
    writer = conn._writer
    assert writer is not None
    writer.transport.close()
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_command_on_a_connection_closed_under_it_fails_as_a_connection_error(url: str) -> None:
    """uvloop refuses a write on a closed transport with a RuntimeError ("the handler is closed"),
    which redis-py before 8.2 neither maps nor retries (8.2 checks the transport first and raises
    a ConnectionError itself); reliq's connection class raises a ConnectionError either way."""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    for cls, expected in (
        (Connection, (RuntimeError, RedisConnectionError)),
        (lost_as_connection_error(Connection), RedisConnectionError),
    ):
        conn = cls(host="127.0.0.1", port=port)
        await conn.connect()
        await _closed_under_it(conn)
        with pytest.raises(expected):
            await conn.send_packed_command(conn.pack_command("PING"))
        await conn.disconnect()
    assert isinstance(RedisConnectionError(), TRANSIENT)


async def test_uvloops_closed_handler_error_is_mapped_to_a_connection_error() -> None:
    """The mapping itself, whatever redis-py's version checks before it writes: uvloop's error and
    a writer already gone become ConnectionError (retried); any other error passes through."""

    class Raising(Connection):
        error: Exception = RuntimeError(
            "unable to perform operation on <TCPTransport>; the handler is closed"
        )

        async def send_packed_command(self, command: object, check_health: bool = True) -> None:
            raise self.error

    lossy = lost_as_connection_error(Raising)
    conn = lossy(host="127.0.0.1", port=1)
    with pytest.raises(RedisConnectionError, match="connection lost"):
        await conn.send_packed_command(b"PING")
    Raising.error = AttributeError("'NoneType' object has no attribute 'write'")
    with pytest.raises(RedisConnectionError, match="connection lost"):
        await conn.send_packed_command(b"PING")
    Raising.error = RuntimeError("something else")
    with pytest.raises(RuntimeError, match="something else"):
        await conn.send_packed_command(b"PING")


async def test_on_a_cluster_a_connection_closed_under_a_command_is_reconnected(
    cluster: EmbeddedCluster,
) -> None:
    """A node's connection lost under a command (a failover) is retried on a new connection: the
    command succeeds (redis-py's cluster client retries a ConnectionError, not a RuntimeError)."""
    rc = connect(cluster.url)
    try:
        key = "reliq:{lost}:probe"
        await rc.set(key, b"1", px=10_000)
        node = rc.get_node_from_key(key)
        assert node is not None and node.connection_class is not Connection  # reliq's subclass
        [conn] = [c for c in node._free]  # the one connection the SET used, free again
        await _closed_under_it(conn)
        assert await rc.get(key) == b"1"
    finally:
        await rc.aclose()
