"""What every handler context has, async (``reliq.Context``) or sync (``reliq.SyncContext``):
the invocation's identity and this attempt's lease. Code that only reads these (a logging
helper, a function shared by async and sync handlers) takes an ``AnyContext``; the concrete
classes add ``step``, ``send`` and ``call`` (awaitable on ``Context``, blocking on
``SyncContext``)."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypedDict


class AnyContext(Protocol):
    """The invocation (``id``, ``service``, ``handler``, ``idempotency_key``, ``parent_id``,
    ``traceparent``, ``scheduled_for``: the tick of the schedule that placed it, aware UTC, or
    None) and this attempt (``attempt`` is 1-based, ``epoch`` its lease epoch,
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
    @property
    def scheduled_for(self) -> datetime | None: ...


class SendOptions(TypedDict, total=False):
    """Options of ``ctx.send``: ``key`` names the child (default: its call order), ``delay``
    (seconds or timedelta) runs it no sooner than that, ``priority`` ``"high"|"normal"|"low"``
    (default: the parent's when it is high or low, else the child handler's default)."""

    key: str | None
    delay: float | timedelta | None
    priority: Literal["high", "normal", "low"] | None


class CallOptions(TypedDict, total=False):
    """Options of ``ctx.call``: ``key`` as for send, ``timeout`` in seconds (a durable deadline;
    default: none, the wait suspends for as long as the child takes), ``cancel_on_timeout``
    (default True: a child past its deadline is cancelled)."""

    key: str | None
    timeout: float | None
    cancel_on_timeout: bool
    priority: Literal["high", "normal", "low"] | None


def mark_target(fn: Any, service: str, handler: str) -> None:
    """Remember on a handler function which service and handler it is registered as, so that
    it can be called by reference: ``ctx.call(place, order)``, ``client.send(place, order)``."""
    with contextlib.suppress(AttributeError, TypeError):  # a callable that takes no attributes
        fn.__reliq_target__ = (service, handler)


def target_of(fn: Any) -> tuple[str, str]:
    """(service, handler) of a function registered with ``Service.handler``."""
    target = getattr(fn, "__reliq_target__", None)
    if target is None:
        raise TypeError(f"{fn!r} is not a reliq handler (register it with @service.handler)")
    return (str(target[0]), str(target[1]))


def resolve_target(target: Any, handler: Any, payload: Any) -> tuple[str, str, Any]:
    """(service, handler, payload) of ``send``/``call``'s arguments: names, or a handler function
    followed by the payload."""
    if isinstance(target, str):
        if not isinstance(handler, str):
            raise TypeError("call by name: (service, handler, payload)")
        return target, handler, payload
    service, name = target_of(target)
    return service, name, handler
