"""Exceptions handlers raise to steer their invocation, and the ones reliq raises to callers.

Every exception reliq defines is a ``ReliqError`` (so ``except ReliqError`` catches them all),
except ``Cancelled``, which is an ``asyncio.CancelledError`` so that ``except Exception`` does not
swallow a cancellation. Bad input (a malformed name, schedule or callback URL) is also a
``ValueError``, an unknown invocation also a ``LookupError``."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    RedisClusterException,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Redis errors a loop waits out and retries: the server or a node is unreachable, slow, loading,
# or a Cluster is failing over or moving slots (CLUSTERDOWN, TRYAGAIN, MOVED/ASK, no node for a
# slot). Anything else (a script error, OOM, NOGROUP) is handled where it can happen.
TRANSIENT: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    OSError,
    ClusterDownError,
    TryAgainError,
    AskError,
    RedisClusterException,
)


class ReliqError(Exception):
    """The base of every exception reliq defines (but ``Cancelled``, see above)."""


class Retry(ReliqError):
    """Raise in a handler to ask for another attempt after ``delay`` (seconds or timedelta).

    >>> raise Retry(delay=10)   # try again in 10 s; counts as an attempt
    """

    def __init__(self, message: str = "retry requested", *, delay: float | timedelta = 0.0) -> None:
        super().__init__(message)
        self.delay = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)


class Terminal(ReliqError):
    """Raise in a handler to fail the invocation at once, without retries (it is parked).

    ``status`` is the HTTP status the gateway reports for it (default 500).

    >>> raise Terminal("card declined", status=402)
    """

    def __init__(self, message: str = "terminal error", *, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


class IdempotencyConflict(ReliqError):
    """The idempotency key was already used with a different handler or payload."""

    def __init__(self, invocation_id: str) -> None:
        super().__init__(
            f"idempotency key already used with a different payload (invocation {invocation_id})"
        )
        self.invocation_id = invocation_id


class UnknownInvocation(LookupError, ReliqError):
    """No invocation with that id exists (never registered, or expired after the retention)."""


class InvocationFailed(ReliqError):
    """The invocation ended ``failed`` or ``cancelled``; ``error`` is its stored error document."""

    def __init__(self, invocation_id: str, state: str, error: dict[str, object] | None) -> None:
        message = (error or {}).get("message", "") if error else ""
        super().__init__(f"invocation {invocation_id} {state}: {message}")
        self.invocation_id = invocation_id
        self.state = state
        self.error = error or {}


class InvocationCancelled(InvocationFailed):
    """The invocation ended ``cancelled`` (an ``InvocationFailed`` with state ``cancelled``)."""


class ChildFailed(InvocationFailed):
    """Raised at a parent's ``await ctx.call``/``ctx.result`` when the child ended failed; a
    parent that lets it escape is parked at once with reason ``child-failed``."""


class ChildCancelled(InvocationCancelled, ChildFailed):
    """Raised at a parent's await when the child ended cancelled (escaping: ``child-failed``)."""


def child_outcome(invocation_id: str, state: str, error: dict[str, object] | None) -> InvocationFailed:
    """The exception a parent sees for a child that ended ``failed`` or ``cancelled``."""
    cls = ChildCancelled if state == "cancelled" else ChildFailed
    return cls(invocation_id, state, error)


class Cancelled(asyncio.CancelledError):
    """Raised in a handler at its current durable await (``ctx.call``, ``ctx.sleep``,
    ``ctx.promise``, ...) when its invocation is cancelled. Catch it to compensate (steps and sends
    still work, within the worker's ``cancel_grace``); the invocation ends ``cancelled`` either
    way. A subclass of ``asyncio.CancelledError``: code that handles that handles this too."""


class Nondeterminism(ReliqError):
    """A replay of the handler asked for another child than its journal recorded at that
    position: the code changed under a running invocation, or depends on something that is not
    journaled. The invocation is parked with reason ``nondeterminism``."""


class PromiseRejected(ReliqError):
    """``await ctx.promise(name)`` when the promise was rejected: ``message`` says why."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"promise {name!r} rejected: {message}")
        self.name = name
        self.message = message


class PromiseAlreadySettled(ReliqError):
    """The promise was resolved or rejected before; the first value stands."""


class LeaseLost(ReliqError):
    """This worker no longer holds the invocation (another worker reclaimed it); stop, commit nothing."""


class NotConfirmed(ReliqError):
    """A registration batch was sent but its durability was not confirmed (fewer replicas
    acknowledged it than asked for, or a Cluster's slot moved under it): the invocations may or
    may not exist. Re-sending the same registrations (same ids and keys) is safe and converges."""


class Backpressure(ReliqError):
    """The service holds as many queued invocations as its ``max_queued`` allows: this one was
    refused and nothing was written. Send it again after ``retry_after`` seconds (an idempotency
    key makes the re-send safe); the gateway answers 429 with ``Retry-After``."""

    def __init__(self, service: str, retry_after: float = 1.0) -> None:
        super().__init__(f"{service} is at its limit of queued invocations; retry in {retry_after:g} s")
        self.service = service
        self.retry_after = retry_after
