"""What a handler sees: ``ctx``. Steps, children and calls, all fenced by the attempt's lease epoch."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, Unpack, overload

from reliq import codec
from reliq.backoff import Backoff, retrying
from reliq.context import CallOptions, SendOptions
from reliq.errors import LeaseLost
from reliq.store.keys import ServiceKeys, check_name

if TYPE_CHECKING:
    from reliq.client import Client

log = logging.getLogger("reliq.worker.context")
JOURNAL_PATIENCE = 30.0  # seconds a step's journal write waits out a Redis outage
P = ParamSpec("P")
T = TypeVar("T")


class Context:
    """The handler's view of its invocation.

    ``id``, ``service``, ``handler``, ``attempt`` (1-based), ``epoch`` (the attempt's lease
    epoch), ``deadline`` (unix seconds when this attempt times out, or None),
    ``idempotency_key``, ``parent_id`` and ``traceparent`` describe it (``reliq.context.AnyContext``
    is what it shares with ``SyncContext``); ``step``/``send``/``call`` make progress durable.
    """

    __slots__ = (
        "_client",
        "_order",
        "_steps",
        "_steps_loaded",
        "attempt",
        "deadline",
        "epoch",
        "handler",
        "id",
        "idempotency_key",
        "parent_id",
        "service",
        "traceparent",
    )

    def __init__(
        self,
        client: Client,
        *,
        id: str,
        service: str,
        handler: str,
        attempt: int,
        epoch: int,
        deadline: float | None,
        idempotency_key: str | None,
        parent_id: str | None,
        fresh: bool,
        traceparent: str | None = None,
    ) -> None:
        self._client = client
        self.id = id
        self.service = service
        self.handler = handler
        self.attempt = attempt
        self.deadline = deadline
        self.idempotency_key = idempotency_key
        self.parent_id = parent_id
        self.traceparent = traceparent
        self.epoch = epoch
        self._order = 0
        self._steps: dict[str, bytes] = {}
        self._steps_loaded = fresh  # first delivery ever: nothing journaled yet, skip the read

    @overload
    async def step(
        self, name: str, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T: ...
    @overload
    async def step(self, name: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T: ...
    async def step(self, name: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` once per invocation and journal its result; later attempts get the journaled
        result back without calling ``fn``. The value returned is always the JSON round trip of
        what ``fn`` returned, so the first run and a replay look the same.

        A crash after ``fn`` ran but before its result was journaled runs it again: give external
        side effects an idempotency key (``f"{ctx.id}:{name}"`` is a good one).
        """
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            raise ValueError("step name must be 1-200 characters")
        k = self._client.keys_of(self.id)
        if not self._steps_loaded:
            raw = await self._client.redis.hgetall(k.steps(self.id))
            self._steps = {key.decode(): v for key, v in raw.items()}
            self._steps_loaded = True
        if name in self._steps:
            return codec.decode(self._steps[name])
        if inspect.iscoroutinefunction(fn):
            value = await fn(*args, **kwargs)
        else:
            value = await asyncio.to_thread(fn, *args, **kwargs)
            if inspect.isawaitable(value):
                value = await value
        encoded = codec.encode(value)
        if not await self._journal(k, name, encoded):
            raise LeaseLost(self.id)
        self._steps[name] = encoded
        return codec.decode(encoded)

    async def _journal(self, k: ServiceKeys, name: str, encoded: bytes) -> bool:
        """Journal a step whose function already ran, waiting out a Redis outage (up to
        ``JOURNAL_PATIENCE`` s, backoff to 2 s) instead of failing the attempt and running the
        effect again. Safe to keep trying: the step script is epoch-fenced and ``HSETNX``, so a
        write that lands after this lease was lost is refused (``LeaseLost``), never applied."""
        return await retrying(
            lambda: self._client.scripts.step(k, self.id, self.epoch, name, encoded),
            what=f"journal of step {name!r} of {self.id}",
            deadline=JOURNAL_PATIENCE,
            backoff=Backoff(first=0.05, cap=2.0),
        )

    async def send(self, service: str, handler: str, payload: Any = None, **opts: Unpack[SendOptions]) -> str:
        """Register a child invocation; returns its id. The id derives from this invocation's id
        plus ``key`` (or the call order), so a retried parent never creates it twice. ``delay``:
        run it no sooner than that (seconds or timedelta)."""
        key, delay = opts.get("key"), opts.get("delay")
        check_name("service", service)
        if key is not None:
            codec.check_key(key)
        self._order += 1
        child_key = key if key is not None else f"#{self._order}"
        cid = await self._client.child_id_for(service, self.id, child_key)
        await self._client.send_json(
            service,
            handler,
            codec.encode(payload),
            delay=delay,
            invocation_id=cid,
            parent=self.id,
            trace=self.traceparent,
        )
        linked = await self._client.scripts.link_child(
            self._client.keys_of(self.id), self.id, self.epoch, cid, self._order
        )
        if not linked:
            raise LeaseLost(self.id)
        return cid

    async def call(self, service: str, handler: str, payload: Any = None, **opts: Unpack[CallOptions]) -> Any:
        """Send a child invocation and wait for its result (a retried parent reuses the child and
        its stored result), at most ``timeout`` s (default: this attempt's deadline). A failed
        child raises ``InvocationFailed``."""
        key, timeout = opts.get("key"), opts.get("timeout")
        cid = await self.send(service, handler, payload, key=key)
        if timeout is None:
            timeout = max(0.0, self.deadline - time.time()) if self.deadline else 365 * 24 * 3600.0
        return await self._client.result(cid, timeout=timeout)


class SyncContext:
    """The context sync handlers get: same fields, blocking ``step``/``send``/``call`` (they run on
    the worker's event loop while the handler's thread waits)."""

    def __init__(self, ctx: Context, loop: asyncio.AbstractEventLoop) -> None:
        self._ctx = ctx
        self._loop = loop
        self.id, self.service, self.handler = ctx.id, ctx.service, ctx.handler
        self.attempt, self.epoch, self.deadline = ctx.attempt, ctx.epoch, ctx.deadline
        self.idempotency_key, self.parent_id = ctx.idempotency_key, ctx.parent_id
        self.traceparent = ctx.traceparent

    @overload
    def step(self, name: str, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T: ...
    @overload
    def step(self, name: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T: ...
    def step(self, name: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``Context.step``, blocking: journaled once per invocation, replayed on later attempts."""
        return asyncio.run_coroutine_threadsafe(
            self._ctx.step(name, fn, *args, **kwargs), self._loop
        ).result()

    def send(self, service: str, handler: str, payload: Any = None, **opts: Unpack[SendOptions]) -> str:
        """``Context.send``, blocking."""
        coro = self._ctx.send(service, handler, payload, **opts)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def call(self, service: str, handler: str, payload: Any = None, **opts: Unpack[CallOptions]) -> Any:
        """``Context.call``, blocking."""
        coro = self._ctx.call(service, handler, payload, **opts)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()
