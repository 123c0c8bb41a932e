"""claim.lua / complete.lua / step.lua / retry.lua / park.lua: the lease epoch fences a worker
that lost its lease out of every write, and the scripts are idempotent under re-sends."""

import pytest

from reliq.store.keys import GROUP, ServiceKeys

from .conftest import Names, client


async def _claim(c, k: ServiceKeys, consumer: str, eid: str, inv: str) -> int:  # type: ignore[no-untyped-def]
    [out] = await c.scripts.claim(k, consumer, 30000, [(eid, inv)])
    assert out.status == "run"
    return out.epoch


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_a_worker_that_lost_its_lease_cannot_commit_step_or_ack(url: str, names: Names) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        acc = await c.send(svc, "h", {"x": 1})
        [[_, entries]] = await c.redis.xreadgroup(GROUP, "old", {k.stream: ">"}, count=1)
        eid = entries[0][0].decode()
        old_epoch = await _claim(c, k, "old", eid, acc.id)
        # the old owner stalls; the entry is reclaimed by another consumer and claimed again
        await c.redis.xclaim(k.stream, GROUP, "new", 0, [eid])
        new_epoch = await _claim(c, k, "new", eid, acc.id)
        assert new_epoch == old_epoch + 1

        assert not await c.scripts.step(k, acc.id, old_epoch, "charge", b'"stale"')
        assert await c.scripts.complete(k, 60000, [(acc.id, eid, old_epoch, "succeeded", b'"stale"')]) == [
            "fenced"
        ]
        assert await c.scripts.retry(k, acc.id, eid, old_epoch, 0, b"{}", 60000, 0) == "fenced"
        assert await c.scripts.park(k, acc.id, eid, old_epoch, "terminal", b"{}", 60000) == "fenced"
        assert await c.scripts.renew(k, "old", 30000, [(acc.id, eid, old_epoch)]) == ["lost"]
        # nothing of the stale worker landed: still running, entry still pending for "new"
        inv = await c.get(acc.id)
        assert inv is not None and inv.state == "running" and inv.owner == "new" and inv.steps == {}
        pending = await c.redis.xpending(k.stream, GROUP)
        assert pending["pending"] == 1

        assert await c.scripts.step(k, acc.id, new_epoch, "charge", b'"fresh"')
        assert await c.scripts.complete(k, 60000, [(acc.id, eid, new_epoch, "succeeded", b'"ok"')]) == ["ok"]
        # a re-send of the same completion (lost reply) is a no-op, not an error
        assert await c.scripts.complete(k, 60000, [(acc.id, eid, new_epoch, "succeeded", b'"ok"')]) == [
            "noop"
        ]
        inv = await c.get(acc.id)
        assert inv is not None and inv.state == "succeeded" and inv.result == "ok"
        assert inv.steps == {"charge": "fresh"}
        assert (await c.redis.xpending(k.stream, GROUP))["pending"] == 0
        assert await c.redis.xlen(k.stream) == 0  # acked and deleted, never trimmed


async def test_claim_skips_finished_and_stale_entries(url: str, names: Names) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        acc = await c.send(svc, "h", None)
        await c.cancel(acc.id)
        [[_, entries]] = await c.redis.xreadgroup(GROUP, "w", {k.stream: ">"}, count=1)
        eid = entries[0][0].decode()
        [out] = await c.scripts.claim(k, "w", 30000, [(eid, acc.id)])
        assert out.status == "skip"
        assert (await c.redis.xpending(k.stream, GROUP))["pending"] == 0
        assert await c.redis.xlen(k.stream) == 0


async def test_a_claim_of_a_running_invocation_counts_a_crash(url: str, names: Names) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        acc = await c.send(svc, "h", None)
        [[_, entries]] = await c.redis.xreadgroup(GROUP, "w", {k.stream: ">"}, count=1)
        eid = entries[0][0].decode()
        await _claim(c, k, "w", eid, acc.id)
        [out] = await c.scripts.claim(k, "w2", 30000, [(eid, acc.id)])  # previous holder never settled
        assert out.crashes == 1 and out.deliveries == 2
        assert await c.scripts.park(k, acc.id, eid, out.epoch, "crash-loop", b"{}", 60000) == "ok"
