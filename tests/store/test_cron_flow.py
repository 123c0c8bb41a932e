"""cron_tick.lua gates a tick like any send (issue 14): a keyed handler's ticks queue behind the
key's holder, a rate-limited handler's ticks are delayed, a callable key's value comes from the
worker that has the code, and a tick whose key is bad is skipped (decided, not placed)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from reliq import Context, Service, codec
from reliq.store import cron, flow
from reliq.store.cron_scripts import Due
from reliq.store.keys import tick_id
from reliq.worker.cron import registrations

from ..conftest import Names, client


class Acct(msgspec.Struct):
    account: str


@pytest.mark.semantics  # on a Cluster too: the flow keys share partition 0's slot with the ticks
async def test_ticks_pass_the_concurrency_and_rate_gates(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def keyed(ctx: Context, req: Acct) -> None: ...

    @svc.handler(concurrency_key=lambda r: r.account.upper(), concurrency_limit=1)
    async def called(ctx: Context, req: Acct) -> None: ...

    @svc.handler(rate_limit="1/h")
    async def rated(ctx: Context) -> None: ...

    async with client(url) as c:
        k = c.keys(svc.name)
        spec_key = flow.flow_keys(k)[0]
        for name, h in svc.handlers.items():  # what a worker publishes at start
            assert h.flow is not None
            await c.redis.hset(spec_key, name, flow.encode(h.flow))
        plans: dict[str, tuple[str, Any]] = {
            "k": ("keyed", {"account": "x"}),
            "c": ("called", {"account": "y"}),
            "r": ("rated", None),
            "bad": ("keyed", {"account": 1.5}),
        }
        for name, (handler, payload) in plans.items():
            await c.create_schedule(svc.name, name, handler, every=1, catch_up="all", payload=payload)
        raw = dict(zip(plans, await c.redis.hmget(k.schedules, list(plans)), strict=True))
        cursors = {n: codec.text(await c.redis.hget(k.ticks, n)) for n in plans}
        base = int(cursors["k"]) - int(cursors["k"]) % 1000
        ticks = [base + 1000, base + 2000, base + 3000]
        round_ = []
        for name, (handler, _) in plans.items():
            regs = registrations(k, cron.decode(raw[name]), ticks, svc.handlers[handler])
            round_.append(Due(name, cursors[name], raw[name], ticks[-1], base + 9000, regs))
        assert round_[1].ticks[0].flow_key == "Y"  # the worker computed the callable's value
        assert await c.cron_scripts.tick(k, round_) == [
            ("placed", 3),
            ("placed", 3),
            ("placed", 3),
            ("placed", 0),
        ]

        async def fields(sched: str, t: int, *names: str) -> list[str]:
            return [
                codec.text(v or b"") for v in await c.redis.hmget(k.inv(tick_id(svc.name, sched, t)), names)
            ]

        for sched, fk in (("k", "keyed\0x"), ("c", "called\0Y")):
            assert await fields(sched, ticks[0], "state", "fk") == ["pending", fk]  # holds the permit
            for t in ticks[1:]:  # behind it, in tick order, holding no stream entry
                assert await fields(sched, t, "state", "wait", "entry") == ["queued", "concurrency", ""]
        assert (await fields("r", ticks[0], "state"))[0] == "pending"
        for t in ticks[1:]:  # 1/h: the next ticks wait for the bucket
            assert (await fields("r", t, "state", "wait"))[:2] == ["scheduled", "rate"]
        assert await c.redis.hget(k.inv(tick_id(svc.name, "bad", ticks[0])), "state") is None
        assert int(await c.redis.hget(k.ticks, "bad")) == ticks[-1]  # decided: the cursor moved on
        assert await c.redis.xlen(k.stream) == 3  # one start per gated handler
        for name in plans:
            await c.delete_schedule(svc.name, name)
        ids = [tick_id(svc.name, n, t) for n in plans for t in ticks]
        await c.redis.delete(k.stream, k.delayed, *(k.inv(i) for i in ids))
        for key in flow.flow_keys(k):
            await c.redis.delete(key)
