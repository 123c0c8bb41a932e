"""The timeline the scripts write: renewals coalesced into one event, and the cap (first event
kept, a gap event counting the dropped ones, the newest kept) so it never grows unbounded."""

from __future__ import annotations

from reliq.admin.detail import detail
from reliq.admin.timeline import parse_timeline
from reliq.store.keys import GROUP

from ..conftest import Names, client


async def test_renewals_coalesce_and_the_timeline_stays_bounded(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        k = c.keys(svc)
        acc = await c.send(svc, "job", 1)
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        [[_, [(eid, _)]]] = await c.redis.xreadgroup(GROUP, "w", {k.stream: ">"}, count=1)
        entry = eid.decode()
        [claimed] = await c.scripts.claim(k, "w", 30_000, [(entry, acc.id)])
        assert (claimed.status, claimed.epoch) == ("run", 1)
        for _ in range(3):
            assert await c.scripts.renew(k, "w", 30_000, [(acc.id, entry, 1)]) == ["ok"]
        events = parse_timeline(await c.redis.hget(k.inv(acc.id), "tl"))
        assert [(e.event, e.actor, e.epoch, e.count) for e in events] == [
            ("accepted", None, None, None),
            ("claimed", "w", 1, None),
            ("renewed", "w", 1, 3),
        ]
        assert events[2].until is not None and events[2].until > events[2].at

        for n in range(300):
            assert await c.scripts.step(k, acc.id, 1, f"step-{n:03d}-" + "x" * 40, b"1")
        raw = await c.redis.hget(k.inv(acc.id), "tl")
        assert len(raw) <= 4096
        events = parse_timeline(raw)
        assert events[0].event == "accepted" and events[1].event == "gap"
        assert (
            events[1].count is not None and events[1].count + len(events) - 2 == 2 + 300
        )  # claimed, renewed, steps
        assert events[-1].detail == "step-299-" + "x" * 40
        assert await c.scripts.complete(k, 60_000, [(acc.id, entry, 1, "succeeded", b"1")]) == ["ok"]
        doc = await detail(c, acc.id)
        assert doc is not None and doc.timeline[-1].event == "succeeded" and doc.timeline[-1].actor == "w"
        assert doc.timeline[1].event == "gap"
