"""Waiting for invocations without polling: completion notifications.

The scripts that make an invocation terminal (complete, park, cancel of queued work, retry's
cancel) publish its id on its partition's ``done`` channel (``reliq:{S}:done``, SPUBLISH: sharded
pub/sub, so on a Cluster the message stays on the shard that owns the partition). ``Waiters`` (one
per Client, made on first use) keeps the table invocation id -> the tasks waiting for it, and one
SSUBSCRIBE per partition that has waiters, over one pub/sub connection per server (Cluster node).
A message wakes the waiters of its ids, which read the outcome once; a small result of a success
comes in the message itself (``lua/lib/notify.lua``), and its waiters answer without a read.
Waiting costs a read at the start and at most one per wake: nothing per waiter per tick, however
many wait.

Pub/sub is at-most-once, so nothing relies on a message arriving:

- a waiter is registered before its first read, and every waiter of a channel is woken (re-reads)
  when the channel's subscription is confirmed: a completion between that read and the
  subscription is seen by the re-read;
- a connection lost for good, or a Cluster slot that moved (the server unsubscribes its channels),
  drops the node's subscriptions and wakes all their waiters, which re-read and subscribe again
  (redis-py re-subscribes by itself after a reconnect; the confirmations wake the waiters);
- every waiter re-reads at least every ``recheck`` seconds anyway: the safety net for a message
  that never arrived.

After a failure no channel is subscribed for ``BACKOFF`` seconds (the recheck serves the waiters
meanwhile), so a subscription that keeps failing never turns into a loop of reads. A channel nobody
waited on for ``LINGER`` seconds is unsubscribed; a node without channels closes
its connection. The pub/sub connections have their own pools, without health-check pings: the
listener is the only task that reads from them; subscribers only write (under the node's lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Iterator
from typing import Any, Protocol

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub

from reliq.store.topology import Topology

log = logging.getLogger("reliq.client.waiters")
RECHECK = 2.0  # seconds: a waiter re-reads at least this often (the safety net)
LINGER = 30.0  # seconds a channel stays subscribed without waiters
SWEEP = 5.0  # seconds between the listener's checks for idle channels
BACKOFF = 1.0  # seconds without new subscriptions after one failed (the waiters' recheck covers it)


class Wake:
    """A flag one task sleeps on with a deadline: what ``asyncio.Event`` plus ``asyncio.timeout``
    do, with one future and one timer per sleep (the timeout context manager was 6% of the
    gateway's ``/call`` samples)."""

    __slots__ = ("_fut", "_set")

    def __init__(self) -> None:
        self._set = False
        self._fut: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._set = True
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_result(None)

    def is_set(self) -> bool:
        return self._set

    def clear(self) -> None:
        self._set = False

    async def wait(self, seconds: float) -> None:
        """Until set or ``seconds`` passed (no error either way)."""
        if self._set:
            return
        loop = asyncio.get_running_loop()
        fut = self._fut = loop.create_future()
        timer = loop.call_later(seconds, _expire, fut)
        try:
            await fut
        finally:
            timer.cancel()
            self._fut = None


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Settable(Protocol):
    def set(self) -> None: ...


class Waiter:
    """One task waiting for one invocation; ``woken`` is set by a notification (a worker's
    durable waits route it to their own event instead: ``reliq.worker.waits``)."""

    __slots__ = ("carried", "channel", "id", "subscribed", "woken")

    def __init__(self, invocation_id: str, channel: str, subscribed: bool = False) -> None:
        self.id, self.channel = invocation_id, channel
        self.woken: Settable = Wake()
        self.carried: bytes | None = None  # its result, when the notification carried it (succeeded)
        # the channel was subscribed when this waiter was registered: every completion from then
        # on wakes it (a confirmation still to come wakes it too; so does a lost subscription)
        self.subscribed = subscribed

    async def sleep(self, seconds: float) -> None:
        """Until woken or ``seconds`` passed; then it can be woken again."""
        woken = self.woken
        assert isinstance(woken, Wake), "a waiter whose wake-up goes elsewhere does not sleep here"
        await woken.wait(seconds)
        woken.clear()


class _Node:
    """One pub/sub connection to one server, the channels subscribed on it, and its listener."""

    def __init__(self, server: Redis) -> None:
        pool = server.connection_pool
        kwargs = {**pool.connection_kwargs, "health_check_interval": 0}
        self.pool = ConnectionPool(connection_class=pool.connection_class, max_connections=2, **kwargs)
        self.pubsub = PubSub(self.pool)
        self.channels: dict[str, float] = {}  # channel -> when it last had a waiter (monotonic)
        self.lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None
        self.swept = time.monotonic()

    async def close(self) -> None:
        await self.pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
        await self.pool.disconnect()


class _Moved(Exception):
    """The server unsubscribed a channel we listen on: its slot moved to another node."""


class Waiters:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._by_id: dict[str, set[Waiter]] = {}
        self._by_channel: dict[str, set[Waiter]] = {}
        self._nodes: dict[int, _Node] = {}  # by id() of the server's client
        self._subscribed: dict[str, _Node] = {}  # channel -> the node it is subscribed on
        self._failed = -BACKOFF  # when a subscription or a listener last failed (monotonic)
        self._closed = False

    def add(self, invocation_id: str, channel: str) -> Waiter:
        """Register a waiter (before the first read of the outcome); ``remove`` it when done."""
        w = Waiter(invocation_id, channel, channel in self._subscribed)
        self._by_id.setdefault(invocation_id, set()).add(w)
        self._by_channel.setdefault(channel, set()).add(w)
        return w

    def remove(self, w: Waiter) -> None:
        for table, key in ((self._by_id, w.id), (self._by_channel, w.channel)):
            ws = table.get(key)
            if ws is not None:
                ws.discard(w)
                if not ws:
                    del table[key]
        node = self._subscribed.get(w.channel)
        if node is not None and w.channel in node.channels:
            node.channels[w.channel] = time.monotonic()

    @contextlib.contextmanager
    def watch(self, invocation_id: str, channel: str) -> Iterator[Waiter]:
        """A waiter registered for the block (``add``, then ``remove``)."""
        w = self.add(invocation_id, channel)
        try:
            yield w
        finally:
            self.remove(w)

    async def subscribe(self, channel: str) -> float:
        """Make sure ``channel`` is subscribed. Sends SSUBSCRIBE (never waits for the confirmation,
        which wakes the channel's waiters). Returns how long a waiter may sleep at most: forever
        (``inf``) when subscribed, else ``BACKOFF`` (its re-reads are all there is meanwhile)."""
        if channel in self._subscribed:
            return math.inf
        if self._closed or time.monotonic() - self._failed < BACKOFF:
            return BACKOFF
        try:
            server = await self.topology.node_for(channel)
        except Exception as e:
            log.debug("no node for %s: %r", channel, e)
            self._failed = time.monotonic()
            return BACKOFF
        if channel in self._subscribed or self._closed:
            return await self.subscribe(channel)
        node = self._nodes.get(id(server))
        if node is None:
            node = self._nodes[id(server)] = _Node(server)
        self._subscribed[channel] = node
        node.channels[channel] = time.monotonic()
        try:
            async with node.lock:
                await node.pubsub.ssubscribe(channel)
        except Exception as e:
            log.info("subscribing %s failed: %r", channel, e)
            self._failed = time.monotonic()
            await self._drop(node)
            return BACKOFF
        if node.task is None and self._nodes.get(id(server)) is node:
            node.task = asyncio.create_task(self._listen(node), name=f"reliq-waiters-{channel}")
        return math.inf

    async def _listen(self, node: _Node) -> None:
        try:
            while node.channels:
                msg = await node.pubsub.get_message(timeout=SWEEP)
                if msg is not None:
                    self._dispatch(node, msg)
                await self._sweep(node)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # lost for good (redis-py re-sends and reconnects first), or moved
            log.info("completion listener restarts: %r", e)
            self._failed = time.monotonic()
            with contextlib.suppress(Exception):
                await self.topology.refresh()  # a Cluster's slot map, after a move or a failover
        finally:
            await self._drop(node)

    def _dispatch(self, node: _Node, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "smessage":
            ids, _, results = msg["data"].partition(b"\n")
            if results:  # '<id> <result JSON>' per line: succeeded, and small (lua/lib/notify.lua)
                for line in results.split(b"\n"):
                    raw, _, result = line.partition(b" ")
                    for w in self._by_id.get(raw.decode(), ()):
                        w.carried = result
            for raw in ids.split():
                for w in self._by_id.get(raw.decode(), ()):
                    w.woken.set()
            return
        channel = msg["channel"].decode()
        if kind == "ssubscribe":  # (re)confirmed: whatever finished before is visible now
            self._wake(channel)
        elif kind == "sunsubscribe" and self._subscribed.get(channel) is node:
            raise _Moved(channel)  # not asked for: its slot moved

    def _wake(self, channel: str) -> None:
        for w in self._by_channel.get(channel, ()):
            w.woken.set()

    async def _sweep(self, node: _Node) -> None:
        now = time.monotonic()
        if now - node.swept < SWEEP:
            return
        node.swept = now
        idle = [c for c, t in node.channels.items() if c not in self._by_channel and now - t > LINGER]
        for c in idle:
            del node.channels[c]
            del self._subscribed[c]
        if idle and node.channels:
            async with node.lock:
                await node.pubsub.sunsubscribe(*idle)

    async def _drop(self, node: _Node) -> None:
        """Forget a node and its subscriptions, wake their waiters, close its connection."""
        for key, n in list(self._nodes.items()):
            if n is node:
                del self._nodes[key]
        channels = [c for c, n in self._subscribed.items() if n is node]
        for c in channels:
            del self._subscribed[c]
            self._wake(c)
        node.channels.clear()
        with contextlib.suppress(Exception):
            await node.close()

    async def close(self) -> None:
        self._closed = True
        for node in list(self._nodes.values()):
            if node.task is not None:
                node.task.cancel()
                await asyncio.wait([node.task], timeout=5)
            await self._drop(node)
