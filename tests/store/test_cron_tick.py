"""cron_tick.lua: one call decides a whole round of schedules, each on its own (placed, moved,
paused, gone), and a re-sent call places no tick twice."""

from __future__ import annotations

import pytest

from reliq import codec
from reliq.store import cron
from reliq.store.cron_scripts import Due
from reliq.store.keys import tick_id
from reliq.worker.cron import registrations

from ..conftest import Names, client


@pytest.mark.semantics  # on a Cluster too: every key of the round is in partition 0's slot
async def test_one_call_decides_every_schedule_of_a_round_on_its_own(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        k = c.keys(svc)
        for name in ("a", "b", "moved", "paused", "gone"):
            await c.create_schedule(svc, name, "h", every=1, catch_up="all", max_catch_up=5)
        assert await c.pause_schedule(svc, "paused") == "paused"
        specs = dict(
            zip(
                ("a", "b", "moved", "paused", "gone"),
                await c.redis.hmget(k.schedules, ["a", "b", "moved", "paused", "gone"]),
                strict=True,
            )
        )
        cursors = {n: codec.text(await c.redis.hget(k.ticks, n)) for n in specs}
        await c.delete_schedule(svc, "gone")
        base = int(cursors["a"]) - int(cursors["a"]) % 1000

        def due(name: str, ticks: list[int], cursor: str | None = None) -> Due:
            s = cron.decode(specs[name])
            regs = registrations(k, s, ticks)
            return Due(
                name, cursor or cursors[name], specs[name], ticks[-1] if ticks else base, base + 9000, regs
            )

        round_ = [
            due("a", [base + 1000, base + 2000]),
            due("moved", [base + 1000], cursor="1"),  # planned from a cursor that is no longer there
            due("paused", [base + 1000]),
            due("gone", [base + 1000]),
            due("b", [base + 1000]),
        ]
        assert await c.cron_scripts.tick(k, round_) == [
            ("placed", 2),
            ("moved", 0),
            ("paused", 0),
            ("gone", 0),
            ("placed", 1),
        ]
        ids = [tick_id(svc, "a", base + 1000), tick_id(svc, "a", base + 2000), tick_id(svc, "b", base + 1000)]
        assert [await c.state(i) for i in ids] == ["pending"] * 3
        assert not await c.state(tick_id(svc, "moved", base + 1000))
        assert not await c.state(tick_id(svc, "paused", base + 1000))
        assert int(await c.redis.hget(k.ticks, "a")) == base + 2000
        assert codec.text(await c.redis.hget(k.ticks, "a:i")) == ids[1]
        assert await c.redis.zscore(k.cron, "a") == base + 9000
        assert await c.redis.zscore(k.cron, "paused") is None and await c.redis.zscore(k.cron, "gone") is None
        # a re-sent round finds the cursors moved; one planned from the new cursor places nothing twice
        assert [st for st, _ in await c.cron_scripts.tick(k, round_[:1])] == ["moved"]
        again = due("a", [base + 2000, base + 3000], cursor=str(base + 2000))
        assert await c.cron_scripts.tick(k, [again]) == [("placed", 1)]
        assert await c.redis.xlen(k.stream) == 4
        ids.append(tick_id(svc, "a", base + 3000))
        for name in ("a", "b", "moved", "paused"):
            await c.delete_schedule(svc, name)
        await c.redis.delete(k.stream, *(k.inv(i) for i in ids))
