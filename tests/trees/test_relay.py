"""The relay delivers outbox messages at least once and applying one twice changes nothing."""

from __future__ import annotations

from reliq.client.relay import relay_once, relay_tree
from reliq.store.keys import GROUP, ServiceKeys

from ..conftest import Names, client


async def test_a_done_message_applied_twice_resumes_the_parent_once(url: str, names: Names) -> None:
    svc = names("relay")
    k = ServiceKeys(svc)
    async with client(url) as c:
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        parent = await c.send(svc, "p")
        [[_, [(eid, _)]]] = await c.redis.xreadgroup(GROUP, "w", {k.stream: ">"}, count=1)
        [held] = await c.scripts.claim(k, "w", 30_000, [(eid.decode(), parent.id)])
        kid = f"{svc}.abcdefghijklmnopqrstuvwxyz"
        waits = f'[["c:{kid}", 0, 0]]'.encode()
        assert await c.scripts.suspend(k, parent.id, eid.decode(), held.epoch, waits, "child") == "suspended"
        assert await c.redis.xlen(k.stream) == 0
        for _ in range(2):  # a relay that crashed after applying, before deleting: applied again
            await c.redis.xadd(k.outbox, {"k": "done", "t": parent.id, "s": kid, "v": b'S"ok"'})
        assert (await relay_once(c, k))[0] == 2
        assert await c.redis.xlen(k.outbox) == 0
        assert await c.redis.xlen(k.stream) == 1  # resumed once
        assert await c.state(parent.id) == "pending"
        assert await c.redis.hget(k.inbox(parent.id), f"c:{kid}") == b'S"ok"'
        assert await c.redis.zcard(k.suspended) == 0


async def test_a_cancel_reaches_a_child_not_registered_yet(url: str, names: Names) -> None:
    """The parent's cancel reaches the child before the child's registration: a tombstone keeps it
    from ever running."""
    svc = names("tomb")
    k = ServiceKeys(svc)
    async with client(url) as c:
        kid = f"{svc}.abcdefghijklmnopqrstuvwxyz"
        await c.redis.xadd(k.outbox, {"k": "cancel", "t": kid, "s": f"{svc}.bbbbbbbbbbbbbbbbbbbbbbbbbb"})
        await relay_tree(c, k)
        assert await c.state(kid) == "cancelled"
        parent = f"{svc}.bbbbbbbbbbbbbbbbbbbbbbbbbb"
        late = await c.send_json(svc, "h", b"1", invocation_id=kid, parent=parent)
        assert (late.status, late.state) == ("previously_accepted", "cancelled")
        assert await c.redis.xlen(k.stream) == 0
