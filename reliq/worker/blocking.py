"""The context sync handlers get: ``SyncContext``, the same fields and operations as ``Context``,
blocking (they run on the worker's event loop while the handler's thread waits). Also
``joined``: the run of a sync handler that holds a flow permit, which never ends before its
thread has returned."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import Any, ParamSpec, Protocol, TypeVar, Unpack, overload

from reliq.context import CallOptions, SendOptions
from reliq.worker.context import Context

P = ParamSpec("P")
T = TypeVar("T")


class SyncContext:
    """``Context`` for sync handlers: every operation blocks the handler's thread."""

    def __init__(self, ctx: Context, loop: asyncio.AbstractEventLoop) -> None:
        self._ctx = ctx
        self._loop = loop
        self.id, self.service, self.handler = ctx.id, ctx.service, ctx.handler
        self.attempt, self.epoch, self.deadline = ctx.attempt, ctx.epoch, ctx.deadline
        self.idempotency_key, self.parent_id = ctx.idempotency_key, ctx.parent_id
        self.traceparent, self.scheduled_for = ctx.traceparent, ctx.scheduled_for
        self.cancelling = ctx.cancelling

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @overload
    def step(self, name: str, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T: ...
    @overload
    def step(self, name: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T: ...
    def step(self, name: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``Context.step``, blocking: journaled once per invocation, replayed on later attempts."""
        return self._run(self._ctx.step(name, fn, *args, **kwargs))

    def send(self, target: Any, handler: Any = None, payload: Any = None, **opts: Unpack[SendOptions]) -> str:
        """``Context.send``, blocking."""
        return self._run(self._ctx.send(target, handler, payload, **opts))

    def call(self, target: Any, handler: Any = None, payload: Any = None, **opts: Unpack[CallOptions]) -> Any:
        """``Context.call``, blocking."""
        return self._run(self._ctx.call(target, handler, payload, **opts))

    def result(self, child_id: str, *, timeout: float | None = None) -> Any:
        """``Context.result``, blocking."""
        return self._run(self._ctx.result(child_id, timeout=timeout))

    def sleep(self, duration: float | timedelta) -> None:
        """``Context.sleep``, blocking."""
        self._run(self._ctx.sleep(duration))

    def sleep_until(self, when: datetime) -> None:
        """``Context.sleep_until``, blocking."""
        self._run(self._ctx.sleep_until(when))

    def promise(self, name: str, *, timeout: float | None = None) -> Any:
        """``Context.promise``, blocking."""
        return self._run(self._ctx.promise(name, timeout=timeout))


class Joining(Protocol):
    joining: bool  # the attempt is over, its thread still runs (InFlight.joining)


async def joined(pool: Executor, fn: Callable[[], T], timeout: float | None, flight: Joining | None) -> T:
    """Run ``fn`` on ``pool`` and return its result; but when the wait ends early (``timeout``
    seconds passed: ``TimeoutError``; the task was cancelled: a cancel, a lost lease, shutdown),
    wait on until the thread has returned before raising. A thread cannot be interrupted: for a
    handler with a concurrency key, an attempt that ended while its body runs on would let the
    next holder of its permit (a retry, the next waiter) start beside it. Meanwhile the entry
    stays in flight (its lease renewed); ``flight.joining`` says so (shutdown waits for it).
    Cancels that arrive meanwhile are absorbed; once the thread returned, a cancel (the first,
    or one absorbed) is raised, else the timeout. The attempt's outcome stays what ended it."""
    fut = asyncio.get_running_loop().run_in_executor(pool, fn)
    ended: BaseException
    try:
        done, _ = await asyncio.wait({fut}, timeout=timeout)
        if done:
            return fut.result()
        ended = TimeoutError()
    except asyncio.CancelledError as e:
        ended = e
    if flight is not None:
        flight.joining = True
    while not fut.done():
        try:
            await asyncio.wait({fut})
        except asyncio.CancelledError as e:
            if not isinstance(ended, asyncio.CancelledError):
                ended = e
    if not fut.cancelled():
        fut.exception()  # retrieved: what the thread raised late is not logged as never retrieved
    raise ended
