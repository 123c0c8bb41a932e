"""What every handler context has, async (``reliq.Context``) or sync (``reliq.SyncContext``):
the invocation's identity and this attempt's lease. Code that only reads these (a logging
helper, a function shared by async and sync handlers) takes an ``AnyContext``; the concrete
classes add ``step``, ``send`` and ``call`` (awaitable on ``Context``, blocking on
``SyncContext``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol, TypedDict


class AnyContext(Protocol):
    """The invocation (``id``, ``service``, ``handler``, ``idempotency_key``, ``parent_id``,
    ``traceparent``) and this attempt (``attempt`` is 1-based, ``epoch`` its lease epoch,
    ``deadline`` unix seconds when it times out, or None)."""

    @property
    def id(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def handler(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def deadline(self) -> float | None: ...
    @property
    def idempotency_key(self) -> str | None: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def traceparent(self) -> str | None: ...


class SendOptions(TypedDict, total=False):
    """Options of ``ctx.send``: ``key`` names the child (default: its call order), ``delay``
    (seconds or timedelta) runs it no sooner than that."""

    key: str | None
    delay: float | timedelta | None


class CallOptions(TypedDict, total=False):
    """Options of ``ctx.call``: ``key`` as for send, ``timeout`` in seconds (default: the rest of
    this attempt's time)."""

    key: str | None
    timeout: float | None
