"""Promises: a handler awaits a value from outside (``ctx.promise``), resolved or rejected by
``Client.resolve``/``Client.reject``, before or after the await; the first value stands."""

from __future__ import annotations

import pytest

from reliq import (
    Context,
    InvocationFailed,
    PromiseAlreadySettled,
    PromiseRejected,
    Service,
    UnknownInvocation,
)

from ..conftest import Names, client, running, wait_until


@pytest.mark.semantics
async def test_resolve_after_the_await_resumes_the_suspended_invocation(url: str, names: Names) -> None:
    svc = Service(names("prom"))

    @svc.handler
    async def approve(ctx: Context, order: str) -> str:
        decision = await ctx.promise("approval")
        return f"{order}:{decision['ok']}"

    async with running(svc, url, suspend_after=0.0), client(url) as c:
        acc = await c.send(svc.name, "approve", "o1")

        async def suspended() -> bool:
            inv = await c.get(acc.id)
            return inv is not None and inv.state == "suspended"

        await wait_until(suspended, what="suspended on the promise")
        inv = await c.get(acc.id)
        assert inv is not None and [(w.kind, w.target) for w in inv.waits] == [("promise", "approval")]
        assert await c.resolve(acc.id, "approval", {"ok": True}) == "resumed"
        assert await c.result(acc.id, 10) == "o1:True"
        with pytest.raises(PromiseAlreadySettled):  # a re-sent resolve hears its first one landed
            await c.resolve(acc.id, "approval", {"ok": False})
        with pytest.raises(InvocationFailed):  # finished: nothing to resolve any more
            await c.resolve(acc.id, "other", 1)


async def test_resolve_before_the_await_keeps_the_value_and_twice_is_refused(url: str, names: Names) -> None:
    svc = Service(names("early"))

    @svc.handler
    async def later(ctx: Context) -> int:
        return int(await ctx.promise("n")) * 2

    async with client(url) as c:
        acc = await c.send(svc.name, "later", None, delay=60)  # it does not run yet
        assert await c.resolve(acc.id, "n", 21) == "stored"
        with pytest.raises(PromiseAlreadySettled):
            await c.resolve(acc.id, "n", 99)
        with pytest.raises(PromiseAlreadySettled):
            await c.reject(acc.id, "n", "no")
        with pytest.raises(UnknownInvocation):
            await c.resolve(f"{svc.name}.abcdefghijklmnopqrstuvwxyz", "n", 1)
        with pytest.raises(ValueError):
            await c.resolve(acc.id, "Bad Name!", 1)
        await c.redis.zadd(c.keys_of(acc.id).delayed, {acc.id: 0})  # due now
        async with running(svc, url):
            assert await c.result(acc.id, 10) == 42  # the first value stood


async def test_a_rejected_promise_raises_in_the_handler(url: str, names: Names) -> None:
    svc = Service(names("rej"))

    @svc.handler
    async def wait(ctx: Context) -> str:
        try:
            await ctx.promise("go")
        except PromiseRejected as e:
            return f"rejected: {e.message}"
        return "resolved"

    async with running(svc, url, suspend_after=0.0), client(url) as c:
        acc = await c.send(svc.name, "wait")
        await wait_until(lambda: c.state(acc.id), what="registered")
        await c.reject(acc.id, "go", "too late")
        assert await c.result(acc.id, 10) == "rejected: too late"


async def test_a_promise_with_a_timeout_times_out_durably(url: str, names: Names) -> None:
    svc = Service(names("pto"))

    @svc.handler
    async def wait(ctx: Context) -> str:
        try:
            return str(await ctx.promise("go", timeout=0.3))
        except TimeoutError:
            return "timed out"

    async with running(svc, url, suspend_after=0.0), client(url) as c:
        acc = await c.send(svc.name, "wait")
        assert await c.result(acc.id, 10) == "timed out"
        inv = await c.get(acc.id)
        assert inv is not None and inv.suspensions >= 1  # it waited suspended, the timer woke it


async def test_a_promise_nobody_awaits_expires_with_the_invocation(url: str, names: Names) -> None:
    """The inbox written from outside before the first run is expired when it finishes (the
    worker's small completion call, which names no journal keys, is told to name them)."""
    svc = Service(names("unused"))

    @svc.handler
    async def ignore(ctx: Context) -> str:
        return "done"

    async with client(url) as c:
        acc = await c.send(svc.name, "ignore", None, delay=60)
        await c.resolve(acc.id, "whatever", 1)
        await c.redis.zadd(c.keys_of(acc.id).delayed, {acc.id: 0})
        async with running(svc, url):
            assert await c.result(acc.id, 10) == "done"
        assert await c.redis.pttl(c.keys_of(acc.id).inbox(acc.id)) > 0


async def test_a_rejection_without_a_message_or_with_a_huge_one_is_refused_and_writes_nothing(
    url: str, names: Names
) -> None:
    from ..admin.test_cli import reliq

    svc = names("prom")
    async with client(url) as c:
        acc = await c.send(svc, "approve", "o1")
        k = c.keys_of(acc.id)
        before = await c.redis.hgetall(k.inv(acc.id))
        for bad in ("", "x" * 4097):
            with pytest.raises(ValueError, match="1-4096 characters"):
                await c.reject(acc.id, "approval", bad)
        code, out = await reliq(url, "reject", acc.id, "approval", "")
        assert code == 2 and len(out.strip().splitlines()) == 1 and "1-4096 characters" in out, out
        assert not await c.redis.exists(k.inbox(acc.id))
        assert await c.redis.hgetall(k.inv(acc.id)) == before
        assert await c.reject(acc.id, "approval", "x" * 4096) == "stored"  # the limit itself is fine
        await c.cancel(acc.id)
