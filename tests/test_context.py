"""ctx.step memoizes progress across retries; ctx.send/ctx.call children get ids derived from the
parent, so a retried parent never duplicates them and reuses their results."""

from collections import Counter

import pytest

from reliq import Context, InvocationFailed, Service, Terminal

from .conftest import Names, client, running, wait_until


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_steps_are_not_re_executed_on_retry(url: str, names: Names) -> None:
    svc = Service(names())
    effects: Counter[str] = Counter()

    def charge(order: str, cents: int) -> str:
        effects["charge"] += 1
        return f"rcpt-{order}-{cents}"

    async def reserve() -> dict[str, int]:
        effects["reserve"] += 1
        return {"slot": 7}

    @svc.handler(max_attempts=3, backoff_base=0.01)
    async def place(ctx: Context, order: str) -> dict[str, object]:
        receipt = await ctx.step("charge", charge, order, cents=500)
        slot = await ctx.step("reserve", reserve)
        if ctx.attempt < 3:
            raise RuntimeError("crash after the steps")
        return {"receipt": receipt, "slot": slot}

    async with running(svc, url), client(url) as c:
        acc = await c.send(svc.name, "place", "o1")
        assert await c.result(acc.id, 10) == {"receipt": "rcpt-o1-500", "slot": {"slot": 7}}
        inv = await c.get(acc.id)
        assert inv is not None and inv.attempt == 3
        assert inv.steps == {"charge": "rcpt-o1-500", "reserve": {"slot": 7}}
    assert effects == {"charge": 1, "reserve": 1}


async def test_a_step_name_used_again_in_one_run_is_the_next_step(url: str, names: Names) -> None:
    """A loop of ``ctx.step("charge", ...)``: each charge runs once, and a retry replays each
    (before, every use after the first silently got the first one's result: lost work)."""
    svc = Service(names())
    effects: Counter[str] = Counter()

    def charge(item: str) -> str:
        effects[item] += 1
        return f"charged-{item}"

    @svc.handler(max_attempts=2, backoff_base=0.01)
    async def checkout(ctx: Context) -> list[str]:
        done = [await ctx.step("charge", charge, item) for item in ("a", "b", "c")]
        if ctx.attempt < 2:
            raise RuntimeError("crash after the steps")
        return done

    async with running(svc, url), client(url) as c:
        acc = await c.send(svc.name, "checkout")
        assert await c.result(acc.id, 10) == ["charged-a", "charged-b", "charged-c"]
        inv = await c.get(acc.id)
        assert inv is not None and inv.attempt == 2
        assert inv.steps == {"charge": "charged-a", "charge#2": "charged-b", "charge#3": "charged-c"}
    assert effects == {"a": 1, "b": 1, "c": 1}


async def test_a_context_used_after_its_handler_returned_fails_the_user_clearly(
    url: str, names: Names
) -> None:
    svc = Service(names())
    kept: list[Context] = []

    @svc.handler
    async def first(ctx: Context) -> None:
        kept.append(ctx)

    @svc.handler(max_attempts=1)
    async def second(ctx: Context) -> None:
        await kept[0].step("s", lambda: 1)  # another invocation's context, long finished

    class Mute(Exception):
        def __str__(self) -> str:
            raise ValueError("no words")

    @svc.handler(max_attempts=1)
    async def mute(ctx: Context) -> None:
        raise Mute

    async with running(svc, url), client(url) as c:
        await c.result((await c.send(svc.name, "first")).id, 10)
        used = await c.send(svc.name, "second")
        with pytest.raises(InvocationFailed, match="used after its handler returned"):
            await c.result(used.id, 10)
        silent = await c.send(svc.name, "mute")  # its message cannot be read: failed, not a crash loop
        with pytest.raises(InvocationFailed, match="Mute"):
            await c.result(silent.id, 10)
        inv = await c.get(silent.id)
        assert inv is not None and inv.state == "failed" and inv.deliveries == 1


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_child_ids_are_stable_across_parent_retries(url: str, names: Names) -> None:
    parent_svc, child_svc = Service(names("p")), Service(names("c"))
    seen: list[list[str]] = []
    child_runs: Counter[str] = Counter()

    @child_svc.handler
    async def work(ctx: Context, n: int) -> int:
        child_runs[ctx.id] += 1
        assert ctx.parent_id is not None
        return n * 10

    @parent_svc.handler(max_attempts=3, backoff_base=0.01)
    async def fan_out(ctx: Context) -> int:
        a = await ctx.send(child_svc.name, "work", 1)
        b = await ctx.send(child_svc.name, "work", 2, key="second")
        c = await ctx.call(child_svc.name, "work", 3)
        seen.append([a, b])
        if ctx.attempt < 3:
            raise RuntimeError("parent fails after starting children")
        return int(c)

    async with running(parent_svc, url), running(child_svc, url), client(url) as cl:
        acc = await cl.send(parent_svc.name, "fan_out")
        assert await cl.result(acc.id, 15) == 30
        inv = await cl.get(acc.id)
        assert inv is not None and len(inv.children) == 3
        assert all(s == seen[0] for s in seen) and len(seen) == 3
        for child in inv.children:
            assert await cl.result(child, 10) in (10, 20, 30)
            ch = await cl.get(child)
            assert ch is not None and ch.parent_id == acc.id
    assert set(child_runs.values()) == {1} and len(child_runs) == 3


async def test_a_failed_child_call_raises_in_the_parent(url: str, names: Names) -> None:
    parent_svc, child_svc = Service(names("p")), Service(names("c"))

    @child_svc.handler
    async def refuse(ctx: Context) -> None:
        raise Terminal("no")

    @parent_svc.handler(max_attempts=1)
    async def ask(ctx: Context) -> str:
        try:
            await ctx.call(child_svc.name, "refuse")
        except InvocationFailed as e:
            return f"child {e.state}: {e.error['message']}"
        return "unexpected"

    async with running(App := parent_svc, url), running(child_svc, url), client(url) as c:
        acc = await c.send(App.name, "ask")
        assert await c.result(acc.id, 10) == "child failed: no"


async def test_timers_out_of_range_and_keys_of_the_call_order_are_refused_or_clamped(
    url: str, names: Names
) -> None:
    """``ctx.sleep(1e12)`` failed every attempt with a parse error of the timer script's answer
    (Lua wrote the due time as ``1.0e+15``); a child key ``#2`` took the id of the second call
    without a key (another child's result, or a parked ``nondeterminism``)."""
    svc = Service(names("rng"))

    @svc.handler
    async def leaf(ctx: Context, n: int) -> int:
        return n

    @svc.handler
    async def far(ctx: Context) -> list[str]:
        await ctx.promise("go", timeout=1e12)  # suspends on a deadline 31,700 years ahead
        out = []
        await ctx.sleep(float("-inf"))  # at once
        try:
            await ctx.sleep(float("nan"))
        except ValueError as e:
            out.append(f"refused: {e}")
        try:
            await ctx.call(svc.name, "leaf", 1, key="#2")
        except ValueError as e:
            out.append(f"refused: {e}")
        out.append(str(await ctx.call(svc.name, "leaf", 2)))
        return out

    async with running(svc, url, suspend_after=0.05), client(url) as c:
        acc = await c.send(svc.name, "far")

        async def suspended() -> bool:
            return await c.state(acc.id) == "suspended"

        await wait_until(suspended, what="suspended on the century-long deadline")
        assert await c.resolve(acc.id, "go", 1) == "resumed"
        got = await c.result(acc.id, 15)
        assert got == [
            "refused: a durable timer's duration is a number of seconds, not NaN",
            "refused: a child key may not start with '#' (reserved for the call order): '#2'",
            "2",
        ]
        doc = await c.get(acc.id)
        assert doc is not None and doc.attempt == 1
