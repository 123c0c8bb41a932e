"""release.lua (graceful shutdown): the holder gives entries back; the record returns to 'pending'
(not a crash) and the entry is marked idle so another worker's XAUTOCLAIM takes it at once. Entries
the caller no longer holds (another epoch, another consumer, settled) are left alone."""

from __future__ import annotations

from reliq import Client
from reliq.store.keys import GROUP, ServiceKeys

from ..conftest import Names, client
from .lua import Held, claimed, run, settle, text

IDLE = 10**9  # ms: far beyond any visibility timeout


async def release(c: Client, k: ServiceKeys, consumer: str, *held: tuple[Held, int]) -> int:
    args: list[object] = [GROUP, consumer, IDLE]
    for h, epoch in held:
        args += [h.entry, epoch]
    return int(await run(c, "release", [k.stream, *(k.inv(h.id) for h, _ in held)], args))


async def test_release_returns_the_invocation_to_pending_and_its_entry_to_any_worker(
    url: str, names: Names
) -> None:
    k = ServiceKeys(names())
    async with client(url) as c:
        h = await claimed(c, k, "w1")
        assert await release(c, k, "w1", (h, h.epoch)) == 1
        rec = text(await c.redis.hmget(k.inv(h.id), "state", "owner", "lease_until", "entry", "crashes"))
        assert rec == ["pending", "", "", h.entry, None]  # crashes: absent = 0 (a first claim writes none)
        assert '"released","w1"' in (await c.redis.hget(k.inv(h.id), "tl")).decode().splitlines()[-1]
        [p] = await c.redis.xpending_range(k.stream, GROUP, h.entry, h.entry, 1)
        assert p["time_since_delivered"] >= IDLE and p["times_delivered"] == 1
        # the next worker reclaims it at once (any min-idle below IDLE) and claims it: no crash
        taken = await c.redis.xautoclaim(k.stream, GROUP, "w2", 60_000, "0-0", justid=True)
        assert [e.decode() for e in taken] == [h.entry]
        out = text(await run(c, "claim", [k.stream, k.inv(h.id)], [GROUP, "w2", 30000, "t2", h.entry]))
        assert out[0] == "run" and out[1] == h.epoch + 1 and out[5] == 0  # epoch bumped, crashes 0
        await settle(c, k, Held(h.id, h.entry, h.epoch + 1))


async def test_release_leaves_entries_the_caller_no_longer_holds(url: str, names: Names) -> None:
    k = ServiceKeys(names())
    async with client(url) as c:
        a = await claimed(c, k, "w1")
        b = await claimed(c, k, "w1")
        s = await claimed(c, k, "w1")
        await c.redis.xclaim(k.stream, GROUP, "w2", 0, [b.entry], justid=True)
        await settle(c, k, s)
        assert await release(c, k, "w1", (a, a.epoch + 1), (b, b.epoch), (s, s.epoch)) == 0
        for h in (a, b):
            assert text(await c.redis.hmget(k.inv(h.id), "state", "owner")) == ["running", "w1"]
        [p] = await c.redis.xpending_range(k.stream, GROUP, b.entry, b.entry, 1)
        assert p["consumer"] == b"w2" and p["time_since_delivered"] < IDLE
        await settle(c, k, a)
        await settle(c, k, b)
