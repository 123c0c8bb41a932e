"""execute + settle: results, retries with backoff, Retry/Terminal, parking, redrive, timeouts,
input decoding, sync handlers, idempotent execution of redelivered entries."""

import threading
import time

import msgspec
import pytest

from reliq import Context, Retry, Service, Terminal
from reliq.store.keys import ServiceKeys

from .conftest import Names, client, running, wait_until


class Order(msgspec.Struct):
    order_id: str
    amount_cents: int


async def test_handler_result_is_stored_and_the_entry_is_acked_and_deleted(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def place(ctx: Context, req: Order) -> dict[str, object]:
        return {"order": req.order_id, "amount": req.amount_cents, "attempt": ctx.attempt}

    async with running(svc, url), client(url) as c:
        acc = await c.send(svc.name, "place", {"order_id": "o1", "amount_cents": 5})
        assert await c.result(acc.id, 10) == {"order": "o1", "amount": 5, "attempt": 1}
        inv = await c.get(acc.id)
        assert inv is not None and inv.state == "succeeded" and inv.deliveries == 1
        assert await c.redis.xlen(ServiceKeys(svc.name).stream) == 0


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_failures_are_retried_with_backoff_until_success(url: str, names: Names) -> None:
    svc = Service(names())
    calls: list[float] = []

    @svc.handler(max_attempts=4, backoff_base=0.1)
    async def flaky(ctx: Context) -> int:
        calls.append(time.monotonic())
        if ctx.attempt < 3:
            raise RuntimeError(f"boom {ctx.attempt}")
        return ctx.attempt

    async with running(svc, url), client(url) as c:
        acc = await c.send(svc.name, "flaky")
        assert await c.result(acc.id, 15) == 3
        inv = await c.get(acc.id)
        assert inv is not None and inv.attempt == 3 and inv.error is not None
        assert inv.error.message == "boom 2"  # last error kept
    # exponential: >= 0.5 * 0.1 s, then >= 0.5 * 0.2 s
    assert calls[1] - calls[0] >= 0.05 and calls[2] - calls[1] >= 0.1


async def test_retry_exception_sets_the_delay(url: str, names: Names) -> None:
    svc = Service(names())
    calls: list[float] = []

    @svc.handler(max_attempts=3)
    async def later(ctx: Context) -> str:
        calls.append(time.monotonic())
        if ctx.attempt == 1:
            raise Retry(delay=0.4)
        return "done"

    async with running(svc, url), client(url) as c:
        acc = await c.send(svc.name, "later")
        assert await c.result(acc.id, 10) == "done"
    assert calls[1] - calls[0] >= 0.4


async def test_terminal_fails_at_once_and_parks_with_the_error(url: str, names: Names) -> None:
    svc = Service(names())
    runs = []

    @svc.handler(max_attempts=5)
    async def declined(ctx: Context) -> None:
        runs.append(1)
        raise Terminal("card declined", status=402)

    async with running(svc, url), client(url) as c:
        acc = await c.send(svc.name, "declined")
        inv = await wait_until(_when_state(c, acc.id, "failed"), what="failed")
        assert inv.reason == "terminal" and inv.attempt == 1 and len(runs) == 1
        assert inv.error.type == "Terminal" and inv.error.status == 402
        assert "card declined" in inv.error.message and "Traceback" in inv.error.traceback
        assert await c.parked(svc.name) == [acc.id]


def _when_state(c, inv_id: str, state: str):  # type: ignore[no-untyped-def]
    async def check():  # type: ignore[no-untyped-def]
        inv = await c.get(inv_id)
        return inv if inv is not None and inv.state == state else None

    return check


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_exhausted_attempts_park_and_redrive_runs_a_new_series(url: str, names: Names) -> None:
    svc = Service(names())
    healthy = threading.Event()
    attempts: list[int] = []

    @svc.handler(max_attempts=2, backoff_base=0.01)
    async def fragile(ctx: Context) -> str:
        attempts.append(ctx.attempt)
        if not healthy.is_set():
            raise ValueError("downstream unavailable")
        return "recovered"

    async with running(svc, url), client(url) as c:
        acc = await c.send(svc.name, "fragile")
        inv = await wait_until(_when_state(c, acc.id, "failed"), what="parked")
        assert inv.reason == "attempts-exhausted" and inv.attempt == 2 and attempts == [1, 2]
        assert inv.error.type == "ValueError"
        assert acc.id in await c.parked(svc.name)
        healthy.set()
        assert await c.redrive(acc.id) == "redriven"
        assert await c.result(acc.id, 10) == "recovered"
        assert await c.redrive(acc.id) == "not_failed"  # idempotent: no second run
        assert acc.id not in await c.parked(svc.name)
        inv = await c.get(acc.id)
        assert inv is not None and inv.redrives == 1 and attempts == [1, 2, 1]


async def test_timeout_counts_as_a_failure(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler(max_attempts=1, timeout=0.2)
    async def stuck(ctx: Context) -> None:
        assert ctx.deadline is not None and ctx.deadline > time.time()
        await __import__("asyncio").sleep(30)

    async with running(svc, url), client(url) as c:
        acc = await c.send(svc.name, "stuck")
        inv = await wait_until(_when_state(c, acc.id, "failed"), what="timeout")
        assert inv.error.type == "TimeoutError" and inv.reason == "attempts-exhausted"


async def test_invalid_input_is_parked_without_retries(url: str, names: Names) -> None:
    svc = Service(names())
    runs = []

    @svc.handler(max_attempts=5)
    async def place(ctx: Context, req: Order) -> None:
        runs.append(req)

    async with running(svc, url), client(url) as c:
        acc = await c.send(svc.name, "place", {"order_id": 7})
        inv = await wait_until(_when_state(c, acc.id, "failed"), what="invalid input")
        assert inv.reason == "invalid-input" and inv.error.status == 422 and runs == []


async def test_sync_handlers_run_in_their_own_thread_pool(url: str, names: Names) -> None:
    svc = Service(names())
    loop_thread = threading.get_ident()

    @svc.handler
    def blocking(ctx, n: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
        doubled = ctx.step("double", lambda: n * 2)
        return {
            "thread": threading.current_thread().name,
            "other": threading.get_ident() != loop_thread,
            "doubled": doubled,
        }

    async with running(svc, url), client(url) as c:
        acc = await c.send(svc.name, "blocking", 21)
        out = await c.result(acc.id, 10)
        assert out["thread"].startswith("reliq-sync") and out["other"] and out["doubled"] == 42


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_a_redelivered_entry_of_a_finished_invocation_never_runs_again(url: str, names: Names) -> None:
    svc = Service(names())
    runs = []

    @svc.handler
    async def once(ctx: Context) -> int:
        runs.append(ctx.id)
        return len(runs)

    async with running(svc, url), client(url) as c:
        k = ServiceKeys(svc.name)
        acc = await c.send(svc.name, "once")
        assert await c.result(acc.id, 10) == 1
        await c.redis.xadd(k.stream, {"i": acc.id})  # a duplicate trigger, e.g. from an old bug

        async def drained() -> bool:
            return (
                await c.redis.xlen(k.stream) == 0
                and (await c.redis.xpending(k.stream, "reliq"))["pending"] == 0
            )

        await wait_until(drained, what="duplicate entry dropped")
        assert runs == [acc.id]
