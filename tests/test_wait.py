"""Waiting for an outcome (``Client.wait``, so ``Client.result``, the gateway's /call and /attach)
without polling: the settling scripts publish the ids that finished on their partition's ``done``
channel (sharded pub/sub), one subscription per partition serves every waiter of the process, and
a waiter re-reads on its own only every ``recheck`` seconds (the safety net for a lost message).
Issue 12, finding 7."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from reliq import Client, Context, Service, Terminal
from reliq.client import waiters

from .conftest import Names, running, wait_until

SLOW = 30.0  # a recheck no test may wait for: only a notification can wake the waiter in time


def subscribed(c: Client, invocation_id: str) -> bool:
    """The waiter's channel is subscribed and confirmed (the confirmation woke it: it re-read)."""
    w = c.waiters
    channel = c.keys_of(invocation_id).done_channel
    return channel in w._subscribed and invocation_id in w._by_id


def counted_reads(c: Client, reads: list[str]) -> Callable[[str], Awaitable[Any]]:
    """``c.group_read.read`` that notes each id it reads in ``reads`` (install it to count)."""
    group_read = c.group_read.read

    async def counting(invocation_id: str) -> Any:
        reads.append(invocation_id)
        return await group_read(invocation_id)

    return counting


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_waiters_are_woken_by_every_kind_of_completion(url: str, names: Names) -> None:
    svc = Service(names())
    go = asyncio.Event()

    @svc.handler
    async def ok(ctx: Context, n: int) -> int:
        await go.wait()
        return n

    @svc.handler
    async def bad(ctx: Context) -> None:
        await go.wait()
        raise Terminal("no", status=422)

    @svc.handler
    async def hang(ctx: Context) -> None:
        await asyncio.sleep(3600)

    c = Client(url, recheck=SLOW)
    try:
        async with running(svc, url):
            acc = [await c.send(svc.name, "ok", 7), await c.send(svc.name, "bad")]
            queued = await c.send(svc.name, "ok", 1, delay=3600)  # cancel.lua finishes it
            running_one = await c.send(svc.name, "hang")  # cancelled while it runs
            ids = [a.id for a in (*acc, queued, running_one)]
            waits = [asyncio.create_task(c.wait(i, SLOW)) for i in ids]
            await wait_until(lambda: all(subscribed(c, i) for i in ids), what="subscribed")
            await wait_until(lambda: c.redis.hget(c.keys_of(running_one.id).inv(running_one.id), "owner"))
            t0 = time.monotonic()
            go.set()
            assert await c.cancel(queued.id) == "cancelled"
            assert await c.cancel(running_one.id) == "cancelling"
            outs = await asyncio.wait_for(asyncio.gather(*waits), 10)
            took = time.monotonic() - t0
    finally:
        await c.close()
    assert [o.state for o in outs if o] == ["succeeded", "failed", "cancelled", "cancelled"]
    assert took < 5, took  # far below the 30 s recheck: the notifications woke them


@pytest.mark.semantics
async def test_a_lost_notification_is_made_up_for_by_the_recheck(url: str, names: Names) -> None:
    svc = names()
    async with Client(url, recheck=0.5) as c:
        acc = await c.send(svc, "h", None)
        waiting = asyncio.create_task(c.wait(acc.id, SLOW))
        await wait_until(lambda: subscribed(c, acc.id), what="subscribed")
        # finished behind the scripts' back: no message is ever published for it
        k = c.keys_of(acc.id)
        await c.redis.execute_command("HSET", k.inv(acc.id), "state", "succeeded", "result", "5")
        t0 = time.monotonic()
        out = await asyncio.wait_for(waiting, 5)
        assert out is not None and (out.state, out.result) == ("succeeded", b"5")
        assert time.monotonic() - t0 < 2.5  # within the 0.5 s recheck (plus slack for a loaded box)
        await c.redis.execute_command("PEXPIRE", k.inv(acc.id), 60_000)
        await c.redis.delete(k.stream)


async def test_an_unknown_or_finished_invocation_subscribes_nothing(url: str, names: Names) -> None:
    svc = names()
    async with Client(url, recheck=SLOW) as c:
        assert await c.wait(f"{svc}.{'a' * 26}", 5) is None
        acc = await c.send(svc, "h", None)
        assert await c.cancel(acc.id) == "cancelled"
        out = await c.wait(acc.id, 5)
        assert out is not None and out.state == "cancelled"
        assert c.waiters._subscribed == {} and c.waiters._by_id == {}
        await c.redis.delete(c.keys(svc).stream)


async def test_a_lost_connection_wakes_the_waiters_and_subscribes_again(url: str, names: Names) -> None:
    svc = names()
    async with Client(url, recheck=SLOW) as c:
        acc = await c.send(svc, "h", None)
        waiting = asyncio.create_task(c.wait(acc.id, SLOW))
        await wait_until(lambda: subscribed(c, acc.id), what="subscribed")
        await c.redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        # redis-py reconnects and re-subscribes; either way the waiter is still served promptly
        await wait_until(lambda: subscribed(c, acc.id), what="subscribed again")
        t0 = time.monotonic()
        assert await c.cancel(acc.id) == "cancelled"
        out = await asyncio.wait_for(waiting, 10)
        assert out is not None and out.state == "cancelled" and time.monotonic() - t0 < 5
        await c.redis.delete(c.keys(svc).stream)


async def test_a_channel_without_waiters_is_unsubscribed_and_its_connection_closed(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(waiters, "LINGER", 0.0)
    monkeypatch.setattr(waiters, "SWEEP", 0.05)
    svc = names()
    async with Client(url, recheck=SLOW) as c:
        acc = await c.send(svc, "h", None)
        waiting = asyncio.create_task(c.wait(acc.id, SLOW))
        await wait_until(lambda: subscribed(c, acc.id), what="subscribed")
        assert len(c.waiters._nodes) == 1
        assert await c.cancel(acc.id) == "cancelled"
        assert (await asyncio.wait_for(waiting, 10)) is not None
        await wait_until(lambda: not c.waiters._nodes and not c.waiters._subscribed, what="closed")
        await c.redis.delete(c.keys(svc).stream)


async def test_a_subscription_that_keeps_failing_degrades_to_a_read_per_backoff(
    url: str, names: Names
) -> None:
    """SSUBSCRIBE refused (an ACL without it): no loop of reads and re-subscriptions; the waiter
    re-reads once per ``BACKOFF`` and still gets its outcome."""
    svc, user = names(), names("u")
    async with Client(url) as admin:
        await admin.redis.execute_command(
            "ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-ssubscribe"
        )
        try:
            async with Client(f"redis://{user}:pw@{url.split('://', 1)[1]}", recheck=SLOW) as c:
                acc = await c.send(svc, "h", None)
                before = (await admin.redis.info("commandstats"))["cmdstat_hmget"]["calls"]
                waiting = asyncio.create_task(c.wait(acc.id, SLOW))
                await asyncio.sleep(2.0)  # the measurement window: nothing finishes
                reads = (await admin.redis.info("commandstats"))["cmdstat_hmget"]["calls"] - before
                assert 1 <= reads <= 5, reads  # one per second (BACKOFF), not a loop
                t0 = time.monotonic()
                assert await admin.cancel(acc.id) == "cancelled"
                out = await asyncio.wait_for(waiting, 10)
                assert out is not None and out.state == "cancelled"
                assert time.monotonic() - t0 < waiters.BACKOFF + 1.5
                await c.redis.delete(c.keys(svc).stream)
        finally:
            await admin.redis.execute_command("ACL", "DELUSER", user)


@pytest.mark.semantics
async def test_waiters_woken_together_read_together(url: str, names: Names) -> None:
    """Reads asked for while one round trip is under way share the next one (``GroupRead``): 60
    waiters of one batch are read in a few pipelines, not 60 round trips; each gets its own
    outcome, and an unknown id reads as None among them."""
    svc = names()
    async with Client(url, recheck=SLOW) as c:
        accepted = [await c.send(svc, "h", i) for i in range(60)]
        ids = [a.id for a in accepted]
        for i, inv in enumerate(ids):  # finished behind the scripts' back: each its own result
            await c.redis.execute_command(
                "HSET", c.keys_of(inv).inv(inv), "state", "succeeded", "result", str(i)
            )
        trips: list[int] = []
        pipeline = c.redis.pipeline

        def counting(*args: object, **kwargs: object) -> object:
            trips.append(1)
            return pipeline(*args, **kwargs)  # type: ignore[arg-type]

        c.redis.pipeline = counting  # type: ignore[method-assign]
        unknown = f"{svc}.{'a' * 26}"
        outs = await asyncio.gather(*(c.wait(i, SLOW) for i in [*ids, unknown]))
        assert [o.result for o in outs[:-1] if o] == [str(i).encode() for i in range(60)]
        assert outs[-1] is None
        assert 1 <= len(trips) <= 3, trips  # one pipeline, or a few: never one read per waiter
        for inv in ids:
            await c.redis.execute_command("PEXPIRE", c.keys_of(inv).inv(inv), 60_000)
        await c.redis.delete(c.keys(svc).stream)


@pytest.mark.semantics
async def test_a_waiter_registered_before_the_write_skips_the_first_read(url: str, names: Names) -> None:
    """``wait(watched=...)`` (the gateway's /call): the waiter was registered on a subscribed
    channel before the invocation was written, so its first read is skipped; a small result comes
    in the completion notification (nothing read at all), a large one is read once after the
    wake-up; and a completion that lands before the wait even starts still wakes it."""
    svc = Service(names())
    go = asyncio.Event()

    @svc.handler
    async def gated(ctx: Context, n: int) -> int | str:
        await go.wait()
        return n if n < 1000 else "x" * n  # past 1,024 bytes: not carried (lua/complete.lua)

    @svc.handler
    async def quick(ctx: Context, n: int) -> int:
        return n

    c = Client(url, recheck=SLOW)
    reads: list[str] = []
    counting = counted_reads(c, reads)

    try:
        async with running(svc, url):
            assert await c.call(svc.name, "quick", 0) == 0  # its partition's channel is subscribed now
            c.group_read.read = counting  # type: ignore[method-assign]

            async def placed(handler: str, n: int) -> tuple[str, waiters.Waiter, contextlib.ExitStack]:
                item = await c.prepare(svc.name, handler, str(n).encode())
                stack = contextlib.ExitStack()
                w = stack.enter_context(c.waiters.watch(item.id, c.keys_of(item.id).done_channel))
                await c.register_many(c.where(item.id), [item])
                return item.id, w, stack

            inv, w, stack = await placed("gated", 7)
            with stack:
                assert w.subscribed
                waiting = asyncio.create_task(c.wait(inv, SLOW, watched=w))
                await asyncio.sleep(0.2)  # the waiter sleeps: nothing read yet
                assert reads == []
                go.set()
                out = await asyncio.wait_for(waiting, 10)
            assert out is not None and out.result == b"7" and reads == []  # carried: nothing read

            inv, w, stack = await placed("gated", 2000)
            with stack:
                out = await asyncio.wait_for(c.wait(inv, SLOW, watched=w), 10)
            assert out is not None and out.result == b'"' + b"x" * 2000 + b'"' and reads == [inv]

            inv, w, stack = await placed("quick", 8)  # finished before the wait starts
            with stack:
                await wait_until(lambda: c.redis.hget(c.keys_of(inv).inv(inv), "state"), what="placed")

                async def finished() -> bool:
                    return await c.redis.hget(c.keys_of(inv).inv(inv), "state") == b"succeeded"

                await wait_until(finished, what="finished")
                out = await asyncio.wait_for(c.wait(inv, SLOW, watched=w), 5)  # woken, not the 30 s recheck
            assert out is not None and out.result == b"8"
    finally:
        await c.close()


async def test_a_cancelled_group_read_leaves_no_reader_waiting(url: str, names: Names) -> None:
    """The grouped reads' task cancelled before it ran (a loop shutting down): every queued reader
    hears an error instead of waiting for ever."""
    svc = names()
    async with Client(url) as c:
        reads = [asyncio.ensure_future(c.group_read.read(f"{svc}.{ch * 26}")) for ch in "abc"]
        await asyncio.sleep(0)  # the readers queue themselves; the flush task is made, not run
        task = c.group_read._task
        assert task is not None and not task.done()
        task.cancel()
        outs = await asyncio.wait_for(asyncio.gather(*reads, return_exceptions=True), 5)
        assert all(isinstance(o, ConnectionError) for o in outs), outs
        assert await c.group_read.read(f"{svc}.{'d' * 26}") is None  # and the next read works


@pytest.mark.semantics
async def test_results_carried_in_the_notification_equal_the_stored_ones(url: str, names: Names) -> None:
    """Results the completion message carries (spaces, escaped newlines, non-ASCII text, JSON
    documents, the 1,024-byte bound on both sides) answer exactly what the record stores, and a
    waiter woken with one reads nothing more: only the calls of the too-large result read twice."""
    svc = Service(names())
    go = asyncio.Event()
    shapes: list[Any] = [
        7,
        None,
        "two words",
        "line\nbreak",
        "ünïcødé ✓",
        {"id": "x y", "list": [1, 2, {"k": "v"}]},
        "a" * 1022,  # 1,024 bytes with its quotes: carried
        "b" * 1023,  # 1,025: read from the record
    ]

    @svc.handler
    async def shape(ctx: Context, i: int) -> Any:
        await go.wait()
        return shapes[i % len(shapes)]

    c = Client(url, recheck=SLOW)
    reads: list[str] = []
    counting = counted_reads(c, reads)

    try:
        async with running(svc, url, concurrency=200):
            go.set()
            assert await c.call(svc.name, "shape", 0) == 7  # the channel is subscribed from now on
            go.clear()
            c.group_read.read = counting  # type: ignore[method-assign]
            ids = [(await c.send(svc.name, "shape", i)).id for i in range(160)]
            waiting = asyncio.gather(*(c.result(inv, 20) for inv in ids))
            await wait_until(lambda: len(reads) == 160, what="every waiter's first read")
            go.set()
            got = await asyncio.wait_for(waiting, 20)
            assert got == [shapes[i % len(shapes)] for i in range(160)]
            twice = {inv for inv in ids if reads.count(inv) > 1}
            assert twice == {inv for i, inv in enumerate(ids) if i % len(shapes) == 7}
    finally:
        await c.close()
