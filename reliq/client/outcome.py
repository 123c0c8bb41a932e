"""The one result path: where an invocation stands (``read``) and waiting until it finishes
(``wait``), shared by ``Client.result`` (which decodes and raises) and the gateway (which maps an
``Outcome`` to an HTTP answer without decoding: the stored JSON is the response body).

Waiting reads the record (three fields, one round trip) when the waiter starts, when a completion
notification wakes it (``reliq.client.waiters``: the settling scripts publish the ids that
finished on their partition's ``done`` channel; a small result of a success comes in the message,
and then nothing is read), and at least every ``recheck`` seconds (the
safety net: pub/sub is at-most-once). It costs O(1) reads per completed invocation, nothing per
waiter per tick; one pub/sub connection per server serves every waiter of the process, and the
reads of waiters woken together share round trips (``GroupRead``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

import msgspec

from reliq import codec
from reliq.errors import InvocationCancelled, InvocationFailed, UnknownInvocation
from reliq.store.priority import Priority
from reliq.store.record import TERMINAL, Field, Invocation, found, parse

if TYPE_CHECKING:
    from reliq.client import Client
    from reliq.client.waiters import Waiter

I = TypeVar("I")  # noqa: E741
R = TypeVar("R")


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """An invocation's state, and its result or error document as stored (JSON bytes, or empty)."""

    state: str
    result: bytes = b""
    error: bytes = b""

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL


_FIELDS = ("state", "result", "error")
MAX_GROUP = 500  # reads per round trip


def _outcome(fields: list[Any]) -> Outcome | None:
    state, result, error = fields
    if state is None:
        return None
    return Outcome(state=state.decode(), result=result or b"", error=error or b"")


async def read(client: Client, invocation_id: str) -> Outcome | None:
    """The outcome so far; None when the invocation is unknown or expired. A malformed id raises
    ``InvalidName``."""
    k = client.keys_of(invocation_id)
    return _outcome(await client.redis.hmget(k.inv(invocation_id), _FIELDS))


class GroupRead:
    """``read`` for many waiters at once: the reads asked for while one round trip is under way
    go together in the next (one pipeline, as the gateway's group commit places registrations).
    A wake-up often finishes dozens of waiters at once; each read alone costs more in the client
    than in Redis."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._queue: list[tuple[str, asyncio.Future[Outcome | None]]] = []
        self._flushing = False
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps only a weak reference

    async def read(self, invocation_id: str) -> Outcome | None:
        key = self.client.keys_of(invocation_id).inv(invocation_id)  # a malformed id raises here
        future: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        self._queue.append((key, future))
        if not self._flushing:
            self._flushing = True
            self._task = asyncio.get_running_loop().create_task(self._flush())
            self._task.add_done_callback(self._orphans)
        return await future

    def _orphans(self, task: asyncio.Task[None]) -> None:
        """A flush cancelled (even before it ran) leaves no reader waiting for ever."""
        if task.cancelled() or task.exception() is not None:
            self._flushing = False
            queued, self._queue = self._queue, []
            for _, fut in queued:
                if not fut.done():
                    fut.set_exception(ConnectionError("the outcome reads were cancelled"))

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
                try:
                    if len(batch) == 1:
                        rows = [await self.client.redis.hmget(batch[0][0], _FIELDS)]
                    else:
                        async with self.client.redis.pipeline(transaction=False) as p:
                            for key, _ in batch:
                                p.hmget(key, _FIELDS)
                            rows = await p.execute()
                except BaseException as e:  # every reader of the batch hears the same failure
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(e if isinstance(e, Exception) else ConnectionError("closed"))
                    if not isinstance(e, Exception):
                        raise
                else:
                    for (_, fut), row in zip(batch, rows, strict=True):
                        if not fut.done():
                            fut.set_result(_outcome(row))
        finally:
            self._flushing = False


async def wait(
    client: Client,
    invocation_id: str,
    timeout: float,
    *,
    recheck: float | None = None,
    watched: Waiter | None = None,
) -> Outcome | None:
    """Wait until the invocation is finished or ``timeout`` seconds passed; then its outcome
    (unfinished after a timeout), or None as soon as it is unknown. Woken by its completion
    notification; re-reads at least every ``recheck`` seconds (default ``client.recheck``).

    ``watched``: a waiter the caller registered (``client.waiters.watch``) *before the invocation
    was placed*, while its channel was already subscribed (``Waiter.subscribed``): then nothing
    can finish unseen, and the first read is skipped (a fresh invocation has no outcome yet)."""
    if timeout <= 0:
        return await read(client, invocation_id)
    channel = client.keys_of(invocation_id).done_channel
    deadline = time.monotonic() + timeout
    pause = client.recheck if recheck is None else recheck
    waiters = client.waiters
    # registered before the first read: a completion between the read and the sleep wakes it
    waiter = watched or waiters.add(invocation_id, channel)
    try:
        skip = watched is not None and watched.subscribed
        while True:
            if waiter.carried is not None:  # it succeeded, and its notification carried the result
                return Outcome(state="succeeded", result=waiter.carried)
            if not skip:
                out = await client.group_read.read(invocation_id)
                remaining = deadline - time.monotonic()
                if out is None or out.finished or remaining <= 0:
                    return out
            skip = False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return await client.group_read.read(invocation_id)
            at_most = await waiters.subscribe(channel)  # inf, or a short pause while it cannot
            await waiter.sleep(min(pause, remaining, at_most))
    finally:
        if watched is None:
            waiters.remove(waiter)


async def get(client: Client, invocation_id: str) -> Invocation | None:
    """The status document of an invocation, or None if unknown/expired."""
    k = client.keys_of(invocation_id)
    async with client.redis.pipeline(transaction=False) as p:
        p.hgetall(k.inv(invocation_id))
        p.hgetall(k.steps(invocation_id))
        p.zrange(k.children(invocation_id), 0, -1)
        rec, steps, children = await p.execute()
    if not found(rec):
        return None
    return parse(invocation_id, rec, steps, children)


async def state(client: Client, invocation_id: str) -> str | None:
    """The invocation's state, or None if unknown/expired."""
    raw = await client.redis.hget(client.keys_of(invocation_id).inv(invocation_id), Field.STATE)
    return codec.text(raw) if raw else None


async def result(client: Client, invocation_id: str, timeout: float = 30.0) -> Any:
    """Wait until the invocation is finished and return its result. Raises ``InvocationFailed``
    (``InvocationCancelled`` when cancelled), ``UnknownInvocation``, or ``TimeoutError``."""
    out = await wait(client, invocation_id, timeout)
    if out is None:
        raise UnknownInvocation(invocation_id)
    if out.state == "succeeded":
        return codec.decode(out.result)
    if out.state == "cancelled":
        raise InvocationCancelled(invocation_id, out.state, codec.decode(out.error))
    if out.state in TERMINAL:
        raise InvocationFailed(invocation_id, out.state, codec.decode(out.error))
    raise TimeoutError(f"invocation {invocation_id} not finished after {timeout} s")


@overload
async def call(
    client: Client,
    service: Callable[[Any, I], Awaitable[R]],
    handler: I,
    /,
    *,
    key: str | None = None,
    priority: Priority | None = None,
    timeout: float = 30.0,
) -> R: ...
@overload
async def call(
    client: Client,
    service: str,
    handler: str,
    payload: Any = None,
    /,
    *,
    key: str | None = None,
    priority: Priority | None = None,
    timeout: float = 30.0,
) -> Any: ...
async def call(
    client: Client,
    service: Any,
    handler: Any,
    payload: Any = None,
    /,
    *,
    key: str | None = None,
    priority: Priority | None = None,
    timeout: float = 30.0,
) -> Any:
    """Send, then wait up to ``timeout`` seconds for the result (by name, or by reference to the
    handler function: ``await client.call(place, order)`` is typed as ``place`` returns).
    ``key`` and ``priority`` as ``Client.send``."""
    if isinstance(service, str):
        accepted = await client.send(service, handler, payload, key=key, priority=priority)
    else:  # by reference: send computes a callable concurrency key from the typed input
        accepted = await client.send(service, handler, key=key, priority=priority)
    return await result(client, accepted.id, timeout=timeout)
