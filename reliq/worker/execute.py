"""Execute one claimed invocation: decode its input, run the handler under its timeout (through
the tracing wrapper while OpenTelemetry records spans), ask ``decide`` what that makes of the
attempt, and hand the outcome to ``settle``. Execute itself writes nothing to Redis."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import msgspec

from reliq import codec
from reliq.service import Handler
from reliq.tracing import active
from reliq.worker.blocking import SyncContext, joined
from reliq.worker.context import Context
from reliq.worker.decide import Abandon, Claimed, Complete, InvalidInput, Outcome, admit, decide
from reliq.worker.inflight import InFlight, Runtime
from reliq.worker.settle import Settler
from reliq.worker.traced import HandlerCall, traced
from reliq.worker.waits import Suspend


class Executor:
    def __init__(self, rt: Runtime, settler: Settler) -> None:
        self.rt = rt
        self.settler = settler
        self.threads = ThreadPoolExecutor(
            max_workers=rt.config.sync_concurrency, thread_name_prefix="reliq-sync"
        )
        self._traced: HandlerCall = traced(self._call)
        self.call: HandlerCall = self._traced
        self.retrace()

    def retrace(self) -> None:
        """Choose the handler call for the next runs: through the tracing wrapper only while spans
        are recorded. Asked once per claimed batch (``consume.dispatch``), not per run: whether
        a provider is set costs an ``os.environ`` lookup and a few calls in OpenTelemetry."""
        self.call = self._traced if active() else self._call

    def start(self, flight: InFlight, c: Claimed, claimed_at: float) -> None:
        """Run ``c`` as its own task (so it can be cancelled), tracked in the in-flight table.
        The caller holds one limiter slot for it; the task gives it back when it ends.
        ``claimed_at``: ``time.monotonic()`` at the claim reply (the start of its sojourn)."""
        self.rt.inflight[c.id] = flight
        flight.task = asyncio.create_task(self._run(flight, c, claimed_at), name=f"reliq:{c.id}")

    async def _run(self, f: InFlight, c: Claimed, claimed_at: float) -> None:
        begun = time.monotonic()
        try:
            await self._execute(f, c)
        finally:
            self.rt.inflight.pop(c.id, None)
            self.rt.limiter.release()
            adapt = self.rt.adapt
            if adapt is not None:  # the sojourn, claim reply -> handler returned (and its outcome queued)
                limit = adapt.done(time.monotonic(), claimed_at, begun)
                if limit is not None:
                    self.rt.limiter.resize(limit)

    async def _execute(self, f: InFlight, c: Claimed) -> None:
        h = self.rt.app.handler(f.keys.service, c.handler)
        f.settling = True  # until the handler runs, a cancel must not interrupt a write
        refused = admit(h.policy if h else None, c, f.keys.service)
        if refused is not None:
            await self.settler.settle(f, refused)
            return
        assert h is not None  # admit refuses an unknown handler
        try:
            args: tuple[Any, ...] = (h.decode_input(c.payload),) if h.takes_input else ()
        except msgspec.MsgspecError as e:
            await self.settler.settle(f, decide(h.policy, c, InvalidInput(e)))
            return
        f.settling = False
        f.started = True
        if time.monotonic() >= f.lease_until:  # held past its lease before it started: not run
            f.lease_lost = True
        happened: bytes | BaseException
        if f.cancel_requested or f.lease_lost:
            happened = asyncio.CancelledError()  # asked before it started: as if at its first await
        else:
            try:
                happened = codec.encode(await self.call(h, c, args, c.trace))
            except (Exception, asyncio.CancelledError, Suspend) as e:
                happened = e
            finally:
                if f.waits is not None:
                    f.waits.close()
        f.settling = True
        if f.waits is not None and f.waits.touched:
            f.journal = True  # it wrote a journal key: settle expires it
        compensating = f.waits is not None and f.waits.cancel_seen
        suspended = f.waits.suspended if f.waits is not None else None
        # it suspended, whatever the handler made of that; but a compensating handler that ended
        # by itself has ended: a wait it left behind (the other branch of a gather) must not keep
        # a cancelled invocation suspended
        if suspended is not None and (isinstance(happened, Suspend) or not (compensating or c.compensating)):
            happened = suspended
        outcome = decide(
            h.policy,
            c,
            happened,
            cancel_requested=f.cancel_requested,
            lease_lost=f.lease_lost,
            compensating=compensating,
        )
        if isinstance(outcome, Complete):
            self.settler.complete(f, outcome)
        else:
            await self.settler.settle(f, outcome)
        if isinstance(happened, asyncio.CancelledError) and outcome == _SHUTDOWN:
            raise happened  # shutdown: leave the entry pending for another worker

    async def _call(self, h: Handler, c: Claimed, args: tuple[Any, ...], trace: str | None) -> Any:
        timeout = h.policy.timeout
        if c.compensating:
            timeout = min(timeout or math.inf, self.rt.config.cancel_grace)
        deadline = time.time() + timeout if timeout else None
        ctx = Context(
            self.rt.client,
            id=c.id,
            service=h.service,
            handler=h.name,
            attempt=c.attempt,
            epoch=c.epoch,
            deadline=deadline,
            idempotency_key=c.key,
            parent_id=c.parent,
            fresh=c.deliveries == 1,
            traceparent=trace,
            scheduled_ms=c.scheduled_ms,
            cancelling=c.compensating,
            suspend_after=h.policy.suspend_after
            if h.policy.suspend_after is not None
            else self.rt.config.suspend_after,
            limiter=self.rt.limiter,
            priority=c.priority,
        )
        flight = self.rt.inflight.get(c.id)
        if flight is not None:
            ctx.on_waits = partial(setattr, flight, "waits")
            ctx.holder = flight
            flight.journal = c.deliveries > 1  # a first delivery has none until ctx writes one
        call: Callable[[], Any]
        if h.is_async:
            call = partial(h.fn, ctx, *args)
        else:
            loop = asyncio.get_running_loop()
            sync_ctx = SyncContext(ctx, loop)
            body = partial(h.fn, sync_ctx, *args)
            if h.flow is not None and h.flow.key:  # it holds a permit: never ends before its thread
                try:
                    return await joined(self.threads, body, timeout, flight)
                finally:
                    ctx.ended = True
            call = partial(loop.run_in_executor, self.threads, body)
        try:
            if timeout:
                async with asyncio.timeout(timeout):
                    return await call()
            return await call()
        finally:
            ctx.ended = True

    def close(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)


_SHUTDOWN: Outcome = Abandon(reason="shutdown")
