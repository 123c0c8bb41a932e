"""The context sync handlers get: ``SyncContext``, the same fields and operations as ``Context``,
blocking (they run on the worker's event loop while the handler's thread waits)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar, Unpack, overload

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
