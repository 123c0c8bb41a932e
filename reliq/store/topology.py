"""Where reliq's keys live: one Redis/Valkey server, or a Redis/Valkey Cluster.

``redis://host:port/db`` is one server. ``redis+cluster://host:port,host:port,...`` (or
``rediss+cluster://``) is a Cluster: redis-py's ``RedisCluster`` routes every command and script
to the node owning its slot (every reliq script is single-slot: one hash tag per partition).

Two things need a specific node rather than "the slot's owner, whichever connection":

- ``WAIT`` after a registration must run on the *same connection* as the write, on the node that
  owns the partition (``Topology.node_for``). It is never broadcast.
- Durability is a per-node property: ``inspect_all`` reads every primary and reports the weakest.

``connect`` builds the redis-py client (a ``Connection``); the rest of reliq uses it through the
typed ``reliq.store.commands.RedisClient``.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

try:  # redis[hiredis] is a dependency; without it, redis-py's Python packer
    import hiredis
    from redis.connection import HiredisRespSerializer
except ImportError:  # pragma: no cover
    hiredis = None  # type: ignore[assignment]
    HiredisRespSerializer = None  # type: ignore[assignment,misc]

from reliq.store.commands import Connection
from reliq.store.durability import Durability, inspect_server
from reliq.store.gate import SPARE, GatedCluster, GatedRedis

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
_LEVELS = ("none", "process", "fsync")
C = TypeVar("C", bound=AbstractConnection)  # a connection class


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0] in CLUSTER_SCHEMES


def as_cluster_url(url: str) -> str:
    """``--cluster``: the same address(es), read as a Cluster."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme in CLUSTER_SCHEMES:
        return url
    return f"{scheme}+cluster://{rest}"


def _retry(retries: int = 3) -> RedisRetry:
    return RedisRetry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries)


def connect(url: str, max_connections: int = 256) -> Connection:
    """A redis-py asyncio client for reliq: bytes replies; callers wait for a free connection
    instead of failing; commands are re-sent after connection errors and timeouts (3 times), which
    is safe because reliq's writes are scripts that detect their own re-send (register by id and
    fingerprint, claim by token, settle scripts by epoch and state)."""
    if is_cluster_url(url):
        return _cluster(url, max_connections)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections + SPARE,  # callers take turns at the gate, in order
        timeout=20,
        health_check_interval=30,
        socket_timeout=10,
        socket_connect_timeout=5,
        retry=_retry(),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    pool.connection_class = lost_as_connection_error(hiredis_packing(pool.connection_class))
    client = cast(GatedRedis, GatedRedis.from_pool(pool))  # the client owns (and closes) its pool
    client.gate = asyncio.Semaphore(max_connections)
    return client


def hiredis_packing(cls: type[AbstractConnection]) -> type[AbstractConnection]:
    """``cls`` packing commands with hiredis (C), as redis-py's sync client does when hiredis is
    installed: the asyncio ``Connection`` packs in Python, one buffer copy per argument (~6 us per
    item of a ``register.lua`` batch; ~2 with hiredis). Same bytes; an argument hiredis does not
    take (bytearray; bool or None: ``DataError``) goes through redis-py's own serializer."""
    if hiredis is None or HiredisRespSerializer is None:
        return cls
    serializer = HiredisRespSerializer()  # type: ignore[no-untyped-call, unused-ignore]

    def pack_command(self: AbstractConnection, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):  # "CONFIG GET": the command's words are separate arguments
            args = (*args[0].encode().split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            return cast(list[bytes], serializer.pack(*args))

    return type(cls.__name__, (cls,), {"pack_command": pack_command})


def lost_as_connection_error(cls: type[C]) -> type[C]:
    """``cls`` failing as a ``ConnectionError`` when its connection was lost under it. A command
    on a connection to a node that just died (a Cluster failover) can fail with uvloop's
    ``RuntimeError`` ("... the handler is closed": the transport was closed under the command or
    the connect handshake) or an ``AttributeError`` on its writer already gone, which redis-py
    neither retries nor maps; as ``ConnectionError`` its own retries reconnect, and every loop of
    reliq waits it out (``reliq.errors.TRANSIENT``). Narrowly: any other ``RuntimeError`` or
    ``AttributeError`` passes through."""

    async def send_packed_command(self: C, command: Any, check_health: bool = True) -> None:
        try:
            await cls.send_packed_command(self, command, check_health)
        except RuntimeError as e:
            if "the handler is closed" not in str(e):
                raise
            raise RedisConnectionError(f"connection lost: {e}") from e
        except AttributeError as e:
            if e.obj is not None or not str(e).startswith("'NoneType' object has no attribute"):
                raise
            raise RedisConnectionError(f"connection lost: {e}") from e

    return cast(type[C], type(cls.__name__, (cls,), {"send_packed_command": send_packed_command}))


def _cluster(url: str, max_connections: int) -> RedisCluster:
    parts = urlsplit(url)
    hosts = parts.netloc.rsplit("@", 1)[-1]
    nodes = []
    for hp in hosts.split(","):
        host, _, port = hp.strip().rpartition(":")
        nodes.append(ClusterNode(host or "127.0.0.1", int(port or 6379)))
    if not nodes:
        raise ValueError(f"no cluster nodes in {url!r}")
    rc = GatedCluster(
        startup_nodes=nodes,
        gate=max_connections,
        dynamic_startup_nodes=False,  # the URL's nodes stay the seeds, even after failovers
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme.startswith("rediss"),
        socket_timeout=10,
        socket_connect_timeout=5,
        # one retry policy for connection errors, timeouts and cluster errors (MOVED storms,
        # CLUSTERDOWN during a failover); ``cluster_error_retry_attempts`` is deprecated in
        # redis-py >= 6 and warns on every client built
        retry=_retry(5),
    )
    # every node's connections, those of nodes found later and pub/sub's (redis-py gives no
    # argument for it: the class is in the kwargs each ClusterNode is made from)
    lossy = lost_as_connection_error(rc.connection_kwargs["connection_class"])
    for kwargs_of_nodes in (rc.connection_kwargs, rc.nodes_manager.connection_kwargs):
        kwargs_of_nodes["connection_class"] = lossy
    for node in [*rc.startup_nodes, *rc.nodes_manager.startup_nodes.values()]:
        node.connection_class = lossy
    return rc


class Topology:
    """Per-node plain clients for the operations that need one node (WAIT, CONFIG)."""

    def __init__(self, redis: Connection) -> None:
        self.redis = redis
        self.cluster = isinstance(redis, RedisCluster)
        self._nodes: dict[tuple[str, int], Redis] = {}

    async def node_for(self, key: str) -> Redis:
        """A client bound to the node that owns ``key`` (the server itself when not a Cluster).
        A pipeline on it runs on one connection, so a ``WAIT`` queued after a write covers it."""
        rc = self.redis
        if not isinstance(rc, RedisCluster):
            return rc
        await rc.initialize()
        node = rc.get_node_from_key(key)
        if node is None:
            raise RedisConnectionError(f"no cluster node serves the slot of {key!r}")
        return self._node(node.host, int(node.port))

    async def owner(self, key: str) -> str:
        """``host:port`` of the primary that owns ``key`` (``""`` when not a Cluster)."""
        rc = self.redis
        if not isinstance(rc, RedisCluster):
            return ""
        await rc.initialize()
        node = rc.get_node_from_key(key)
        return "" if node is None else f"{node.host}:{node.port}"

    def _node(self, host: str, port: int) -> Redis:
        c = self._nodes.get((host, port))
        if c is None:
            kw = self.redis.get_connection_kwargs()
            c = self._nodes[(host, port)] = Redis(
                host=host,
                port=port,
                username=kw.get("username"),
                password=kw.get("password"),
                socket_timeout=10,
                socket_connect_timeout=5,
                max_connections=64,
            )
            c.connection_pool.connection_class = lost_as_connection_error(c.connection_pool.connection_class)
        return c

    async def refresh(self) -> None:
        """After MOVED/ASK or a failover: re-read the slot map."""
        if isinstance(self.redis, RedisCluster):
            await self.redis.nodes_manager.initialize()

    async def primaries(self) -> list[Redis]:
        rc = self.redis
        if not isinstance(rc, RedisCluster):
            return [rc]
        await rc.initialize()
        return [self._node(n.host, int(n.port)) for n in rc.get_primaries()]

    async def inspect_all(self) -> Durability:
        """The weakest durability over every primary (a Cluster is as durable as its worst node)."""
        primaries = await self.primaries()
        found = [await inspect_server(r) for r in primaries]
        if not self.cluster:
            return found[0]
        worst = min(found, key=lambda d: _LEVELS.index(d.level))
        notes = sorted({n for d in found for n in d.notes})
        notes.append(f"cluster of {len(found)} primaries; level is the weakest node's")
        names = [
            f"{r.connection_pool.connection_kwargs['host']}:{r.connection_pool.connection_kwargs['port']}"
            for r in primaries
        ]
        return Durability(
            level=worst.level,
            appendonly=all(d.appendonly for d in found),
            appendfsync=worst.appendfsync,
            maxmemory_policy=worst.maxmemory_policy,
            eviction_safe=all(d.eviction_safe for d in found),
            notes=notes,
            nodes={n: d.level for n, d in zip(names, found, strict=True)},
        )

    async def close(self) -> None:
        for c in self._nodes.values():
            await c.aclose()
        self._nodes.clear()
