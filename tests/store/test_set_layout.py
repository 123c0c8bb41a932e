"""set_layout.lua: the partition count changes in one script; the reply is {p, high, prev, changed};
an unchanged count writes nothing; `high` (partitions that may hold work) never goes down."""

from __future__ import annotations

from reliq.store.keys import ServiceKeys

from ..conftest import Names, client
from .lua import run


async def test_set_layout_replies_and_high_only_grows(url: str, names: Names) -> None:
    k = ServiceKeys(names())
    async with client(url) as c:
        t0 = int(await c.server_time_ms())
        p, high, prev, changed = await run(c, "set_layout", [k.layout], [3])
        assert (p, high, prev) == (3, 3, 1) and changed >= t0
        assert await run(c, "set_layout", [k.layout], [3]) == [3, 3, 1, changed]  # unchanged: no write
        p, high, prev, changed2 = await run(c, "set_layout", [k.layout], [2])
        assert (p, high, prev) == (2, 3, 3) and changed2 >= changed  # shrinking keeps high
        raw = await c.redis.hgetall(k.layout)
        assert {f.decode(): int(v) for f, v in raw.items()} == {
            "p": 2,
            "high": 3,
            "prev": 3,
            "changed": changed2,
        }
        assert (await run(c, "set_layout", [k.layout], [5]))[:3] == [5, 5, 2]
        await c.redis.delete(k.layout)
