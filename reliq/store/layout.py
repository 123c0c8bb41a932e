"""A service's partition layout: how many partitions new invocations are spread over.

Stored in ``reliq:{S}:layout`` (a hash, with partition 0's tag):

- ``p``: partitions new invocations are placed on (default 1: the layout of a service that was
  never partitioned, whose keys are partition 0's ``reliq:{S}:...``);
- ``high``: partitions that may hold work: ``max`` of every ``p`` ever set. Workers and the admin
  views cover ``0..high-1``, so partitions left over by a smaller ``p`` drain instead of being
  forgotten;
- ``prev`` / ``changed``: the previous ``p`` and when it changed (server ms). For one retention
  period after a change, an idempotency key (or child key) whose partition moved is looked up in
  its old partition first, so a retry still lands on the invocation it placed before the change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec

from reliq.codec import text
from reliq.store.keys import MAX_PARTITIONS, ServiceKeys

if TYPE_CHECKING:  # scripts.py returns a Layout from set_layout
    from reliq.store.commands import RedisClient
    from reliq.store.scripts import Scripts


class Layout(msgspec.Struct, frozen=True):
    partitions: int = 1
    high: int = 1
    previous: int = 0
    changed_ms: int = 0


def parse_layout(raw: Mapping[bytes, bytes]) -> Layout:
    h = {text(k): v for k, v in raw.items()}

    def num(field: str, default: int) -> int:
        v = h.get(field)
        return int(v) if v is not None else default

    p = num("p", 1)
    return Layout(p, max(p, num("high", 1)), num("prev", 0), num("changed", 0))


def check_partitions(n: int) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_PARTITIONS:
        raise ValueError(f"partitions must be an integer in 1..{MAX_PARTITIONS}, not {n!r}")
    return n


async def read_layout(redis: RedisClient, k: ServiceKeys) -> Layout:
    return parse_layout(await redis.hgetall(k.layout))


async def write_layout(scripts: Scripts, k: ServiceKeys, partitions: int) -> Layout:
    """Set ``p`` (no-op when unchanged) in one script (``set_layout.lua``): ``high`` never
    decreases, whoever races; the last ``p`` wins."""
    check_partitions(partitions)
    return await scripts.set_layout(k, partitions)
