"""renew.lua: the holder extends its lease (record and entry) without bumping the delivery count,
learns of a cancel request, and is told 'lost' (and changes nothing) once it no longer holds the
entry: another epoch, another consumer, or the invocation settled."""

from __future__ import annotations

from reliq import Client
from reliq.store.keys import GROUP, ServiceKeys

from ..conftest import Names, client
from .lua import Held, claimed, run, settle, text


async def renew(
    c: Client, k: ServiceKeys, consumer: str, lease_ms: int, *held: tuple[Held, int]
) -> list[str]:
    """Renew each (invocation, epoch to present) for ``consumer``."""
    args: list[object] = [GROUP, consumer, lease_ms]
    for h, epoch in held:
        args += [h.entry, epoch]
    return list(text(await run(c, "renew", [k.stream, *(k.inv(h.id) for h, _ in held)], args)))


async def pending(c: Client, k: ServiceKeys, eid: str) -> dict[str, object]:
    [p] = await c.redis.xpending_range(k.stream, GROUP, eid, eid, 1)
    return {"consumer": p["consumer"].decode(), "idle": p["time_since_delivered"], "n": p["times_delivered"]}


async def lease_until(c: Client, k: ServiceKeys, inv: str) -> int:
    return int(await c.redis.hget(k.inv(inv), "lease_until"))


async def test_renew_extends_the_lease_and_coalesces_its_timeline(url: str, names: Names) -> None:
    k = ServiceKeys(names())
    async with client(url) as c:
        h = await claimed(c, k, "w1")
        before = await lease_until(c, k, h.id)
        # the entry looks idle for 100 s (explicit time control): a renewal resets that
        await c.redis.xclaim(k.stream, GROUP, "w1", 0, [h.entry], idle=100_000, justid=True)
        assert await renew(c, k, "w1", 600_000, (h, h.epoch)) == ["ok"]
        assert await renew(c, k, "w1", 600_000, (h, h.epoch)) == ["ok"]
        assert await lease_until(c, k, h.id) >= before + 570_000
        p = await pending(c, k, h.entry)
        assert p["consumer"] == "w1" and p["n"] == 1 and int(str(p["idle"])) < 100_000
        events = (await c.redis.hget(k.inv(h.id), "tl")).decode().splitlines()
        assert '"renewed","w1"' in events[-1] and events[-1].endswith(",2]")  # one event, count 2
        assert sum('"renewed"' in e for e in events) == 1
        await settle(c, k, h)


async def test_renew_reports_a_cancel_request_and_still_renews(url: str, names: Names) -> None:
    k = ServiceKeys(names())
    async with client(url) as c:
        h = await claimed(c, k, "w1")
        before = await lease_until(c, k, h.id)
        assert await c.cancel(h.id) == "cancelling"
        assert await renew(c, k, "w1", 600_000, (h, h.epoch)) == ["cancel"]
        assert await lease_until(c, k, h.id) > before
        await settle(c, k, h)


async def test_renew_is_lost_for_another_epoch_another_consumer_or_a_settled_invocation(
    url: str, names: Names
) -> None:
    k = ServiceKeys(names())
    async with client(url) as c:
        a = await claimed(c, k, "w1")
        b = await claimed(c, k, "w1")
        s = await claimed(c, k, "w1")
        await c.redis.xclaim(k.stream, GROUP, "w2", 0, [b.entry], justid=True)  # taken by w2
        await settle(c, k, s)
        leases = [await lease_until(c, k, h.id) for h in (a, b)]
        tls = [await c.redis.hget(k.inv(h.id), "tl") for h in (a, b)]
        assert await renew(c, k, "w1", 600_000, (a, a.epoch + 1), (b, b.epoch), (s, s.epoch)) == [
            "lost",
            "lost",
            "lost",
        ]
        # nothing changed: leases, timelines, and b's entry stays with w2
        assert [await lease_until(c, k, h.id) for h in (a, b)] == leases
        assert [await c.redis.hget(k.inv(h.id), "tl") for h in (a, b)] == tls
        assert (await pending(c, k, b.entry))["consumer"] == "w2"
        assert await renew(c, k, "w1", 600_000, (a, a.epoch)) == ["ok"]  # the right epoch still renews
        await settle(c, k, a)
        await settle(c, k, b)
