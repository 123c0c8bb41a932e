"""backlog(): a service's unacked stream entries summed over every partition (the gateway's
``max_backlog`` limit and ``/metrics``), with pending, delayed and parked next to it."""

from __future__ import annotations

from reliq.admin.backlog import Backlog, backlog, counts
from reliq.store.keys import GROUP

from ..conftest import Names, client
from .partitioned import P, keys_in, stuck, unstick


async def test_the_backlog_is_summed_over_the_partitions(url: str, names: Names) -> None:
    name = names()
    async with client(url) as c:
        assert await counts(c, name) == Backlog() and await backlog(c, name) == 0  # no stream yet
        ids = await stuck(c, name)  # one delivered entry per partition 0..2
        queued = [(await c.send(name, "job", n, key=k)).id for n, k in enumerate(keys_in(name, P, "q"))]
        later = await c.send(name, "job", 0, delay=3600)
        failed = await c.send(name, "job", 0, key=keys_in(name, P, "f")[2])
        k = c.keys_of(failed.id)
        [[_, [*_, (eid, _)]]] = await c.redis.xreadgroup(GROUP, "w", {k.stream: ">"}, count=10)
        [claimed] = await c.scripts.claim(k, "w", 30_000, [(eid.decode(), failed.id)])
        assert (
            await c.scripts.park(k, failed.id, claimed.entry, claimed.epoch, "terminal", b"{}", 60_000)
            == "ok"
        )
        got = await counts(c, name)
        # stream: 3 delivered + 3 queued (the parked one was acked and deleted); pending: the
        # 3 delivered ones plus partition 2's queued entry, read above with the parked one
        assert got == Backlog(stream=6, pending=4, delayed=1, parked=1)
        assert await backlog(c, name) == 6
        await unstick(c, name, [*ids, *queued, later.id])  # (cancelled entries leave when read)
        for p in range(P):
            await c.redis.delete(c.keys(name, p).stream, c.keys(name, p).parked, c.keys(name, p).minutes)
        await c.redis.delete(c.keys(name).layout)
