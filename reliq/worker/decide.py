"""What becomes of an attempt: a pure decision from the handler's policy, the claimed attempt and
what happened (a result or an exception) to one ``Outcome``. No Redis, no clock, no I/O: execute
runs the handler and asks ``decide``; settle writes the outcome (and is the only writer).

- returned a value: ``Complete("succeeded", result)``
- cancelled on request while its handler ran outside a durable await (a plain ``await``, a step
  body: the task got a bare ``CancelledError``, which ``except Cancelled`` does not catch):
  ``RetryLater(0, interrupted=True)``; retry.lua ends it ``cancelled`` when it has no journal
  (nothing durable to undo), else queues it at once, and the claim runs it to compensate: the
  replay is shown ``Cancelled`` at the first operation the journal cannot answer
- raised ``Retry(delay)``: ``RetryLater(delay)``, or ``Park("attempts-exhausted")`` at
  ``max_attempts``
- raised ``Terminal(status)``: ``Park("terminal")``, the status kept in the error
- raised anything else (a timeout included): ``RetryLater(backoff)``, or
  ``Park("attempts-exhausted")`` at ``max_attempts``
- the input does not decode: ``Park("invalid-input")``, status 422
- a child's failure escaped (``ChildFailed``/``ChildCancelled``): ``Park("child-failed")`` at once
  (a replay would meet the same journaled failure); a replay that asked for another child than
  the journal holds (``Nondeterminism``): ``Park("nondeterminism")``
- its durable awaits are pending past the grace (``Suspend``): ``Suspended`` (what it waits for)
- cancelled (a cancel request, a compensating run): ``Complete("cancelled")`` whatever the
  handler did after it saw ``Cancelled``, unless its compensation raised an error that another
  run may not meet (not a child's failure, ``Nondeterminism`` or ``Terminal``; its grace's
  timeout included) before ``max_attempts``: then ``RetryLater(compensate=True)``, and the next
  run replays to where the compensation stopped
- the lease is lost, or the worker shuts down: ``Abandon`` (nothing written; the entry stays
  pending and is released or reclaimed)
- before running (``admit``): no such handler is a failure under the default policy (a newer
  worker may know it); ``max_deliveries`` crashes park it as ``"crash-loop"``
"""

from __future__ import annotations

import asyncio
import random
import traceback
from typing import Literal

import msgspec

from reliq.errors import Cancelled, ChildFailed, LeaseLost, Nondeterminism, Retry, Terminal
from reliq.service import Policy
from reliq.store.record import ErrorInfo
from reliq.worker.waits import Suspend

# errors a replay of the handler meets again: a compensation that raised one is not run again
FINAL = (ChildFailed, Nondeterminism, Terminal)
# a cancel that interrupted the handler outside a durable await (the record's error meanwhile)
INTERRUPTED = ErrorInfo(type="Cancelled", message="cancelled while it ran; compensates if it has a journal")


class Claimed(msgspec.Struct, frozen=True, kw_only=True):
    """One entry the claim script handed to this worker."""

    id: str
    entry: str
    epoch: int
    handler: str
    payload: bytes
    attempt: int
    crashes: int
    deliveries: int
    parent: str | None
    key: str | None
    trace: str | None = None
    scheduled_ms: int | None = None  # the schedule tick this invocation is (cron)
    compensating: bool = False  # a cancel was requested: run to let the handler compensate
    priority: str = "normal"  # the level of the stream it was read from


class Complete(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Final: the handler returned (``result`` is its JSON), or it was cancelled on request."""

    state: Literal["succeeded", "cancelled"]
    result: bytes = b""


class RetryLater(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Run again after ``delay`` seconds (the attempt counts)."""

    delay: float
    error: ErrorInfo
    compensate: bool = False  # a compensation failed: the cancel waits for the next run
    interrupted: bool = False  # a cancel interrupted it: it runs again to compensate if it has a journal


class Park(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Failed for good: parked until an operator redrives or discards it."""

    reason: Literal[
        "terminal", "attempts-exhausted", "invalid-input", "crash-loop", "child-failed", "nondeterminism"
    ]
    error: ErrorInfo


class Suspended(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Its durable awaits are not ready: end the attempt without holding a slot (``waits`` is the
    record's ``waits`` JSON, ``detail`` a short text for the timeline)."""

    waits: bytes
    detail: str


class Abandon(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Write nothing: the lease is gone (another worker owns it) or the worker is shutting down
    (the entry stays pending and is released or reclaimed)."""

    reason: Literal["lease-lost", "shutdown"]


Outcome = Complete | RetryLater | Park | Suspended | Abandon


class InvalidInput(Exception):
    """The stored payload does not decode into the handler's input type."""

    def __init__(self, error: msgspec.MsgspecError) -> None:
        super().__init__(str(error))
        self.error = error


def error_info(exc: BaseException, *, status: int | None = None) -> ErrorInfo:
    """The error document of a failed attempt (message and traceback capped). An exception
    whose ``__str__`` itself raises still gets one (it had left the entry unsettled)."""
    try:
        message = str(exc)
        tb = "".join(traceback.format_exception(exc))
    except Exception as e:  # the user's exception cannot describe itself
        message = f"<str() of {type(exc).__name__} raised {type(e).__name__}>"
        tb = "".join(traceback.format_tb(exc.__traceback__))
    return ErrorInfo(type=type(exc).__name__, message=message[:2000], traceback=tb[-8000:], status=status)


def backoff(policy: Policy, attempt: int) -> float:
    """Exponential backoff with jitter: base * 2^(attempt-1), capped, times a factor in [0.5, 1)."""
    delay = min(policy.backoff_max, policy.backoff_base * 2.0 ** (attempt - 1))
    return float(delay * (0.5 + random.random() / 2))


def admit(policy: Policy | None, c: Claimed, service: str) -> Outcome | None:
    """Before running: ``None`` when the handler may run, else the outcome instead of running.
    ``policy`` is None when this worker has no such handler."""
    if policy is None:
        unknown = ErrorInfo(type="UnknownHandler", message=f"no handler {service}.{c.handler}")
        return _failed(Policy(), c, unknown, backoff(Policy(), c.attempt))
    if c.crashes >= policy.max_deliveries:
        message = f"worker died or lost its lease {c.crashes} times while running this"
        return Park(reason="crash-loop", error=ErrorInfo(type="CrashLoop", message=message))
    return None


def decide(
    policy: Policy,
    c: Claimed,
    happened: bytes | BaseException,
    *,
    cancel_requested: bool = False,
    lease_lost: bool = False,
    compensating: bool = False,
) -> Outcome:
    """The outcome of one attempt: ``happened`` is the encoded result, or what was raised
    (``InvalidInput`` when the payload did not decode, ``CancelledError`` when the task was
    cancelled: by a cancel request, a lost lease, or the worker's shutdown). ``compensating``: the
    handler was shown ``Cancelled`` (a claim to compensate, or a cancel raised into its waits)."""
    if lease_lost or isinstance(happened, LeaseLost):
        return Abandon(reason="lease-lost")
    if isinstance(happened, Suspend):
        return Suspended(waits=happened.waits, detail=happened.detail)
    if compensating or c.compensating:
        shutdown = isinstance(happened, asyncio.CancelledError) and not isinstance(happened, Cancelled)
        if shutdown and not cancel_requested:
            return Abandon(reason="shutdown")
        again = c.attempt < policy.max_attempts and not isinstance(happened, FINAL)
        if isinstance(happened, Exception) and again:
            return RetryLater(delay=backoff(policy, c.attempt), error=error_info(happened), compensate=True)
        return Complete(state="cancelled")
    if isinstance(happened, bytes):
        return Complete(state="succeeded", result=happened)
    if isinstance(happened, asyncio.CancelledError):
        if cancel_requested:  # outside a durable await: compensated in a run of its own, if needed
            return RetryLater(delay=0, error=INTERRUPTED, interrupted=True)
        return Abandon(reason="shutdown")
    if isinstance(happened, ChildFailed):
        return Park(reason="child-failed", error=error_info(happened))
    if isinstance(happened, Nondeterminism):
        return Park(reason="nondeterminism", error=error_info(happened))
    if isinstance(happened, InvalidInput):
        return Park(reason="invalid-input", error=error_info(happened.error, status=422))
    if isinstance(happened, Terminal):
        return Park(reason="terminal", error=error_info(happened, status=happened.status))
    delay = happened.delay if isinstance(happened, Retry) else backoff(policy, c.attempt)
    return _failed(policy, c, error_info(happened), delay)


def _failed(policy: Policy, c: Claimed, error: ErrorInfo, delay: float) -> Outcome:
    if c.attempt >= policy.max_attempts:
        return Park(reason="attempts-exhausted", error=error)
    return RetryLater(delay=delay, error=error)
