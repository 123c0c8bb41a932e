"""What a handler sees: ``ctx``. Steps, children, timers and promises, all journaled and fenced
by the attempt's lease epoch; a replay returns what the journal holds and goes on from there.

The journal of an invocation is three keys in its slot: ``steps`` (step results), ``children``
(child ids by call order) and ``inbox`` (what it awaited and got: child outcomes, promises,
timers; ``lua/lib/wake.lua``). Remote waits go through ``reliq.worker.waits``, which suspends the
attempt when they last longer than the grace period.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, Unpack, overload

from reliq import codec
from reliq.context import CallOptions, SendOptions, resolve_target
from reliq.errors import IdempotencyConflict, LeaseLost, Nondeterminism, PromiseRejected
from reliq.store.keys import check_name
from reliq.store.priority import check_priority
from reliq.worker.attempt import Attempt
from reliq.worker.cancelpoint import CancelPoints
from reliq.worker.journal import child_value
from reliq.worker.limits import Limiter
from reliq.worker.waits import Item

if TYPE_CHECKING:
    from reliq.client import Client

log = logging.getLogger("reliq.worker.context")
SUSPEND_AFTER = 1.0  # seconds a durable await waits in memory before the attempt suspends
P = ParamSpec("P")
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741
R = TypeVar("R")


class Context(CancelPoints):
    """The handler's view of its invocation.

    ``id``, ``service``, ``handler``, ``attempt`` (1-based), ``epoch`` (the attempt's lease
    epoch), ``deadline`` (unix seconds when this attempt times out, or None),
    ``idempotency_key``, ``parent_id``, ``traceparent`` and ``scheduled_for`` (the tick of a
    schedule that placed it) describe it (``reliq.context.AnyContext``
    is what it shares with ``SyncContext``); ``step``, ``send``, ``call``, ``result``, ``sleep``,
    ``sleep_until`` and ``promise`` make progress durable. ``cancelling`` is True in a run that
    was started to let the handler compensate for a cancel.
    """

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
        scheduled_ms: int | None = None,
        cancelling: bool = False,
        suspend_after: float = SUSPEND_AFTER,
        limiter: Limiter | None = None,
        priority: str = "normal",
    ) -> None:
        Attempt.__init__(self, client, id, epoch, deadline, fresh, suspend_after, limiter)
        self.priority = priority  # the level it was read at; its children inherit high or low
        self.service = service
        self.handler = handler
        self.attempt = attempt
        self.idempotency_key = idempotency_key
        self.parent_id = parent_id
        self.traceparent = traceparent
        # the tick of a schedule this invocation is (aware, UTC); None when not started by one
        self.scheduled_for = (
            None if scheduled_ms is None else datetime.fromtimestamp(scheduled_ms / 1000, UTC)
        )
        self.cancelling = self.compensating = cancelling
        self._shown = set()  # operations shown Cancelled in this run (reliq.worker.cancelpoint)

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
        side effects an idempotency key (``f"{ctx.id}:{name}"``). A name used again in one run is
        the next step of that name (journaled ``name#2``, ...)."""
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            raise ValueError("step name must be 1-200 characters")
        name = self._step_key(name)
        await self._j.load()
        self._at_point(f"s:{name}")
        if name in self._j.steps:
            return codec.decode(self._j.steps[name])
        await self._not_journaled(f"s:{name}")
        self._check_lease()  # a worker resumed past its lease runs no step body
        self.waits.busy += 1  # no suspension while the step runs and until it is journaled
        try:
            if inspect.iscoroutinefunction(fn):
                value = await fn(*args, **kwargs)
            else:
                value = await asyncio.to_thread(fn, *args, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
            encoded = codec.encode(value)
            self.waits.touched = True
            if not await self._j.step(name, encoded):
                raise LeaseLost(self.id)
        finally:
            self.waits.step_done()
        self._j.steps[name] = encoded
        return codec.decode(encoded)

    @overload
    async def send(
        self, target: Callable[[Any, I], Any], handler: I, /, **opts: Unpack[SendOptions]
    ) -> str: ...
    @overload
    async def send(
        self, target: str, handler: str, payload: Any = None, /, **opts: Unpack[SendOptions]
    ) -> str: ...
    async def send(
        self, target: Any, handler: Any = None, payload: Any = None, /, **opts: Unpack[SendOptions]
    ) -> str:
        """Start a child invocation; returns its id (await its result later with ``result``).
        ``target`` is a service name followed by the handler name and the payload, or a handler
        function (``ctx.send(place, order)``). The id derives from this invocation's id plus
        ``key`` (or the call order), so a replayed parent never creates it twice. ``delay``: run
        it no sooner than that (seconds or timedelta)."""
        return await self._send(self._j.next_order(), target, handler, payload, opts)

    async def _send(self, order: int, target: Any, handler: Any, payload: Any, opts: SendOptions) -> str:
        service, name, body = resolve_target(target, handler, payload)
        key, delay = opts.get("key"), opts.get("delay")
        priority = opts.get("priority") or (
            None if self.priority == "normal" else check_priority(self.priority)
        )
        if key is not None:
            codec.check_key(key)
            if key.startswith("#"):  # "#<n>" is the key of the n-th call without one
                raise ValueError(f"a child key may not start with '#' (reserved for the call order): {key!r}")
        j = self._j
        await j.load()
        encoded = codec.encode(body)
        ckey = key if key is not None else f"#{order}"
        cid = await self._client.child_id_for(service, self.id, ckey, handler=name, body=encoded)
        journaled, fp = j.children.get(order), codec.fingerprint(name, encoded)
        cid = j.child_at(order, cid, name, self.id, fp)
        self._at_point(f"o:{order}")
        if f"c:{cid}" in j.inbox:
            return cid  # finished: nothing to register
        if journaled is None:
            await self._not_journaled(f"o:{order}")
            self.waits.touched = True
            link = self._client.scripts.link_child
            linked = await link(self._keys, self.id, self.epoch, cid, order, name, fp)
            if linked == "fenced":
                raise LeaseLost(self.id)
            if linked == "cancelled":
                await self._show_cancel([f"o:{order}"])
            if linked != "linked":
                raise Nondeterminism(f"call #{order} of {self.id} was {linked}, the replay asks for {cid}")
            j.children[order] = cid
        try:
            await self._client.send_json(
                service,
                name,
                encoded,
                delay=delay,
                invocation_id=cid,
                parent=self.id,
                trace=self.traceparent,
                priority=priority,
            )
        except IdempotencyConflict:
            raise Nondeterminism(f"child {cid} was started with another handler or payload") from None
        return cid

    @overload
    async def call(
        self, target: Callable[[Any, I], Awaitable[R]], handler: I, /, **opts: Unpack[CallOptions]
    ) -> R: ...
    @overload
    async def call(
        self, target: str, handler: str, payload: Any = None, /, **opts: Unpack[CallOptions]
    ) -> Any: ...
    async def call(
        self, target: Any, handler: Any = None, payload: Any = None, /, **opts: Unpack[CallOptions]
    ) -> Any:
        """Start a child and wait for its result: ``send`` then ``result``. The wait is durable:
        past the grace period the invocation suspends (holding no worker) and resumes when the
        child ends. A failed or cancelled child raises ``InvocationFailed`` (``ChildFailed``,
        ``ChildCancelled``): catch it to compensate; if it escapes, this invocation is parked
        with reason ``child-failed``. ``timeout`` (seconds): a durable deadline; when it passes,
        ``TimeoutError`` is raised and the child cancelled (``cancel_on_timeout=False``: it runs on)."""
        order = self._j.next_order()
        timeout = opts.get("timeout")
        timer = self._j.next_timer() if timeout is not None else 0
        cid = await self._send(
            order, target, handler, payload, {"key": opts.get("key"), "priority": opts.get("priority")}
        )
        return await self._result(cid, timeout, timer, opts.get("cancel_on_timeout", True))

    async def result(
        self, child_id: str, *, timeout: float | None = None, cancel_on_timeout: bool = True
    ) -> Any:
        """The result of a child this invocation started (``send``), waiting durably (as ``call``)."""
        timer = self._j.next_timer() if timeout is not None else 0
        await self._j.load()
        if child_id not in self._j.children.values():
            raise ValueError(f"{child_id} is not a child of {self.id}")
        return await self._result(child_id, timeout, timer, cancel_on_timeout)

    async def _result(self, child_id: str, timeout: float | None, timer: int, cancel_on_timeout: bool) -> Any:
        field = f"c:{child_id}"
        item = Item(field, child=child_id)
        if timeout is None:
            self._at_point(field)
            value = self._j.inbox.get(field) or await self._finished_child(child_id, field)
            if value is None:
                await self._not_journaled(field)
                value = await self.waits.wait(item)
            won = True
        else:
            self._at_point(field, f"t:{timer}")
            won, value = await self._j.race(self.waits, item, timer, timeout, self._not_journaled)
        if won:
            if value[:1] == b"C":
                await self._child_cancelled(field)
            return child_value(child_id, value)
        if cancel_on_timeout:
            await self._client.cancel(child_id, who=f"parent {self.id}")
        raise TimeoutError(f"child {child_id} not finished after {timeout} s")

    async def sleep(self, duration: float | timedelta) -> None:
        """Sleep durably: past the grace period the invocation suspends, and a timer in Redis
        wakes it at the due time (across worker and server restarts)."""
        seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
        n = self._j.next_timer()
        await self._sleep(n, seconds)

    async def _sleep(self, n: int, seconds: float) -> None:
        await self._j.load()
        self._at_point(f"t:{n}")
        if f"t:{n}" in self._j.inbox:
            return
        due = await self._j.due(self.waits, n, seconds)
        if self.waits.server_ms() >= due:
            return
        await self._not_journaled(f"t:{n}")
        await self.waits.wait(Item(f"t:{n}", due=due))

    async def sleep_until(self, when: datetime) -> None:
        """Sleep durably until ``when`` (an aware datetime; naive means local time)."""
        n = self._j.next_timer()
        await self._j.server_offset(self.waits)
        await self._sleep(n, when.timestamp() - self.waits.server_ms() / 1000)

    async def promise(self, name: str, *, timeout: float | None = None) -> Any:
        """Wait durably for a value from outside: ``Client.resolve(id, name, value)`` or
        ``POST /invocations/{id}/promises/{name}``. A value resolved before this await is kept
        and returned at once. A rejection raises ``PromiseRejected``; ``timeout`` (seconds) a
        ``TimeoutError``."""
        check_name("promise", name)
        timer = self._j.next_timer() if timeout is not None else 0
        await self._j.load()
        field = f"p:{name}"
        item = Item(field, alone=True)
        if timeout is None:
            self._at_point(field)
            value = await self._j.inbox_value(field)
            if value is None:
                await self._not_journaled(field)
                value = await self.waits.wait(item)
        else:
            self._at_point(field, f"t:{timer}")
            won, value = await self._j.race(self.waits, item, timer, timeout, self._not_journaled)
            if not won:
                raise TimeoutError(f"promise {name!r} of {self.id} not resolved after {timeout} s")
        self._j.inbox[field] = value
        if value[:1] == b"R":
            raise PromiseRejected(name, str(codec.decode(value[1:]) or ""))
        return codec.decode(value[1:])
