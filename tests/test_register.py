"""register.lua through Client.send: atomic, idempotent, safe to re-send."""

import asyncio

import pytest

from reliq import IdempotencyConflict
from reliq.store.keys import ServiceKeys
from reliq.store.scripts import Registration

from .conftest import Names, client


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_same_key_same_payload_returns_the_same_invocation(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        first = await c.send(svc, "h", {"a": 1}, key="order-1")
        again = await c.send(svc, "h", {"a": 1}, key="order-1")
        assert first.status == "accepted"
        assert again.status == "previously_accepted"
        assert again.id == first.id
        assert await c.redis.xlen(ServiceKeys(svc).stream) == 1
        await c.cancel(first.id)


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_same_key_different_payload_is_an_error_and_changes_nothing(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        first = await c.send(svc, "h", {"a": 1}, key="order-1")
        with pytest.raises(IdempotencyConflict):
            await c.send(svc, "h", {"a": 2}, key="order-1")
        with pytest.raises(IdempotencyConflict):
            await c.send(svc, "other", {"a": 1}, key="order-1")
        inv = await c.get(first.id)
        assert inv is not None and inv.payload == {"a": 1}
        assert await c.redis.xlen(ServiceKeys(svc).stream) == 1
        await c.cancel(first.id)


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_registration_racing_itself_yields_one_invocation_per_key(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        results = await asyncio.gather(
            *(c.send(svc, "h", {"k": i % 10}, key=f"key-{i % 10}") for i in range(200))
        )
        ids = {r.id for r in results}
        assert len(ids) == 10
        assert sum(r.status == "accepted" for r in results) == 10
        assert await c.redis.xlen(ServiceKeys(svc).stream) == 10
        for i in ids:
            await c.cancel(i)


async def test_resending_the_script_after_a_lost_reply_does_not_duplicate(url: str, names: Names) -> None:
    """What redis-py's automatic retry does after a timeout: run the same registration again."""
    svc = names()
    async with client(url) as c:
        k = ServiceKeys(svc)
        item = Registration(
            id=f"{svc}.abcdefghijklmnopqrstuvwxyz", fp="fp", handler="h", payload=b"{}", key="key"
        )
        assert (await c.scripts.register(k, item))[0] == "accepted"
        assert (await c.scripts.register(k, item))[0] == "previously_accepted"
        assert await c.redis.xlen(k.stream) == 1
        await c.cancel(f"{svc}.abcdefghijklmnopqrstuvwxyz")


async def test_without_a_key_every_send_is_a_new_invocation(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        a = await c.send(svc, "h", {"a": 1})
        b = await c.send(svc, "h", {"a": 1})
        assert a.id != b.id
        for i in (a.id, b.id):
            await c.cancel(i)


async def test_delayed_send_goes_to_the_delayed_set_not_the_stream(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        acc = await c.send(svc, "h", None, delay=60)
        k = ServiceKeys(svc)
        assert acc.state == "scheduled"
        assert await c.redis.xlen(k.stream) == 0
        assert await c.redis.zscore(k.delayed, acc.id) is not None
        inv = await c.get(acc.id)
        assert inv is not None and inv.state == "scheduled"
        await c.cancel(acc.id)


@pytest.mark.parametrize("key", ["", "x" * 256, "bad\nkey", "tab\tkey"])
async def test_malformed_keys_are_refused_before_redis(url: str, names: Names, key: str) -> None:
    svc = names()
    async with client(url) as c:
        with pytest.raises(ValueError):
            await c.send(svc, "h", {}, key=key)
        assert await c.redis.exists(ServiceKeys(svc).stream) == 0
