"""Execute one claimed invocation: decode its input, run the handler under its timeout, and turn
what happened into an outcome for ``settle`` (complete / retry later / park / abandon)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import msgspec

from reliq import codec, tracing
from reliq.errors import LeaseLost, Retry, Terminal
from reliq.service import Handler, Policy
from reliq.worker.context import Context, SyncContext
from reliq.worker.runtime import InFlight, Runtime
from reliq.worker.settle import Settler

log = logging.getLogger("reliq.worker.execute")


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


def error_doc(exc: BaseException, *, status: int | None = None) -> bytes:
    tb = "".join(traceback.format_exception(exc))[-8000:]
    return codec.encode(
        {"type": type(exc).__name__, "message": str(exc)[:2000], "traceback": tb, "status": status}
    )


def backoff(policy: Policy, attempt: int) -> float:
    """Exponential backoff with jitter: base * 2^(attempt-1), capped, times a factor in [0.5, 1)."""
    delay = min(policy.backoff_max, policy.backoff_base * 2.0 ** (attempt - 1))
    return float(delay * (0.5 + random.random() / 2))


class Executor:
    def __init__(self, rt: Runtime, settler: Settler) -> None:
        self.rt = rt
        self.settler = settler
        self.threads = ThreadPoolExecutor(
            max_workers=rt.config.sync_concurrency, thread_name_prefix="reliq-sync"
        )

    def start(self, flight: InFlight, c: Claimed) -> None:
        """Run ``c`` as its own task (so it can be cancelled), tracked in the in-flight table."""
        self.rt.inflight[c.id] = flight
        flight.task = asyncio.create_task(self._run(flight, c), name=f"reliq:{c.id}")

    async def _run(self, f: InFlight, c: Claimed) -> None:
        try:
            await self._execute(f, c)
        finally:
            self.rt.inflight.pop(c.id, None)
            self.rt.slot_freed.set()

    async def _execute(self, f: InFlight, c: Claimed) -> None:
        k = f.keys
        h = self.rt.app.handler(k.service, c.handler)
        if h is None:
            err = codec.encode({"type": "UnknownHandler", "message": f"no handler {k.service}.{c.handler}"})
            f.settling = True
            await self._fail(f, c, Policy(), err)
            return
        f.settling = True  # from here on until the handler runs, a cancel must not interrupt a write
        if c.crashes >= h.policy.max_deliveries:
            err = codec.encode(
                {
                    "type": "CrashLoop",
                    "message": f"worker died or lost its lease {c.crashes} times while running this",
                }
            )
            await self.settler.park(k, c.id, c.entry, c.epoch, "crash-loop", err)
            return
        try:
            args: tuple[Any, ...] = (h.decode_input(c.payload),) if h.takes_input else ()
        except msgspec.MsgspecError as e:
            await self.settler.park(k, c.id, c.entry, c.epoch, "invalid-input", error_doc(e, status=422))
            return
        f.settling = False
        try:
            value = await self._invoke(h, c, args)
            result = codec.encode(value)
        except asyncio.CancelledError:
            if f.lease_lost:
                return  # someone else owns it now; commit nothing
            if f.cancel_requested:
                self.settler.complete(k, c.id, c.entry, c.epoch, "cancelled", b"")
                return
            raise  # shutdown: leave the entry pending for another worker
        except LeaseLost:
            log.warning("lease lost on %s; not committing", c.id)
            return
        except Exception as e:
            f.settling = True
            if isinstance(e, Retry):
                await self._retry(f, c, h.policy, error_doc(e), e.delay)
            elif isinstance(e, Terminal):
                await self.settler.park(k, c.id, c.entry, c.epoch, "terminal", error_doc(e, status=e.status))
            else:
                await self._fail(f, c, h.policy, error_doc(e))
            return
        self.settler.complete(k, c.id, c.entry, c.epoch, "succeeded", result)

    async def _invoke(self, h: Handler, c: Claimed, args: tuple[Any, ...]) -> Any:
        if not tracing.active():
            return await self._call(h, c, args, c.trace)
        attributes = {"reliq.invocation_id": c.id, "reliq.attempt": c.attempt, "reliq.epoch": c.epoch}
        with tracing.span(f"reliq.run {h.service}.{h.name}", c.trace or "", "consumer", attributes) as tp:
            return await self._call(h, c, args, tp or None)

    async def _call(self, h: Handler, c: Claimed, args: tuple[Any, ...], trace: str | None) -> Any:
        timeout = h.policy.timeout
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
        )
        call: Callable[[], Any]
        if h.is_async:
            call = partial(h.fn, ctx, *args)
        else:
            loop = asyncio.get_running_loop()
            sync_ctx = SyncContext(ctx, loop)
            call = partial(loop.run_in_executor, self.threads, partial(h.fn, sync_ctx, *args))
        if timeout:
            async with asyncio.timeout(timeout):
                return await call()
        return await call()

    async def _fail(self, f: InFlight, c: Claimed, policy: Policy, err: bytes) -> None:
        if c.attempt >= policy.max_attempts:
            await self.settler.park(f.keys, c.id, c.entry, c.epoch, "attempts-exhausted", err)
        else:
            await self._retry(f, c, policy, err, backoff(policy, c.attempt))

    async def _retry(self, f: InFlight, c: Claimed, policy: Policy, err: bytes, delay: float) -> None:
        if c.attempt >= policy.max_attempts:
            await self.settler.park(f.keys, c.id, c.entry, c.epoch, "attempts-exhausted", err)
            return
        await self.settler.retry(f.keys, c.id, c.entry, c.epoch, delay, err)

    def close(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)
