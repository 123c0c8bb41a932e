"""Durable waits of one attempt: what a handler awaits that lives outside it (a child's outcome,
a timer, a promise), and the decision to suspend.

Every durable await is an ``Item``: the inbox field its answer is journaled under
(``lua/lib/wake.lua`` lists the kinds). An item already answered in the journal returns at once
(a replay). Otherwise it waits in memory for a grace period (``suspend_after``): a child that
finishes meanwhile is read from its record (a failure is journaled by the waiting parent itself,
with the ``wake`` script, first value stands; a success is final and the relay journals it), a
promise or a timer likewise. When the grace passes, or
the worker has work waiting for a slot (``pressure``), every pending await of the attempt is
answered with ``Suspend``: the handler unwinds, and settle writes the ``suspend`` script, which
lists the items (``waits``) in the record. What ends the wait then re-triggers the invocation
(``wake``, or ``promote`` for timers), and the next attempt replays to where it stopped.

Only ``ctx`` awaits are durable: anything else the handler awaits next to them is abandoned when
it suspends (put side effects in ``ctx.step``: an attempt never suspends while a step runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from reliq.backoff import Backoff
from reliq.client.outcome import Outcome, read
from reliq.errors import TRANSIENT, Cancelled
from reliq.store.keys import ServiceKeys
from reliq.worker.limits import Limiter

if TYPE_CHECKING:
    from reliq.client import Client

log = logging.getLogger("reliq.worker.waits")
RECHECK = 2.0  # seconds between re-reads of what an attempt waits for (pub/sub is lossy)


class Suspend(BaseException):
    """Raised into a handler's pending durable awaits when its attempt suspends (a
    ``BaseException``: ``except Exception`` in a handler does not swallow it)."""

    def __init__(self, waits: bytes, detail: str) -> None:
        super().__init__(detail)
        self.waits = waits
        self.detail = detail


@dataclass(eq=False)
class Item:
    """One durable await: its inbox field, whether it ends the wait alone (a deadline, a
    promise), a timer's due time (server ms), the child whose record answers it."""

    field: str
    alone: bool = False
    due: int = 0
    child: str | None = None
    fut: asyncio.Future[bytes] | None = None
    added: float = 0.0  # when it started waiting (monotonic)

    def __post_init__(self) -> None:
        self.added = time.monotonic()


def as_value(out: Outcome) -> bytes | None:
    """A finished child's outcome as an inbox value (what the relay would deliver)."""
    if out.state == "succeeded":
        return b"S" + out.result
    if out.state == "failed":
        return b"F" + (out.error or b"{}")
    if out.state == "cancelled":
        return b"C" + (out.error or b"{}")
    return None


class Waits:
    """The durable waits of one attempt, and its suspension."""

    def __init__(
        self,
        client: Client,
        keys: ServiceKeys,
        invocation_id: str,
        *,
        grace: float,
        deadline: float | None,
        limiter: Limiter | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.id = invocation_id
        self.grace = grace
        self.deadline = deadline  # the attempt's timeout (unix s): suspend before it hits
        self.limiter = limiter  # contended: work waits for a slot, suspend at once
        self.offset_ms = 0  # server clock minus ours (set by the timer script's answers)
        self.pending: list[Item] = []
        self.suspended: Suspend | None = None
        self.cancel_seen = False  # the handler was shown Cancelled: the attempt ends cancelled
        self.touched = False  # this attempt wrote a journal key (steps, children, inbox)
        self.busy = 0  # steps running now: the attempt does not suspend under a running step
        self._wake = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        # journals where a cancel is shown before it is raised (the Context's, cancelpoint.py)
        self.on_cancel: Callable[[list[str]], Awaitable[None]] | None = None
        self._showing: asyncio.Task[None] | None = None

    def server_ms(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    async def wait(self, item: Item) -> bytes:
        """Until the item is answered (its inbox value), or the attempt suspends or is
        cancelled (raises ``Suspend`` / ``Cancelled``)."""
        return (await self.first([item]))[1]

    async def first(self, items: list[Item]) -> tuple[Item, bytes]:
        """Until one of ``items`` is answered: (that item, its inbox value)."""
        if self.suspended is not None:
            raise self.suspended
        loop = asyncio.get_running_loop()
        futs = []
        for item in items:
            item.fut = loop.create_future()
            futs.append(item.fut)
            self.pending.append(item)
        self._wake.set()
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name=f"reliq:waits:{self.id}")
        try:
            await asyncio.wait(futs, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for item in items:
                if item in self.pending:
                    self.pending.remove(item)
        for item in items:  # mark the losers' exceptions (Suspend, Cancelled) retrieved
            if item.fut is not None and item.fut.done() and not item.fut.cancelled():
                item.fut.exception()
        winner = next(i for i in items if i.fut is not None and i.fut.done())
        assert winner.fut is not None
        return winner, winner.fut.result()

    def deliver_cancel(self) -> bool:
        """A cancel of this invocation: raise ``Cancelled`` at every pending durable await, once
        ``on_cancel`` journaled where (``reliq.worker.cancelpoint``). False when nothing is
        pending (the caller cancels the handler task instead)."""
        if not self.pending:
            return False
        self.cancel_seen = True
        items = list(self.pending)
        self.pending.clear()  # once: the compensation after it awaits normally
        self._showing = asyncio.get_running_loop().create_task(self._show_cancel(items))
        return True

    async def _show_cancel(self, items: list[Item]) -> None:
        shown: BaseException = Cancelled(f"invocation {self.id} cancelled")
        try:
            if self.on_cancel is not None:
                await self.on_cancel([i.field for i in items])
        except Cancelled:
            pass  # journaled: now raise it where the handler waits
        except BaseException as e:  # fenced (LeaseLost), or Redis gone past the journal's patience
            shown = e
        for item in items:
            if item.fut is not None and not item.fut.done():
                item.fut.set_exception(shown)
                item.fut.exception()  # retrieved: its await may be gone (a gather unwound)

    def step_done(self) -> None:
        """A step finished: the watcher may suspend now if it was waiting for that."""
        self.busy -= 1
        self._wake.set()

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()

    async def _watch(self) -> None:
        """Re-read the pending items until each is answered or the attempt suspends. A Redis
        error does not end it (the handler would wait forever, its lease renewed): it re-reads
        after a backoff, and the grace period runs on meanwhile, so a long outage suspends the
        attempt. Any other error fails the pending awaits (the attempt is retried)."""
        unhook = self.limiter.listen(self._wake) if self.limiter is not None else None
        retry = Backoff(first=0.05, cap=RECHECK)
        failing = False
        try:
            with contextlib.ExitStack() as watching:
                watched: set[str] = set()
                while self.pending:
                    self._wake.clear()
                    try:
                        for item in list(self.pending):
                            ch = item.child or self.id
                            if ch not in watched:
                                channel = self.client.keys_of(ch).done_channel
                                w = watching.enter_context(self.client.waiters.watch(ch, channel))
                                w.woken = self._wake
                                watched.add(ch)
                                await self.client.waiters.subscribe(channel)  # a re-read covers a miss
                        await self._probe()
                        failing = False
                        retry.reset()
                    except TRANSIENT as e:
                        failing = True
                        log.warning("re-reading the waits of %s failed (%s); retrying", self.id, e)
                    if not self.pending:
                        return
                    now = time.monotonic()
                    suspend_at = max(i.added for i in self.pending) + self.grace
                    if self.deadline is not None:
                        suspend_at = min(suspend_at, now + self.deadline - time.time() - 0.5)
                    pressed = self.limiter is not None and self.limiter.contended
                    if (now >= suspend_at or pressed) and not self.busy:
                        self._suspend()
                        return
                    pause = min(RECHECK, suspend_at - now)
                    if failing:
                        pause = min(pause, retry.next())
                    dues = [i.due for i in self.pending if i.due]
                    if dues:
                        pause = min(pause, max(0.0, (min(dues) - self.server_ms()) / 1000))
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(pause):
                            await self._wake.wait()
        except Exception as e:
            log.exception("the waits of %s failed", self.id)
            for item in self.pending:
                if item.fut is not None and not item.fut.done():
                    item.fut.set_exception(e)
            self.pending.clear()
        finally:
            if unhook is not None:
                unhook()

    async def _probe(self) -> None:
        """Answer every pending item that is ready: a finished child (journaled here: the first
        value in the inbox stands), a promise in the inbox, a timer that is due."""
        now = self.server_ms()
        fields = [i.field for i in self.pending if i.child is None and not i.due]
        inbox = await self.client.redis.hmget(self.keys.inbox(self.id), fields) if fields else []
        values = dict(zip(fields, inbox, strict=True))
        for item in list(self.pending):
            value: bytes | None = None
            if item.child is not None:
                out = await read(self.client, item.child)
                value = as_value(out) if out is not None else None
                if value is not None and value[:1] != b"S":
                    # a failure is journaled here, so that a redrive of the child cannot change
                    # what a replay of this parent sees; a success is final, and the relay
                    # delivers the same value into the inbox (one round trip less per call)
                    value = await self.journal(item.field, value)
            elif item.due:
                value = b"T" if now >= item.due else None
            else:
                value = values.get(item.field)
            if value is not None and item in self.pending:
                self.pending.remove(item)
                if item.fut is not None and not item.fut.done():
                    item.fut.set_result(value)

    async def journal(self, field_name: str, value: bytes) -> bytes:
        """Journal a child's outcome in the inbox (``wake``: the first value stands, and that
        one is returned)."""
        self.touched = True
        status = await self.client.scripts.wake(self.keys, self.id, field_name, value, self.id)
        if status == "duplicate":
            first = await self.client.redis.hget(self.keys.inbox(self.id), field_name)
            return bytes(first) if first is not None else value
        return value

    def _suspend(self) -> None:
        waits = [[i.field, 1 if i.alone else 0, i.due] for i in self.pending]
        detail = ", ".join(i.field for i in self.pending)[:200]
        self.suspended = Suspend(msgspec.json.encode(waits), detail)
        for item in self.pending:
            if item.fut is not None and not item.fut.done():
                item.fut.set_exception(self.suspended)
                item.fut.exception()  # retrieved: its await may be gone (a gather unwound)
        self.pending.clear()
