"""Helpers for the partitioned-service admin tests: idempotency keys that land in a chosen
partition, and a 3-partition service with pending entries held by a live and a dead consumer."""

from __future__ import annotations

from reliq import Client
from reliq.store.keys import GROUP, SERVICES, key_token, partition_of_token

P = 3


def keys_in(service: str, n: int = P, prefix: str = "k") -> list[str]:
    """One idempotency key per partition 0..n-1 of ``service`` (index = partition)."""
    found: dict[int, str] = {}
    for i in range(10_000):
        found.setdefault(partition_of_token(key_token(service, f"{prefix}{i}"), n), f"{prefix}{i}")
        if len(found) == n:
            return [found[p] for p in range(n)]
    raise AssertionError("no key for every partition")


async def stuck(c: Client, name: str) -> list[str]:
    """A service of 3 partitions with one queued invocation per partition (index = partition):
    consumer ``live`` (heartbeat) read partition 0's, ``ghost`` (no heartbeat: dead) read the
    ones of partitions 1 and 2."""
    await c.set_partitions(name, P)
    await c.redis.sadd(SERVICES, name)
    ids = [(await c.send(name, "job", p, key=k)).id for p, k in enumerate(keys_in(name))]
    await c.redis.set(c.keys(name).consumer("live"), b'{"inflight": 1, "concurrency": 10}', px=60_000)
    for p in range(P):
        k = c.keys(name, p)
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        await c.redis.xreadgroup(GROUP, "live" if p == 0 else "ghost", {k.stream: ">"}, count=10)
    return ids


async def unstick(c: Client, name: str, ids: list[str]) -> None:
    for i in ids:
        await c.cancel(i)
    await c.redis.delete(c.keys(name).consumer("live"))
    await c.redis.srem(SERVICES, name)
