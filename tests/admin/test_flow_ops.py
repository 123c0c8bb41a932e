"""Operators and flow control (issue 14): why each waiting invocation waits (a key's line with
the number ahead, a rate limit's time), the busiest keys, the rate buckets, the specs in force,
and a live change of a running service's limits (raised from 1 to 2: two run at once, without a
restart), refused whole when bad."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from reliq import Context, Service
from reliq.admin import detail, limits, waits
from reliq.admin.limits import LimitsChange
from reliq.store.flow import flow_keys

from ..conftest import Names, client, running, wait_until
from ..flow_util import mark, replay


class Acct(msgspec.Struct):
    account: str
    n: int = 0


def _gated(names: Names, witness: Path, gate: asyncio.Event) -> Service:
    svc = Service(names())

    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def work(ctx: Context, req: Acct) -> None:
        mark(witness, "S", req.account, req.n)
        await gate.wait()
        mark(witness, "E", req.account, req.n)

    @svc.handler(rate_limit="1/h", burst=1)
    async def ping(ctx: Context, n: int) -> int:
        return n

    return svc


async def test_waits_name_the_key_and_the_number_ahead_and_limits_show_the_load(
    url: str, names: Names, tmp_path: Path
) -> None:
    witness, gate = tmp_path / "w", asyncio.Event()
    witness.touch()
    svc = _gated(names, witness, gate)
    async with client(url) as c, running(svc, url, concurrency=10):
        ids = [(await c.send(svc.name, "work", {"account": "a", "n": i})).id for i in range(4)]
        await c.send(svc.name, "work", {"account": "b", "n": 9})
        await wait_until(lambda: len(replay(witness)[1].get("a", [])) == 1, what="a/0 holds the permit")
        page = await waits.waiting(c, svc.name, handler="work", key="a")
        assert [w.invocation_id for w in page.items] == ids[1:] and page.queued == 3
        assert [w.reason.text for w in page.items if w.reason] == [
            f"concurrency key a, {n} ahead (1 running)" for n in range(3)
        ]
        d = await detail.detail(c, ids[3])
        assert d is not None and d.wait is not None
        assert (d.wait.cause, d.wait.key, d.wait.ahead, d.wait.running) == ("concurrency", "a", 2, 1)
        state = await limits.limits(c, svc.name)
        assert (state.top_keys[0].key, state.top_keys[0].waiting, state.top_keys[0].running) == ("a", 3, 1)
        assert {(k.key, k.waiting, k.running) for k in state.top_keys} == {("a", 3, 1), ("b", 0, 1)}
        assert (state.running, state.queued, state.keys) == (2, 3, 2)
        work = next(h for h in state.handlers if h.handler == "work")
        assert work.code is not None and work.code.limit == 1 and work.override is None
        assert work.text == "1 at once per account"
        # a rate limit: the second start waits an hour, the record and the bucket say so
        await c.send(svc.name, "ping", 1)
        late = await c.send(svc.name, "ping", 2)
        why = await waits.reason_of(c, late.id)
        assert why is not None and why.cause == "rate" and why.text.startswith("rate limit until ")
        now = await c.server_time_ms()
        assert why.until is not None and now + 3_500_000 < why.until <= now + 3_600_000
        [bucket] = (await limits.limits(c, svc.name, handler="ping")).buckets
        assert (bucket.handler, bucket.key, bucket.tokens) == ("ping", None, 0)
        assert bucket.next_free > now + 3_500_000
        assert [
            w.reason.cause for w in (await waits.waiting(c, svc.name, handler="ping")).items if w.reason
        ] == ["rate"]
        gate.set()
        await wait_until(lambda: len(replay(witness)[1].get("a", [])) == 4, what="all of a ran")


async def test_raising_a_live_limit_from_1_to_2_lets_two_run_at_once(
    url: str, names: Names, tmp_path: Path
) -> None:
    witness, gate = tmp_path / "w", asyncio.Event()
    witness.touch()
    svc = _gated(names, witness, gate)
    async with client(url) as c, running(svc, url, concurrency=10):
        k = c.keys(svc.name)
        for i in range(4):
            await c.send(svc.name, "work", {"account": "a", "n": i})
        await wait_until(lambda: len(replay(witness)[1].get("a", [])) == 1, what="a/0 holds the permit")
        now = await limits.set_limits(c, svc.name, "work", LimitsChange(concurrency_limit=2), who="ops")
        assert now.effective.limit == 2 and now.code is not None and now.code.limit == 1
        # admitted by the change itself: a/1 starts while a/0 still holds its permit
        await wait_until(lambda: replay(witness)[0].get("a") == 2, what="two of key a at once")
        again = await limits.set_limits(c, svc.name, "work", LimitsChange(rate_limit="50/s"), who="ops")
        assert again.override == limits.flow.FlowOverride(limit=2, rate=50, per=1000)  # merged
        shown = (await limits.limits(c, svc.name, handler="work")).handlers[0]
        assert shown.effective.limit == 2 and shown.text == "2 at once per account; 50/s, burst 1"
        cleared = await limits.clear_limits(c, svc.name, "work", who="ops")
        assert cleared.override is None and cleared.effective.limit == 1
        assert await c.redis.hget(flow_keys(k)[0], "work!") is None
        audit = await c.redis.xrange(k.audit)
        assert [e[1][b"action"] for e in audit] == [b"limits-set", b"limits-set", b"limits-clear"]
        gate.set()
        await wait_until(lambda: len(replay(witness)[1].get("a", [])) == 4, what="all of a ran")
    assert max(replay(witness)[0].values()) == 2


@pytest.mark.parametrize(
    ("handler", "change", "says"),
    [
        ("work", LimitsChange(), "nothing to change"),
        ("work", LimitsChange(concurrency_limit=-1), "concurrency_limit"),
        ("work", LimitsChange(rate_limit="100/fortnight"), "rate_limit"),
        ("work", LimitsChange(burst=0), "burst"),
        ("ping", LimitsChange(concurrency_limit=2), "concurrency_key"),
        ("nope", LimitsChange(burst=2), "no handler"),
    ],
)
async def test_a_bad_change_is_refused_and_nothing_is_written(
    url: str, names: Names, tmp_path: Path, handler: str, change: LimitsChange, says: str
) -> None:
    svc = _gated(names, tmp_path / "w", asyncio.Event())
    async with client(url) as c:
        async with running(svc, url, concurrency=1):  # publishes the specs
            pass
        k = c.keys(svc.name)
        before = await c.redis.hgetall(flow_keys(k)[0])
        with pytest.raises(ValueError, match=says):
            await limits.set_limits(c, svc.name, handler, change, who="ops")
        assert await c.redis.hgetall(flow_keys(k)[0]) == before
        assert await c.redis.xlen(k.audit) == 0


async def test_clearing_the_limits_of_a_handler_nobody_knows_writes_nothing(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def work(ctx: Context) -> None: ...

    async with running(svc, url), client(url) as c:
        pass
    async with client(url) as c:
        with pytest.raises(ValueError, match="no handler"):
            await limits.clear_limits(c, svc.name, "nope", who="ops")
        assert await c.redis.xlen(c.keys(svc.name).audit) == 0  # not audited
        await limits.clear_limits(c, svc.name, "work", who="ops")  # a registered one: fine
